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


class SampledRows:
    """One step's sampled rows, still on the logits' device, on their way to the host: the
    copies are queued at construction; result() waits for them (the step's only sync)."""

    def __init__(self, token_ids: torch.Tensor, logprobs: torch.Tensor | None,
                 top: tuple[torch.Tensor, torch.Tensor] | None, top_counts: list[int]):
        self.token_ids = token_ids                            # [S] int64, feeds the next step
        self._top_counts = top_counts
        tensors = [token_ids, logprobs, *(top or (None, None))]
        if token_ids.device.type == "cuda":
            self._host = [t.to("cpu", non_blocking=True) if t is not None else None
                          for t in tensors]                   # pinned destinations
            self._ready = torch.cuda.Event()
            self._ready.record()
        else:
            self._host, self._ready = tensors, None

    def result(self) -> SamplerOutput:
        if self._ready is not None:
            self._ready.synchronize()
        tokens, logprobs, top_idx, top_vals = self._host
        num_rows = tokens.shape[0]
        top: list[list[tuple[int, float]] | None] = [None] * num_rows
        if top_idx is not None:
            for r, k in enumerate(self._top_counts):
                if k > 0:
                    top[r] = list(zip(top_idx[r, :k].tolist(), top_vals[r, :k].tolist()))
        return SamplerOutput(token_ids=tokens.tolist(),
                             logprobs=logprobs.tolist() if logprobs is not None else None,
                             top_logprobs=top)


class Sampler:
    """Stateless. Each row draws one uniform number from its own generator, so a seeded
    request samples the same tokens whatever batch it lands in."""

    def sample(self, logits: torch.Tensor, params: Sequence[SamplingParams],
               generators: Sequence[torch.Generator | None],
               with_logprobs: bool = True) -> SamplerOutput:
        """with_logprobs=False: skip log p(token) (and top-k lists) when no row reports them."""
        return self.sample_async(logits, params, generators, with_logprobs).result()

    def sample_async(self, logits: torch.Tensor, params: Sequence[SamplingParams],
                     generators: Sequence[torch.Generator | None],
                     with_logprobs: bool = True) -> SampledRows:
        """sample() without waiting for the device: random draws happen now, on the host."""
        vocab = logits.shape[1]                                           # [S, V]
        logits = logits.float()
        tokens = logits.argmax(dim=-1)                                    # [S]
        if not all(p.temperature < MIN_TEMPERATURE for p in params):
            tokens = self._sample_random(logits, tokens, params, generators)
        if not with_logprobs:
            return SampledRows(tokens, None, None, [])
        raw_logprobs = torch.log_softmax(logits, dim=-1)                  # [S, V]
        chosen = raw_logprobs.gather(1, tokens[:, None]).squeeze(1)
        counts = [p.num_top_logprobs for p in params]
        k_max = max(counts, default=0)
        top = None
        if k_max > 0:
            vals, idx = raw_logprobs.topk(min(k_max, vocab), dim=-1)
            top = (idx, vals)
        return SampledRows(tokens, chosen, top, counts)

    @staticmethod
    def _sample_random(logits: torch.Tensor, tokens: torch.Tensor,
                       params: Sequence[SamplingParams],
                       generators: Sequence[torch.Generator | None]) -> torch.Tensor:
        """Rows with temperature > 0 draw from their filtered distribution; greedy rows keep
        their argmax in tokens."""
        vocab = logits.shape[1]
        dev = logits.device
        temps = upload([p.temperature for p in params], dev, torch.float32)
        greedy = temps < MIN_TEMPERATURE
        top_k = upload([p.top_k if p.top_k > 0 else vocab for p in params], dev)
        top_p = upload([p.top_p for p in params], dev, torch.float32)
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
        u = upload([torch.rand((), generator=g, dtype=torch.float64).item()
                     if p.temperature >= MIN_TEMPERATURE else 0.0
                     for p, g in zip(params, generators)], dev, torch.float64)
        x = (u * cdf[:, -1])[:, None]
        pick = torch.searchsorted(cdf, x, right=True).squeeze(1)
        last_nonzero = (probs > 0).sum(dim=-1) - 1
        pick = torch.minimum(pick, last_nonzero)
        sampled = sorted_idx.gather(1, pick[:, None]).squeeze(1)
        return torch.where(greedy, tokens, sampled)


def upload(values: list, device: torch.device, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    """A host list on `device` without waiting for the device (a plain torch.tensor(...,
    device=cuda) synchronizes the stream)."""
    return torch.tensor(values, dtype=dtype).to(device, non_blocking=True)
