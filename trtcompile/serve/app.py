"""The OpenAI-compatible FastAPI app: routes, request → engine requests, error shapes."""

from __future__ import annotations

import asyncio
import copy
import itertools
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from trtcompile.errors import ModelNotFoundError, OverloadedError, RequestError, TrtCompileError
from trtcompile.serve import protocol, responses
from trtcompile.serve.async_engine import AsyncEngine
from trtcompile.serve.generation import ClientDisconnected, EngineFailedError, Generation
from trtcompile.serve.jsonlog import JsonLog
from trtcompile.serve.metrics import ServerMetrics

RETRY_AFTER_S = "1"


@dataclass
class ServerState:
    engine: AsyncEngine
    metrics: ServerMetrics
    tokenizer: object | None         # the front end's own copy (the engine thread decodes)
    model_name: str
    max_model_len: int
    vocab_size: int
    max_num_seqs: int
    log: JsonLog
    created: int = field(default_factory=lambda: int(time.time()))
    _ids: itertools.count = field(default_factory=itertools.count)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}-{uuid.uuid4().hex[:8]}"

    def encode(self, prompt: str | list[int]) -> list[int]:
        if isinstance(prompt, str):
            if self.tokenizer is None:
                raise RequestError("prompt: this model has no tokenizer; give token ids")
            ids = self.tokenizer.encode(prompt)
        else:
            ids = list(prompt)
        if not ids:
            raise RequestError("prompt must not be empty")
        bad = [t for t in ids if not 0 <= t < self.vocab_size]
        if bad:
            raise RequestError(f"prompt: token id {bad[0]} is outside the vocabulary "
                               f"[0, {self.vocab_size})")
        return ids

    def check_model(self, name: str | None) -> None:
        if name is not None and name != self.model_name:
            raise ModelNotFoundError(f"model '{name}' is not served here; "
                                     f"available: ['{self.model_name}']")


def create_app(llm, *, model_name: str, max_queue: int = 256, log: JsonLog | None = None):
    """An app serving `llm` (a trtcompile.llm.LLM); the engine task runs while it lives."""
    log = log or JsonLog()
    metrics = ServerMetrics(model_name)

    def on_step(outputs, seconds):
        metrics.step.labels(model_name).observe(seconds)
        metrics.generated.labels(model_name).inc(sum(len(o.new_token_ids) for o in outputs))

    engine = AsyncEngine(llm.engine, max_queue, log=log, on_step=on_step)
    state = ServerState(engine, metrics, copy.deepcopy(llm.tokenizer), model_name,
                        llm.max_model_len, llm.artifact.manifest["model"]["vocab_size"],
                        llm.scheduler_config.max_num_seqs, log)

    @asynccontextmanager
    async def lifespan(app):
        engine.start()
        log("server_started", model=model_name, max_queue=max_queue)
        yield
        await engine.stop()

    app = FastAPI(title="trtcompile", lifespan=lifespan)
    app.state.server = state
    _add_error_handlers(app, state)

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{
            "id": model_name, "object": "model", "created": state.created,
            "owned_by": "trtcompile", "max_model_len": state.max_model_len}]}

    @app.get("/metrics")
    async def metrics_route():
        return Response(metrics.render(engine.snapshot), media_type=metrics.content_type)

    @app.post("/v1/completions")
    async def completions(body: protocol.CompletionRequest, request: Request):
        state.check_model(body.model)
        texts = protocol.prompts_of(body.prompt)
        prompts = [state.encode(p) for p in texts]
        gen = _generation(state, "cmpl", prompts, body, body.max_tokens, request)
        await _start(state, gen)
        if body.stream:
            return _sse(_stream_completion(state, gen))
        choices = await gen.collect()
        echo = [t if isinstance(t, str) else "" for t in texts] if body.echo else None
        _log_done(state, gen)
        return responses.completion(gen, model_name, choices, echo)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: protocol.ChatCompletionRequest, request: Request):
        state.check_model(body.model)
        tok = state.tokenizer
        if tok is None or not getattr(tok, "chat_template", None):
            raise RequestError("this model's tokenizer has no chat template; "
                               "use /v1/completions")
        messages = protocol.chat_text(body.messages)
        try:
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except (ValueError, TypeError) as exc:
            raise RequestError(f"messages: the chat template rejected them: {exc}") from None
        except Exception as exc:                # jinja2 TemplateError and friends
            raise RequestError(f"messages: the chat template failed: {exc}") from None
        prompt = tok.encode(text, add_special_tokens=False)
        max_tokens = body.max_completion_tokens or body.max_tokens
        gen = _generation(state, "chatcmpl", [state.encode(prompt)], body, max_tokens, request)
        await _start(state, gen)
        if body.stream:
            return _sse(_stream_chat(state, gen))
        choices = await gen.collect()
        _log_done(state, gen)
        return responses.chat(gen, model_name, choices)

    return app


def _generation(state: ServerState, prefix: str, prompts: list[list[int]], body,
                max_tokens: int | None, request: Request) -> Generation:
    if not 1 <= body.n <= state.max_num_seqs:
        raise RequestError(f"n must be in [1, {state.max_num_seqs}], got {body.n}")
    if max_tokens is None:                       # as much as the context allows
        max_tokens = max(1, state.max_model_len - max(map(len, prompts)))
    params = protocol.sampling_params(body, max_tokens)
    gen = Generation(state.engine, state.metrics, state.new_id(prefix), prompts, params,
                     None if body.stream else request.is_disconnected)
    gen.include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return gen


async def _start(state: ServerState, gen: Generation) -> None:
    await gen.start()
    state.log("request_started", request_id=gen.request_id, num_prompts=len(gen.prompts),
              prompt_tokens=sum(map(len, gen.prompts)), max_tokens=gen.params.max_tokens,
              n=gen.params.n)


def _log_done(state: ServerState, gen: Generation, outcome: str = "ok") -> None:
    state.metrics.requests.labels(state.model_name, outcome).inc()
    state.log("request_finished", request_id=gen.request_id, outcome=outcome,
              completion_tokens=gen.usage()["completion_tokens"],
              seconds=round(time.perf_counter() - gen.start_time, 4),
              finish_reasons=sorted({str(c.finish_reason) for c in gen.choices.values()}))


def _sse(body) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


async def _stream_completion(state: ServerState, gen: Generation):
    async def chunks():
        async for c in gen.updates():
            delta = c.take_delta()
            if delta or c.finish_reason is not None:
                yield responses.sse(responses.completion_chunk(gen, state.model_name, c, delta))
        if gen.include_usage:
            yield responses.sse({**responses.completion_chunk(gen, state.model_name, None, ""),
                                 "choices": [], "usage": gen.usage()})
    async for line in _guarded(state, gen, chunks()):
        yield line


async def _stream_chat(state: ServerState, gen: Generation):
    async def chunks():
        for c in sorted(gen.choices.values(), key=lambda c: c.index):
            yield responses.sse(responses.chat_chunk(gen, state.model_name, c.index,
                                                     {"role": "assistant", "content": ""}, None))
        async for c in gen.updates():
            delta = c.take_delta()
            if delta:
                yield responses.sse(responses.chat_chunk(gen, state.model_name, c.index,
                                                         {"content": delta}, None))
            if c.finish_reason is not None:
                yield responses.sse(responses.chat_chunk(gen, state.model_name, c.index, {},
                                                         c.finish_reason))
        if gen.include_usage:
            yield responses.sse({**responses.chat_chunk(gen, state.model_name, 0, {}, None),
                                 "choices": [], "usage": gen.usage()})
    async for line in _guarded(state, gen, chunks()):
        yield line


async def _guarded(state: ServerState, gen: Generation, chunks):
    """SSE lines ending in [DONE]; an engine failure becomes an error event; a client
    that goes away (cancellation) aborts the unfinished engine requests."""
    outcome = "ok"
    try:
        async for line in chunks:
            yield line
        yield responses.DONE
    except EngineFailedError as exc:
        outcome = "engine_error"
        yield responses.sse(responses.error_body(str(exc), "internal_error", 500))
        yield responses.DONE
    except (asyncio.CancelledError, GeneratorExit):
        outcome = "disconnected"
        raise
    finally:
        if not gen.done:
            gen.abort_unfinished()
        _log_done(state, gen, outcome)


def _add_error_handlers(app: FastAPI, state: ServerState) -> None:
    def reply(status: int, message: str, type_: str, param=None, headers=None):
        return JSONResponse(responses.error_body(message, type_, status, param), status,
                            headers=headers)

    @app.exception_handler(TrtCompileError)
    async def user_error(request: Request, exc: TrtCompileError):
        state.log("request_rejected", path=request.url.path, error=str(exc),
                  kind=type(exc).__name__)
        if isinstance(exc, ModelNotFoundError):
            return reply(404, str(exc), "invalid_request_error", "model")
        if isinstance(exc, OverloadedError):
            return reply(503, str(exc), "overloaded_error",
                         headers={"Retry-After": RETRY_AFTER_S})
        return reply(400, str(exc), "invalid_request_error")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(loc) or None
        message = f"{param or 'body'}: {first.get('msg', 'invalid request')}"
        return reply(400, message, "invalid_request_error", param)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return reply(exc.status_code, str(exc.detail), "invalid_request_error",
                     headers=getattr(exc, "headers", None))

    @app.exception_handler(ClientDisconnected)
    async def client_gone(request: Request, exc: ClientDisconnected):
        state.log("request_aborted", request_id=str(exc), reason="client disconnected")
        return Response(status_code=499)          # nobody reads it; nginx's convention

    @app.exception_handler(EngineFailedError)
    async def engine_failed(request: Request, exc: EngineFailedError):
        return reply(500, str(exc), "internal_error")

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception):
        state.log("internal_error", path=request.url.path, error=repr(exc))
        return reply(500, f"internal error: {type(exc).__name__}", "internal_error")
