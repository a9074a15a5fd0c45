"""One HTTP generation request: its engine requests, their outputs as text deltas,
timing metrics, and abort of whatever is unfinished when the client goes away."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from trtcompile.runtime.engine_core import RequestOutput
from trtcompile.runtime.sampling_params import SamplingParams
from trtcompile.serve.async_engine import AsyncEngine, EngineFailure
from trtcompile.serve.metrics import ServerMetrics

DISCONNECT_POLL_S = 0.5


class EngineFailedError(Exception):
    """The engine failed under this request (a bug; HTTP 500)."""


class ClientDisconnected(Exception):
    """The client of a non-streaming request went away; its engine requests are aborted."""


@dataclass
class Choice:
    index: int                              # prompt_index * n + sample index
    prompt_tokens: int
    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    sent: int = 0                           # characters of text already streamed
    finish_reason: str | None = None
    last_token_at: float | None = None

    def take_delta(self) -> str:
        """Text not yet streamed; holds back a trailing partial UTF-8 character."""
        if self.finish_reason is None and self.text.endswith("\ufffd"):
            return ""
        delta = self.text[self.sent:]
        self.sent = max(self.sent, len(self.text))
        return delta


class Generation:
    def __init__(self, engine: AsyncEngine, metrics: ServerMetrics, request_id: str,
                 prompts: list[list[int]], params: SamplingParams,
                 is_disconnected: Callable | None = None) -> None:
        self.engine, self.metrics, self.request_id = engine, metrics, request_id
        self.prompts, self.params = prompts, params
        self.is_disconnected = is_disconnected
        self.sink: asyncio.Queue = asyncio.Queue()
        self.engine_ids = [f"{request_id}-{i}" for i in range(len(prompts))]
        self.choices = {(rid, k): Choice(i * params.n + k, len(p))
                        for i, (rid, p) in enumerate(zip(self.engine_ids, prompts))
                        for k in range(params.n)}
        self.start_time = time.perf_counter()
        self.include_usage = False              # stream_options.include_usage
        self._checked_at = self.start_time      # last poll of is_disconnected

    @property
    def done(self) -> bool:
        return all(c.finish_reason is not None for c in self.choices.values())

    async def start(self) -> None:
        """Queue the engine requests (OverloadedError / RequestError raised here)."""
        await self.engine.submit([(rid, p, self.params)
                                  for rid, p in zip(self.engine_ids, self.prompts)], self.sink)
        self.metrics.prompt_tokens.labels(self.metrics.model).inc(sum(map(len, self.prompts)))

    def abort_unfinished(self) -> None:
        for rid in self.engine_ids:
            if any(c.finish_reason is None for (r, _), c in self.choices.items() if r == rid):
                self.engine.abort(rid)

    async def updates(self) -> AsyncIterator[Choice]:
        """Yield each choice whenever it got new tokens, until all are finished."""
        while not self.done:
            item = await self._next()
            if item is None:
                continue
            if isinstance(item, EngineFailure):
                raise EngineFailedError(item.message)
            yield self._apply(item)

    async def _next(self) -> RequestOutput | EngineFailure | None:
        if self.is_disconnected is None:
            return await self.sink.get()
        now = time.perf_counter()
        if now - self._checked_at >= DISCONNECT_POLL_S:
            self._checked_at = now
            if await self.is_disconnected():
                raise ClientDisconnected(self.request_id)
        try:
            return await asyncio.wait_for(self.sink.get(), DISCONNECT_POLL_S)
        except TimeoutError:
            return None

    def _apply(self, out: RequestOutput) -> Choice:
        c = self.choices[(out.request_id, out.index)]
        now = time.perf_counter()
        m, model = self.metrics, self.metrics.model
        if c.last_token_at is None:
            m.ttft.labels(model).observe(now - self.start_time)
        else:
            m.tpot.labels(model).observe((now - c.last_token_at) / max(1, len(out.new_token_ids)))
        c.last_token_at = now
        c.token_ids += out.new_token_ids
        c.text = out.text if out.text is not None else " ".join(map(str, c.token_ids))
        if out.finished:
            c.finish_reason = out.finish_reason.value if out.finish_reason else "stop"
        return c

    async def collect(self) -> list[Choice]:
        """Run to the end (non-streaming); aborts the engine requests if cancelled."""
        try:
            async for _ in self.updates():
                pass
        finally:
            if not self.done:
                self.abort_unfinished()
        return sorted(self.choices.values(), key=lambda c: c.index)

    def usage(self) -> dict:
        prompt = sum(map(len, self.prompts))
        completion = sum(len(c.token_ids) for c in self.choices.values())
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

