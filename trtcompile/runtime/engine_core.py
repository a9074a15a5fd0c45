"""The serving loop: schedule, build inputs, run the model, sample, stop, report."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch

from trtcompile.errors import RequestError
from trtcompile.runtime.detokenizer import (Detokenize, IncrementalDetokenizer, TextStreams,
                                            find_stop)
from trtcompile.runtime.request import FinishReason, Request, RequestStatus, child_request_id
from trtcompile.runtime.sampler import MIN_TEMPERATURE, SampledRows, Sampler, upload
from trtcompile.runtime.sampling_params import SamplingParams
from trtcompile.runtime.scheduler import Scheduler, SchedulerConfig
from trtcompile.runtime.scheduler_output import SchedulerOutput
from trtcompile.runtime.step_inputs import SampledFeed, StepInputs, build_step_inputs

ExecuteFn = Callable[[StepInputs], torch.Tensor]     # -> float32 logits [S, vocab]


@dataclass(slots=True)    # not frozen: one per token, and frozen __init__ costs 3x
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
                 eos_token_id: int | None = None,
                 detokenize: Detokenize | TextStreams | None = None,
                 max_blocks_per_seq: int | None = None, seed: int = 0,
                 async_scheduling: bool = True, vocab_size: int | None = None) -> None:
        """async_scheduling: prepare and launch each step while the previous one runs
        (see step); False runs every step to its end before the next is scheduled.
        detokenize: a decode function or a tokenizer's TextStreams; each output then
        carries its text (grown incrementally, see runtime/detokenizer.py).
        vocab_size: prompt token ids must lie in [0, vocab_size) (None: not checked)."""
        self.scheduler = Scheduler(scheduler_config, eos_token_id)
        self.vocab_size = vocab_size
        self.execute_fn = execute_fn
        self.detokenize = detokenize
        if isinstance(detokenize, TextStreams):
            self._new_text = detokenize.new
        else:
            self._new_text = lambda: IncrementalDetokenizer(detokenize)
        self.max_blocks_per_seq = max_blocks_per_seq
        self.sampler = Sampler()
        self._shared_gen = torch.Generator().manual_seed(seed)   # for requests without seed
        self._generators: dict[str, torch.Generator] = {}
        self._origin: dict[str, tuple[str, int]] = {}             # internal id -> (user id, index)
        self._texts: dict = {}                                     # internal id -> its text stream
        self.async_scheduling = async_scheduling
        self._in_flight: _Launched | None = None                  # launched, not yet finished

    # -- requests --------------------------------------------------------------------------
    def add_request(self, request_id: str, prompt_token_ids: Sequence[int],
                    params: SamplingParams | None = None) -> None:
        """Queue a request; raises RequestError (and changes nothing) if it is invalid."""
        params = params or SamplingParams()
        if params.stop and self.detokenize is None:
            raise RequestError("stop strings need a detokenizer; this engine has none")
        try:
            ids = array("q", prompt_token_ids)       # integers only, at C speed
        except (TypeError, OverflowError):
            raise RequestError("prompt_token_ids must be a sequence of integers") from None
        if self.vocab_size is not None and ids and (min(ids) < 0 or max(ids) >= self.vocab_size):
            bad = next(t for t in ids if not 0 <= t < self.vocab_size)
            raise RequestError(f"prompt token id {bad} is outside the vocabulary "
                               f"[0, {self.vocab_size})")
        self.scheduler.add_request(Request(request_id, ids.tolist(), params))
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
        if params.seed is None:
            return self._shared_gen
        gen = self._generators.get(request_id)
        if gen is None:
            gen = self._generators[request_id] = torch.Generator().manual_seed(params.seed + index)
        return gen

    def _forget(self, request_id: str) -> None:
        self._generators.pop(request_id, None)
        self._origin.pop(request_id, None)
        self._texts.pop(request_id, None)

    # -- one step --------------------------------------------------------------------------
    # Async scheduling (the default): while step N runs on the device, step N+1 is scheduled
    # as if every sampled request continues by one token (a PLACEHOLDER), launched with those
    # tokens gathered on the device from step N's sampled ids, and only then does the host
    # wait for step N's ids:
    #
    #   host:   sched N | launch N | sched N+1 | launch N+1 | wait N, outputs N | sched N+2 ..
    #   device:                    [ step N .............. ][ step N+1 ............... ]
    #
    # A request that step N's token finishes by length is not fed at N+1; one that it stops
    # otherwise (a stop token or string) has its N+1 row discarded. Steps that fork (n > 1),
    # or whose unseeded random rows may stop on a token (the next step would then draw
    # from the shared generator for a finished row), run serially, as does every step
    # with async_scheduling=False. A step N+1 with prefill chunks (many kernel launches,
    # which can wait on a full launch queue) is launched after step N's outputs rather than
    # before, so that they are not held back by it; it still needs no host copy of N's ids.
    def step(self) -> list[RequestOutput]:
        launched, self._in_flight = self._in_flight, None
        sched = self.scheduler
        if launched is None:
            out = sched.schedule()
            if out.is_empty:
                return []
            launched = self._launch(out, None)
        if self.async_scheduling and self._can_look_ahead(launched):
            launched.expected = sched.expect_tokens(launched.sched_out)
            nxt = sched.schedule()
            if not nxt.is_empty and _is_decode(nxt):
                self._in_flight = self._launch(nxt, launched)
            elif not nxt.is_empty:
                outputs = self._finish(launched)
                self._in_flight = self._launch(nxt, launched)
                return outputs
        return self._finish(launched)

    def _can_look_ahead(self, launched: _Launched) -> bool:
        if launched.forked:
            return False
        requests, eos = self.scheduler.requests, self.scheduler.eos_token_id
        for rid in launched.owners:
            req = requests.get(rid)
            if req is None:
                continue
            p = req.params
            if (p.temperature >= MIN_TEMPERATURE and p.seed is None
                    and (p.stop or p.stop_token_ids or (eos is not None and not p.ignore_eos))):
                return False
        return True

    def _launch(self, out: SchedulerOutput, prev: _Launched | None) -> _Launched:
        """Queue the step's model run and sampling; prev: the step still in flight whose
        sampled ids feed this one's PLACEHOLDER tokens."""
        sched = self.scheduler
        inputs = build_step_inputs(out, sched.config.block_size, self.max_blocks_per_seq)
        if prev is not None and prev.expected:
            feed = _sampled_feed(out, prev)
            if feed is not None:
                inputs = replace(inputs, feed=feed)
        logits = self.execute_fn(inputs)                                  # [S, V]

        # One sampled row per sampling request; a request about to fork into n samples
        # (n > 1, no output yet) gets n rows of the same logits.
        requests, shared_gen = sched.requests, self._shared_gen
        rows, params, gens, owners = [], [], [], []
        forked = False
        for row, s in enumerate(out.scheduled):
            if not s.sample:
                continue
            rid = s.request_id
            req = requests.get(rid)
            if req is None:
                continue            # stopped by step N's token after this step was scheduled
            p = req.params
            n = p.n if (req.parent_id is None and not req.output_token_ids) else 1
            if n == 1:
                rows.append(row)
                params.append(p)
                gens.append(shared_gen if p.seed is None else self._generator(rid, p, req.index))
                owners.append(rid)
                continue
            forked = True
            for index in range(n):
                rows.append(row)
                params.append(p)
                gens.append(self._generator(child_request_id(rid, index), p, req.index + index))
                owners.append(rid)
        want = any(p.wants_logprobs for p in params)
        if forked or len(rows) != logits.shape[0]:                       # rows != range(S)
            logits = logits.index_select(0, upload(rows, logits.device))
        sampled = self.sampler.sample_async(logits, params, gens, with_logprobs=want)
        return _Launched(out, owners, forked, want, sampled)

    def _finish(self, launched: _Launched) -> list[RequestOutput]:
        """Wait for the step's sampled ids and hand them to the scheduler."""
        sampled = launched.sampled.result()
        owners, want = launched.owners, launched.want
        per_token: dict[str, tuple[float, list | None]] = {}
        if not launched.forked:
            tokens = {rid: [tok] for rid, tok in zip(owners, sampled.token_ids)}
            if want:
                per_token = dict(zip(owners, zip(sampled.logprobs, sampled.top_logprobs)))
        else:
            tokens = {}
            for i, owner in enumerate(owners):
                tokens.setdefault(owner, []).append(sampled.token_ids[i])
                if want:
                    index = len(tokens[owner]) - 1
                    rid = child_request_id(owner, index) if index else owner
                    per_token[rid] = (sampled.logprobs[i], sampled.top_logprobs[i])
        updated = self.scheduler.update_from_output(launched.sched_out, tokens, launched.expected)
        return [self._output(req, per_token.get(req.request_id)) for req in updated]

    def _output(self, req: Request, logprob: tuple[float, list | None] | None) -> RequestOutput:
        """logprob: (log p(token), top alternatives), None when no request asked this step."""
        rid = req.request_id
        if req.parent_id is not None and rid not in self._origin:
            self._origin[rid] = (req.parent_id, req.index)
        text = None
        if self.detokenize is not None:
            detok = self._texts.get(rid)
            if detok is None:
                detok = self._texts[rid] = self._new_text()
            seen = len(detok.text)
            text = detok.update(req.output_token_ids, final=req.status.is_finished)
            cut = find_stop(text, req.params.stop, seen) if req.params.stop else None
            if cut is not None:
                text = text[:cut]
                self.scheduler.finish_request(req, FinishReason.STOP)
        user_id, index = self._origin[rid]
        status = req.status
        reason = None if status is RequestStatus.RUNNING else status.finish_reason
        if reason is not None:
            self._forget(rid)
        logprobs = top = None
        if logprob is not None and req.params.wants_logprobs:
            logprobs = [logprob[0]]
            top = [logprob[1]] if req.params.num_top_logprobs else None
        return RequestOutput(user_id, index, [req.output_token_ids[-1]], reason is not None, reason,
                             logprobs, top, text)


@dataclass(slots=True)
class _Launched:
    """A step whose model run and sampling are queued on the device."""
    sched_out: SchedulerOutput
    owners: list[str]                  # sampled row i belongs to owners[i]
    forked: bool                       # some request forks into n > 1 samples
    want: bool                         # some row reports logprobs
    sampled: SampledRows
    expected: set[str] = field(default_factory=set)   # hold a PLACEHOLDER for this step's token


def _is_decode(out: SchedulerOutput) -> bool:
    return all(len(s.token_ids) == 1 for s in out.scheduled)


def _sampled_feed(out: SchedulerOutput, prev: _Launched) -> SampledFeed | None:
    """Which input ids of this step are prev's sampled ids, still on the device prev sampled
    on (no wait for prev). Each such request feeds exactly that one token."""
    row_of = {rid: i for i, rid in enumerate(prev.owners)}
    expected = prev.expected
    dst, src, pos = [], [], 0
    for s in out.scheduled:
        if s.request_id in expected:
            dst.append(pos)
            src.append(row_of[s.request_id])
        pos += len(s.token_ids)
    return SampledFeed(dst, src, prev.sampled.token_ids) if dst else None
