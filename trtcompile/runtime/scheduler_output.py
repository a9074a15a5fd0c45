"""What the scheduler hands the model runner each step; the runner reads nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)    # not frozen: one per request per step, and frozen __init__ costs 3x
class ScheduledRequest:
    request_id: str
    token_ids: list[int]     # tokens fed this step (a prefill chunk, or one decode token:
                             # PLACEHOLDER while the step before is still on the device)
    start_pos: int           # tokens already in the KV cache before this step
    block_ids: Sequence[int]  # the request's full block table after this step's allocation
                             # (the scheduler gives C ints: array('i'))
    sample: bool             # this step ends at the last known token: sample the next one

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


@dataclass(frozen=True)
class SchedulerOutput:
    scheduled: list[ScheduledRequest]                  # in logits-row order
    preempted_ids: list[str] = field(default_factory=list)
    finished_ids: list[str] = field(default_factory=list)   # since the previous step
    block_copies: list[tuple[int, int]] = field(default_factory=list)  # (src, dst), do first
    total_num_tokens: int = 0

    @property
    def is_empty(self) -> bool:
        return not self.scheduled
