"""The serving loop: schedule, build inputs, run the model, sample, stop, report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from trtcompile.errors import RequestError
from trtcompile.runtime.request import FinishReason, Request, child_request_id
from trtcompile.runtime.sampler import Sampler
from trtcompile.runtime.sampling_params import SamplingParams
from trtcompile.runtime.scheduler import Scheduler, SchedulerConfig
from trtcompile.runtime.step_inputs import StepInputs, build_step_inputs

ExecuteFn = Callable[[StepInputs], torch.Tensor]     # -> float32 logits [S, vocab]
Detokenize = Callable[[Sequence[int]], str]


@dataclass(frozen=True)
class RequestOutput:
    request_id: str                    # the id given to add_request (parent id for n > 1)
    index: int                         # which of the n parallel samples
    new_token_ids: list[int]           # tokens produced since the previous output
    finished: bool
    finish_reason: FinishReason | None
    logprobs: list[float] | None       # one per new token, when params.logprobs
    top_logprobs: list[list[tuple[int, float]] | None] | None = None
    text: str | None = None            # full output text so far (with detokenize), cut
                                       # before a stop string


@dataclass(frozen=True)
class EngineStats:
    num_steps: int
    num_preemptions: int
    peak_blocks_used: int
    prefix_cache_hit_rate: float
    prefix_cache_hit_tokens: int
    prefix_cache_queried_tokens: int


class EngineCore:
    def __init__(self, scheduler_config: SchedulerConfig, execute_fn: ExecuteFn,
                 eos_token_id: int | None = None, detokenize: Detokenize | None = None,
                 max_blocks_per_seq: int | None = None, seed: int = 0) -> None:
        self.scheduler = Scheduler(scheduler_config, eos_token_id)
        self.execute_fn = execute_fn
        self.detokenize = detokenize
        self.max_blocks_per_seq = max_blocks_per_seq
        self.sampler = Sampler()
        self._shared_gen = torch.Generator().manual_seed(seed)   # for requests without seed
        self._generators: dict[str, torch.Generator] = {}
        self._origin: dict[str, tuple[str, int]] = {}             # internal id -> (user id, index)

    # -- requests --------------------------------------------------------------------------
    def add_request(self, request_id: str, prompt_token_ids: Sequence[int],
                    params: SamplingParams | None = None) -> None:
        """Queue a request; raises RequestError (and changes nothing) if it is invalid."""
        params = params or SamplingParams()
        if params.stop and self.detokenize is None:
            raise RequestError("stop strings need a detokenizer; this engine has none")
        self.scheduler.add_request(Request(request_id, list(prompt_token_ids), params))
        self._origin[request_id] = (request_id, 0)

    def abort_request(self, request_id: str) -> None:
        for req in self.scheduler.abort_request(request_id):
            self._forget(req.request_id)

    def has_unfinished(self) -> bool:
        return self.scheduler.has_unfinished()

    @property
    def stats(self) -> EngineStats:
        s, kv = self.scheduler.stats, self.scheduler.kv.stats
        return EngineStats(s.num_steps, s.num_preemptions, s.peak_blocks_used,
                           kv.hit_rate, kv.hit_tokens, kv.queried_tokens)

    def _generator(self, request_id: str, params: SamplingParams, index: int) -> torch.Generator:
        gen = self._generators.get(request_id)
        if gen is None:
            if params.seed is None:
                return self._shared_gen
            gen = self._generators[request_id] = torch.Generator().manual_seed(params.seed + index)
        return gen

    def _forget(self, request_id: str) -> None:
        self._generators.pop(request_id, None)
        self._origin.pop(request_id, None)

    # -- one step --------------------------------------------------------------------------
    def step(self) -> list[RequestOutput]:
        sched = self.scheduler
        out = sched.schedule()
        if out.is_empty:
            return []
        inputs = build_step_inputs(out, sched.config.block_size, self.max_blocks_per_seq)
        logits = self.execute_fn(inputs)                                  # [S, V]

        rows, params, gens, owners = [], [], [], []
        for row, s in enumerate(out.scheduled):
            if not s.sample:
                continue
            req = sched.requests[s.request_id]
            n = req.params.n if (req.parent_id is None and not req.output_token_ids) else 1
            for index in range(n):
                rid = child_request_id(s.request_id, index) if n > 1 else s.request_id
                rows.append(row)
                params.append(req.params)
                gens.append(self._generator(rid, req.params, req.index + index))
                owners.append(s.request_id)
        sampled = self.sampler.sample(logits[rows], params, gens)

        tokens: dict[str, list[int]] = {}
        per_token: dict[str, tuple[float, list | None]] = {}
        for i, owner in enumerate(owners):
            tokens.setdefault(owner, []).append(sampled.token_ids[i])
            index = len(tokens[owner]) - 1
            rid = child_request_id(owner, index) if index else owner
            per_token[rid] = (sampled.logprobs[i], sampled.top_logprobs[i])
        updated = sched.update_from_output(out, tokens)
        return [self._output(req, per_token[req.request_id]) for req in updated]

    def _output(self, req: Request, logprob: tuple[float, list | None]) -> RequestOutput:
        if req.parent_id is not None and req.request_id not in self._origin:
            self._origin[req.request_id] = (req.parent_id, req.index)
        text = None
        if self.detokenize is not None:
            text = self.detokenize(req.output_token_ids)
            cut = _find_stop(text, req.params.stop)
            if cut is not None:
                text = text[:cut]
                self.scheduler.finish_request(req, FinishReason.STOP)
        user_id, index = self._origin[req.request_id]
        finished = req.is_finished
        if finished:
            self._forget(req.request_id)
        want = req.params.wants_logprobs
        return RequestOutput(
            request_id=user_id, index=index, new_token_ids=[req.output_token_ids[-1]],
            finished=finished, finish_reason=req.status.finish_reason,
            logprobs=[logprob[0]] if want else None,
            top_logprobs=[logprob[1]] if want and req.params.num_top_logprobs else None,
            text=text)


def _find_stop(text: str, stops: Sequence[str]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None
