"""A generation request's state as the scheduler and the KV cache manager see it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from trtcompile.runtime.sampling_params import SamplingParams


class FinishReason(enum.StrEnum):
    STOP = "stop"          # EOS, a stop token id or a stop string
    LENGTH = "length"      # max_tokens or max_model_len reached
    ABORT = "abort"        # aborted by the caller


class RequestStatus(enum.Enum):
    WAITING = enum.auto()
    RUNNING = enum.auto()
    PREEMPTED = enum.auto()
    FINISHED_STOPPED = enum.auto()
    FINISHED_LENGTH = enum.auto()
    FINISHED_ABORTED = enum.auto()

    @property
    def is_finished(self) -> bool:
        return self in _FINISHED

    @property
    def finish_reason(self) -> FinishReason | None:
        return _FINISHED.get(self)


_FINISHED = {
    RequestStatus.FINISHED_STOPPED: FinishReason.STOP,
    RequestStatus.FINISHED_LENGTH: FinishReason.LENGTH,
    RequestStatus.FINISHED_ABORTED: FinishReason.ABORT,
}
FINISHED_STATUS = {reason: status for status, reason in _FINISHED.items()}


# An output token sampled by a step still on the GPU (async scheduling); never a real id.
PLACEHOLDER = -1


def child_request_id(parent_id: str, index: int) -> str:
    """Id of the index-th parallel sample (n > 1) of a request; index 0 is the parent."""
    return parent_id if index == 0 else f"{parent_id}#{index}"


@dataclass(eq=False)
class Request:
    request_id: str
    prompt_token_ids: list[int]
    params: SamplingParams
    arrival: int = 0                       # FCFS order, given by the scheduler
    parent_id: str | None = None           # set on forked parallel samples
    index: int = 0                         # which of the n samples this is
    output_token_ids: list[int] = field(default_factory=list)
    num_computed_tokens: int = 0           # tokens whose K/V are in the cache
    status: RequestStatus = RequestStatus.WAITING
    num_preemptions: int = 0
    # Content hash of each full block of all_token_ids, filled lazily by the KV manager.
    block_hashes: list[bytes] = field(default_factory=list)
    all_token_ids: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.prompt_token_ids = list(self.prompt_token_ids)
        self.all_token_ids = self.prompt_token_ids + self.output_token_ids

    @property
    def num_tokens(self) -> int:
        return len(self.all_token_ids)

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)

    def append_output(self, token_id: int) -> None:
        self.output_token_ids.append(token_id)
        self.all_token_ids.append(token_id)

    def set_last_output(self, token_id: int) -> None:
        """Replace the PLACEHOLDER output token with the sampled one."""
        self.output_token_ids[-1] = self.all_token_ids[-1] = token_id

    @property
    def is_finished(self) -> bool:
        return self.status.is_finished
