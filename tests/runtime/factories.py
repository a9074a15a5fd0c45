"""Small factories shared by the runtime tests."""

from __future__ import annotations

from trtcompile.runtime.request import Request
from trtcompile.runtime.sampling_params import SamplingParams


def make_request(request_id: str, prompt: list[int], max_tokens: int = 16,
                 **params) -> Request:
    return Request(request_id, prompt, SamplingParams(max_tokens=max_tokens, **params))


def compute(kv, req, num_new: int, hit_blocks=None, num_hit: int = 0) -> list[int] | None:
    """allocate_slots then pretend the step ran: advance num_computed and publish blocks."""
    new = kv.allocate_slots(req, num_new, hit_blocks, num_hit)
    if new is None:
        return None
    req.num_computed_tokens += num_hit + num_new
    kv.cache_blocks(req, req.num_computed_tokens)
    return new
