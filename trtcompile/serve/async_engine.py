"""AsyncEngine: one asyncio task drives EngineCore.step() in a worker thread; handlers
submit requests and read their outputs from per-request queues, all on the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from trtcompile.errors import OverloadedError, TrtCompileError
from trtcompile.runtime.engine_core import EngineCore, RequestOutput
from trtcompile.runtime.sampling_params import SamplingParams

#  handler ──submit()──► _pending ──(between steps, loop thread)──► core.add_request
#     ▲                                                                   │
#     └──── sink queue ◄── _dispatch(outputs) ◄── to_thread(core.step) ◄──┘
# Only the driver task touches `core`, and never while a step runs, so no lock is needed.


@dataclass(frozen=True)
class EngineSnapshot:
    """What /metrics reports, copied after every step (never read from a running step)."""
    num_waiting: int = 0
    num_running: int = 0
    kv_blocks_used: int = 0
    kv_blocks_free: int = 0
    prefix_cache_hit_rate: float = 0.0
    num_preemptions: int = 0


@dataclass(frozen=True)
class EngineFailure:
    """Put on a request's sink when the engine failed under it (a bug, reported as 500)."""
    request_id: str
    message: str


@dataclass
class _Submission:
    request_id: str
    token_ids: list[int]
    params: SamplingParams
    sink: asyncio.Queue
    accepted: asyncio.Future
    submitted_at: float = field(default_factory=time.perf_counter)


StepListener = Callable[[list[RequestOutput], float], None]     # (outputs, step seconds)
Logger = Callable[..., None]


class AsyncEngine:
    def __init__(self, core: EngineCore, max_queue: int, *, log: Logger | None = None,
                 on_step: StepListener | None = None) -> None:
        self.core = core
        self.max_queue = max_queue
        self.capacity = core.scheduler.config.max_num_seqs + max_queue
        self.snapshot = self._take_snapshot()
        self._log = log or (lambda event, **kw: None)
        self._on_step = on_step
        self._pending: list[_Submission] = []
        self._aborts: list[str] = []
        self._sinks: dict[str, asyncio.Queue] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drive(), name="engine")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    @property
    def num_in_flight(self) -> int:
        return len(self._sinks) + len(self._pending)

    # -- handler side ----------------------------------------------------------------------
    async def submit(self, requests: Sequence[tuple[str, list[int], SamplingParams]],
                     sink: asyncio.Queue) -> None:
        """Queue requests that share one sink; raises OverloadedError (nothing queued) when
        the waiting queue is full, or the RequestError of the first invalid one (the others
        are aborted)."""
        if self.num_in_flight + len(requests) > self.capacity:
            raise OverloadedError(
                f"server overloaded: {self.num_in_flight} requests in flight, limit "
                f"{self.capacity} (max_num_seqs + max_queue); retry later")
        loop = asyncio.get_running_loop()
        subs = [_Submission(rid, tokens, params, sink, loop.create_future())
                for rid, tokens, params in requests]
        self._pending += subs
        self._wake.set()
        try:
            for sub in subs:
                await sub.accepted
        except BaseException:
            for sub in subs:
                self.abort(sub.request_id)
            raise

    def abort(self, request_id: str) -> None:
        """Stop a request and free its KV blocks (at the next step boundary)."""
        self._aborts.append(request_id)
        self._wake.set()

    # -- driver side -----------------------------------------------------------------------
    async def _drive(self) -> None:
        while True:
            self._apply_commands()
            if not self.core.has_unfinished():
                self.snapshot = self._take_snapshot()
                self._wake.clear()
                if not self._pending and not self._aborts:
                    await self._wake.wait()
                continue
            start = time.perf_counter()
            try:
                outputs = await asyncio.to_thread(self.core.step)
            except asyncio.CancelledError:
                raise
            except Exception as exc:    # a bug: fail the live requests, keep serving
                self._log("engine_error", error=repr(exc))
                self._fail_all(f"engine step failed: {exc!r}")
                continue
            seconds = time.perf_counter() - start
            self._dispatch(outputs)
            self.snapshot = self._take_snapshot()
            if self._on_step is not None:
                self._on_step(outputs, seconds)

    def _apply_commands(self) -> None:
        pending, self._pending = self._pending, []
        for sub in pending:
            if sub.accepted.done():                 # the handler went away meanwhile
                continue
            try:
                self.core.add_request(sub.request_id, sub.token_ids, sub.params)
            except TrtCompileError as exc:
                sub.accepted.set_exception(exc)
                continue
            self._sinks[sub.request_id] = sub.sink
            sub.accepted.set_result(None)
        aborts, self._aborts = self._aborts, []
        for rid in aborts:
            if self._sinks.pop(rid, None) is not None:
                self.core.abort_request(rid)
                self._log("request_aborted", request_id=rid)

    def _dispatch(self, outputs: list[RequestOutput]) -> None:
        finished = set()
        for out in outputs:
            sink = self._sinks.get(out.request_id)
            if sink is not None:
                sink.put_nowait(out)
                if out.finished:
                    finished.add(out.request_id)
        for rid in finished:                # with n > 1, gone once all samples are done
            if not self._is_live(rid):
                self._sinks.pop(rid, None)

    def _is_live(self, rid: str) -> bool:
        reqs = self.core.scheduler.requests
        return any(r.request_id == rid or r.parent_id == rid for r in reqs.values())

    def _fail_all(self, message: str) -> None:
        for rid, sink in list(self._sinks.items()):
            try:
                self.core.abort_request(rid)
            except Exception as exc:        # the scheduler may be inconsistent after a bug
                self._log("engine_error", request_id=rid, error=repr(exc))
            sink.put_nowait(EngineFailure(rid, message))
        self._sinks.clear()

    def _take_snapshot(self) -> EngineSnapshot:
        sched = self.core.scheduler
        return EngineSnapshot(num_waiting=len(sched.waiting), num_running=len(sched.running),
                              kv_blocks_used=sched.kv.num_used_blocks,
                              kv_blocks_free=sched.kv.num_free_blocks,
                              prefix_cache_hit_rate=sched.kv.stats.hit_rate,
                              num_preemptions=sched.stats.num_preemptions)
