"""Token sampling from logits rows: greedy, temperature, top-k, top-p, per-request seeds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from trtcompile.runtime.sampling_params import SamplingParams

# Temperatures below this act as greedy: dividing logits by them overflows float32.
MIN_TEMPERATURE = 1e-5


@dataclass(frozen=True)
class SamplerOutput:
    token_ids: list[int]
    logprobs: list[float] | None                # log p(token) under the raw model distribution
                                                # (None when the caller asked for none)
    top_logprobs: list[list[tuple[int, float]] | None]   # per row, when params ask for k > 0


class Sampler:
    """Stateless. Each row draws one uniform number from its own generator, so a seeded
    request samples the same tokens whatever batch it lands in."""

    def sample(self, logits: torch.Tensor, params: Sequence[SamplingParams],
               generators: Sequence[torch.Generator | None],
               with_logprobs: bool = True) -> SamplerOutput:
        """with_logprobs=False: skip log p(token) (and top-k lists) when no row reports them."""
        num_rows, vocab = logits.shape                                    # [S, V]
        logits = logits.float()
        tokens = logits.argmax(dim=-1)                                    # [S]
        if not all(p.temperature < MIN_TEMPERATURE for p in params):
            tokens = self._sample_random(logits, tokens, params, generators)
        if not with_logprobs:
            return SamplerOutput(token_ids=tokens.tolist(), logprobs=None,
                                 top_logprobs=[None] * num_rows)

        raw_logprobs = torch.log_softmax(logits, dim=-1)                  # [S, V]
        chosen = raw_logprobs.gather(1, tokens[:, None]).squeeze(1)
        top: list[list[tuple[int, float]] | None] = [None] * num_rows
        k_max = max((p.num_top_logprobs for p in params), default=0)
        if k_max > 0:
            vals, idx = raw_logprobs.topk(min(k_max, vocab), dim=-1)
            for r, p in enumerate(params):
                k = p.num_top_logprobs
                if k > 0:
                    top[r] = list(zip(idx[r, :k].tolist(), vals[r, :k].tolist()))
        return SamplerOutput(token_ids=tokens.tolist(), logprobs=chosen.tolist(), top_logprobs=top)

    @staticmethod
    def _sample_random(logits: torch.Tensor, tokens: torch.Tensor,
                       params: Sequence[SamplingParams],
                       generators: Sequence[torch.Generator | None]) -> torch.Tensor:
        """Rows with temperature > 0 draw from their filtered distribution; greedy rows keep
        their argmax in tokens."""
        vocab = logits.shape[1]
        dev = logits.device
        temps = torch.tensor([p.temperature for p in params], dtype=torch.float32, device=dev)
        greedy = temps < MIN_TEMPERATURE
        top_k = torch.tensor([p.top_k if p.top_k > 0 else vocab for p in params], device=dev)
        top_p = torch.tensor([p.top_p for p in params], dtype=torch.float32, device=dev)
        scaled = logits / torch.where(greedy, 1.0, temps)[:, None]
        sorted_logits, sorted_idx = scaled.sort(dim=-1, descending=True)  # [S, V]
        ranks = torch.arange(vocab, device=dev)[None, :]
        sorted_logits = sorted_logits.masked_fill(ranks >= top_k[:, None], float("-inf"))
        probs = torch.softmax(sorted_logits, dim=-1).double()
        cum = probs.cumsum(dim=-1)
        # Drop a token when the tokens ranked above it already reach top_p; the top-ranked
        # token always stays (a top_p that rounds to 0 in float32 still keeps one).
        drop = (cum - probs >= top_p[:, None].double()) & (ranks > 0)
        probs = probs.masked_fill(drop, 0.0)
        cdf = probs.cumsum(dim=-1)                                        # [S, V]
        u = torch.tensor([torch.rand((), generator=g, dtype=torch.float64).item()
                          if p.temperature >= MIN_TEMPERATURE else 0.0
                          for p, g in zip(params, generators)], dtype=torch.float64,
                         device=dev)
        x = (u * cdf[:, -1])[:, None]
        pick = torch.searchsorted(cdf, x, right=True).squeeze(1)
        last_nonzero = (probs > 0).sum(dim=-1) - 1
        pick = torch.minimum(pick, last_nonzero)
        sampled = sorted_idx.gather(1, pick[:, None]).squeeze(1)
        return torch.where(greedy, tokens, sampled)
