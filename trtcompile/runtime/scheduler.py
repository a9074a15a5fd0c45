"""In-flight batching scheduler: decode first, chunked prefill under a token budget,
preemption by recompute when the KV pool runs out, FCFS."""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, replace

from trtcompile.errors import ConfigError, RequestError
from trtcompile.runtime.kv_cache_manager import KVCacheManager
from trtcompile.runtime.request import (FINISHED_STATUS, PLACEHOLDER, FinishReason, Request,
                                        RequestStatus, child_request_id)
from trtcompile.runtime.scheduler_output import ScheduledRequest, SchedulerOutput


@dataclass(frozen=True)
class SchedulerConfig:
    max_num_seqs: int = 64
    max_num_tokens: int = 2048          # token budget per step
    block_size: int = 16
    num_blocks: int = 1024              # including the reserved null block 0
    max_model_len: int = 4096
    enable_prefix_caching: bool = True
    enable_chunked_prefill: bool = True

    def __post_init__(self) -> None:
        for name in ("max_num_seqs", "max_num_tokens", "block_size", "max_model_len"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_blocks < 2:
            raise ConfigError(f"num_blocks must be >= 2 (block 0 is reserved), got {self.num_blocks}")


@dataclass
class SchedulerStats:
    num_steps: int = 0
    num_preemptions: int = 0
    peak_blocks_used: int = 0


class Scheduler:
    def __init__(self, config: SchedulerConfig, eos_token_id: int | None = None) -> None:
        self.config = config
        self.eos_token_id = eos_token_id
        self.kv = KVCacheManager(config.block_size, config.num_blocks, config.enable_prefix_caching)
        self.stats = SchedulerStats()
        self.requests: dict[str, Request] = {}
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self._finished_ids: list[str] = []
        self._next_arrival = 0

    # -- admission -------------------------------------------------------------------------
    def add_request(self, req: Request) -> None:
        """Queue a request, or raise RequestError if it can never be served."""
        req.params.validate()
        cfg = self.config
        if not req.prompt_token_ids:
            raise RequestError("prompt_token_ids must not be empty")
        if req.request_id in self.requests:
            raise RequestError(f"request_id {req.request_id!r} is already in use")
        need = req.num_prompt_tokens + req.params.max_tokens
        if need > cfg.max_model_len:
            raise RequestError(
                f"prompt ({req.num_prompt_tokens} tokens) + max_tokens ({req.params.max_tokens})"
                f" exceeds max_model_len ({cfg.max_model_len})")
        if self.kv.blocks_needed(need) > self.kv.pool.num_usable:
            raise RequestError(
                f"prompt + max_tokens ({need} tokens) needs {self.kv.blocks_needed(need)} KV blocks;"
                f" the pool has {self.kv.pool.num_usable}")
        if not cfg.enable_chunked_prefill and need > cfg.max_num_tokens:
            raise RequestError(
                f"prompt + max_tokens ({need} tokens) exceeds max_num_tokens"
                f" ({cfg.max_num_tokens}) and chunked prefill is off")
        req.arrival = self._next_arrival
        self._next_arrival += 1
        req.status = RequestStatus.WAITING
        self.requests[req.request_id] = req
        self.waiting.append(req)

    def abort_request(self, request_id: str) -> list[Request]:
        """Abort a request and its parallel samples; returns those that were still live."""
        out = []
        for req in [r for r in self.requests.values()
                    if r.request_id == request_id or r.parent_id == request_id]:
            self.finish_request(req, FinishReason.ABORT)
            out.append(req)
        return out

    def finish_request(self, req: Request, reason: FinishReason) -> None:
        if req.is_finished:
            return
        if req.status == RequestStatus.RUNNING:
            self.running.remove(req)
        elif req in self.waiting:
            self.waiting.remove(req)
        req.status = FINISHED_STATUS[reason]
        self.kv.free(req)
        del self.requests[req.request_id]
        self._finished_ids.append(req.request_id)

    def has_unfinished(self) -> bool:
        return bool(self.requests)

    # -- one step --------------------------------------------------------------------------
    def _preempt(self, req: Request) -> None:
        self.running.remove(req)
        self.kv.free(req)
        req.status = RequestStatus.PREEMPTED
        req.num_computed_tokens = 0
        req.num_preemptions += 1
        self.waiting.appendleft(req)
        self.stats.num_preemptions += 1

    def schedule(self) -> SchedulerOutput:
        cfg = self.config
        budget = cfg.max_num_tokens
        scheduled: list[ScheduledRequest] = []
        preempted: list[str] = []

        # Running requests first (decodes, and prefills already under way), oldest first.
        # (Names bound locally: this loop runs once per running request and step.)
        running, max_seqs, running_status = self.running, cfg.max_num_seqs, RequestStatus.RUNNING
        allocate_slots, block_table = self.kv.allocate_slots, self.kv.block_table
        i = 0
        while i < len(running) and budget > 0 and len(scheduled) < max_seqs:
            req = running[i]
            start = req.num_computed_tokens
            toks = req.all_token_ids
            num_new = min(len(toks) - start, budget)
            if num_new <= 0:                       # finishing with the step in flight
                i += 1
                continue
            while allocate_slots(req, num_new) is None:
                victim = running[-1]               # the newest running request
                self._preempt(victim)
                preempted.append(victim.request_id)
                if victim is req:
                    break
            if req.status is not running_status:
                break
            req.num_computed_tokens = end = start + num_new   # counted at launch (async)
            scheduled.append(ScheduledRequest(req.request_id, toks[start:end], start,
                                              block_table(req), end == len(toks)))
            budget -= num_new
            i += 1

        # Then waiting (new or preempted) requests, FCFS, unless someone was just preempted.
        while (not preempted and self.waiting and budget > 0
               and len(scheduled) < cfg.max_num_seqs):
            req = self.waiting[0]
            hit_blocks, num_hit = self.kv.get_computed_blocks(req)
            num_new = req.num_tokens - num_hit
            if num_new > budget and not cfg.enable_chunked_prefill:
                break
            num_new = min(num_new, budget)
            if self.kv.allocate_slots(req, num_new, hit_blocks, num_hit) is None:
                break
            self.waiting.popleft()
            req.status = RequestStatus.RUNNING
            self.running.append(req)
            scheduled.append(self._scheduled(req, num_hit, num_new))
            req.num_computed_tokens = num_hit + num_new
            budget -= num_new

        self.stats.num_steps += bool(scheduled)
        self.stats.peak_blocks_used = max(self.stats.peak_blocks_used, self.kv.num_used_blocks)
        finished, self._finished_ids = self._finished_ids, []
        return SchedulerOutput(scheduled=scheduled, preempted_ids=preempted,
                               finished_ids=finished,
                               block_copies=self.kv.take_pending_copies(),
                               total_num_tokens=cfg.max_num_tokens - budget)

    def _scheduled(self, req: Request, start: int, num_new: int) -> ScheduledRequest:
        end = start + num_new
        toks = req.all_token_ids
        return ScheduledRequest(req.request_id, toks[start:end], start,
                                self.kv.block_table(req), end == len(toks))

    # -- async scheduling ------------------------------------------------------------------
    def expect_tokens(self, sched_out: SchedulerOutput) -> set[str]:
        """Before the step sched_out is back: append a PLACEHOLDER output token to each
        sampled running request that the step's token cannot finish by length, so that
        the next step can be scheduled now. Returns those request ids; update_from_output
        (given them) fills the real tokens in. Callers rule out forks, and accept that a
        stop token or string found later discards the next step's row of that request."""
        expected = set()
        requests, max_len, running = self.requests, self.config.max_model_len, RequestStatus.RUNNING
        for s in sched_out.scheduled:
            rid = s.request_id
            req = requests.get(rid)
            if not s.sample or req is None or req.status is not running:
                continue
            if (len(req.output_token_ids) + 1 >= req.params.max_tokens
                    or len(req.all_token_ids) + 1 >= max_len):
                continue
            req.append_output(PLACEHOLDER)
            expected.add(rid)
        return expected

    def update_from_output(self, sched_out: SchedulerOutput,
                           sampled_token_ids: dict[str, list[int]],
                           expected: Collection[str] = ()) -> list[Request]:
        """Record what the step computed and sampled. A list of k > 1 tokens for a request
        with n = k forks it into k parallel samples. `expected`: requests that hold a
        PLACEHOLDER for this step's token (expect_tokens); it is replaced, even if the
        request was preempted since. Returns every request that got a token (forked
        children included), finished ones marked so."""
        updated: list[Request] = []
        requests, kv = self.requests, self.kv
        caching = self.config.enable_prefix_caching
        stop_if_done, running = self._stop_if_done, RequestStatus.RUNNING
        for s in sched_out.scheduled:
            rid = s.request_id
            req = requests.get(rid)
            if req is None:
                continue  # finished or aborted since it was scheduled
            if rid in expected:
                req.set_last_output(sampled_token_ids[rid][0])
                if caching and req.status is running:
                    kv.cache_blocks(req, s.start_pos + len(s.token_ids))
                updated.append(req)
                stop_if_done(req)
                continue
            if req.status is not running:
                continue  # preempted since it was scheduled
            if caching:
                kv.cache_blocks(req, s.start_pos + len(s.token_ids))
            if not s.sample:
                continue
            tokens = sampled_token_ids[rid]
            if len(tokens) == 1:                    # the common case: no fork
                req.append_output(tokens[0])
                updated.append(req)
                stop_if_done(req)
                continue
            family = [req, *self._fork(req, len(tokens))] if len(tokens) > 1 else [req]
            for member, tok in zip(family, tokens):
                member.append_output(tok)
                updated.append(member)
                self._stop_if_done(member)
        return updated

    def _stop_if_done(self, req: Request) -> None:
        """Finish the request if its last output token stops it (EOS, a stop token id) or
        it reached max_tokens or max_model_len."""
        out, p = req.output_token_ids, req.params
        tok = out[-1]
        if (not p.ignore_eos and tok == self.eos_token_id) or tok in p.stop_token_ids:
            self.finish_request(req, FinishReason.STOP)
        elif len(out) >= p.max_tokens or len(req.all_token_ids) >= self.config.max_model_len:
            self.finish_request(req, FinishReason.LENGTH)

    def _fork(self, parent: Request, n: int) -> list[Request]:
        if parent.params.n != n or parent.output_token_ids or parent.parent_id is not None:
            raise RuntimeError(f"cannot fork {parent.request_id} into {n}")
        children = []
        for index in range(1, n):
            child = Request(child_request_id(parent.request_id, index), parent.prompt_token_ids,
                            replace(parent.params, n=1), arrival=parent.arrival,
                            parent_id=parent.request_id, index=index,
                            num_computed_tokens=parent.num_computed_tokens,
                            status=RequestStatus.RUNNING)
            self.kv.fork(parent, child)
            self.requests[child.request_id] = child
            self.running.append(child)
            children.append(child)
        return children

    def check_invariants(self) -> None:
        self.kv.check_invariants()
        live = set(self.requests)
        assert live == {r.request_id for r in self.running} | {r.request_id for r in self.waiting}
        for r in self.running:
            assert self.kv.get_block_ids(r), f"running request {r.request_id} holds no blocks"
        for r in self.waiting:
            assert not self.kv.get_block_ids(r), f"waiting request {r.request_id} holds blocks"
