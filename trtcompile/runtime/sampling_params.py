"""Per-request sampling parameters and their validation."""

from __future__ import annotations

import operator
from dataclasses import dataclass

from trtcompile.errors import RequestError


def _is_integer(x) -> bool:
    """An int (or numpy / torch integer scalar), not a bool."""
    if isinstance(x, bool):
        return False
    try:
        operator.index(x)
    except TypeError:
        return False
    return True


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 16
    temperature: float = 1.0          # 0 = greedy
    top_k: int = 0                    # 0 = off
    top_p: float = 1.0                # 1.0 = off
    seed: int | None = None           # None = the engine's shared generator
    stop_token_ids: tuple[int, ...] = ()
    stop: tuple[str, ...] = ()        # stop strings; the output text is cut before them
    ignore_eos: bool = False
    logprobs: bool | int = False      # True: logprob of each sampled token; k > 0: also top-k
    n: int = 1                        # parallel samples sharing the prompt's KV blocks

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):  # one stop string, as the OpenAI API allows
            object.__setattr__(self, "stop", (self.stop,))

    def validate(self) -> None:
        """Raise RequestError naming the first invalid field."""
        for name in ("temperature", "top_p"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RequestError(f"{name} must be a number, got {value!r}")
        if self.seed is not None and not _is_integer(self.seed):
            raise RequestError(f"seed must be an integer or None, got {self.seed!r}")
        if not all(_is_integer(t) for t in self.stop_token_ids):
            raise RequestError(f"stop_token_ids must hold integers, got {self.stop_token_ids!r}")
        if not isinstance(self.max_tokens, int) or self.max_tokens <= 0:
            raise RequestError(f"max_tokens must be a positive integer, got {self.max_tokens!r}")
        if self.temperature < 0:
            raise RequestError(f"temperature must be >= 0 (0 = greedy), got {self.temperature!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise RequestError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise RequestError(f"top_k must be an integer >= 0 (0 = off), got {self.top_k!r}")
        if not isinstance(self.n, int) or self.n < 1:
            raise RequestError(f"n must be an integer >= 1, got {self.n!r}")
        if isinstance(self.logprobs, int) and not isinstance(self.logprobs, bool) \
                and self.logprobs < 0:
            raise RequestError(f"logprobs must be a bool or an integer >= 0, got {self.logprobs!r}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise RequestError(f"stop must hold non-empty strings, got {self.stop!r}")

    @property
    def num_top_logprobs(self) -> int:
        """How many top alternatives to report per token (0 = none)."""
        if isinstance(self.logprobs, bool):
            return 0
        return self.logprobs

    @property
    def wants_logprobs(self) -> bool:
        return self.logprobs is not False
