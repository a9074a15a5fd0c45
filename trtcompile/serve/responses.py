"""OpenAI response bodies: completions, chat, their SSE chunks, and the error shape."""

from __future__ import annotations

import json
import time

from trtcompile.serve.generation import Choice, Generation

DONE = "data: [DONE]\n\n"


def sse(payload: dict) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def error_body(message: str, type_: str, code: int | str | None = None,
               param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _head(gen: Generation, model: str, obj: str) -> dict:
    return {"id": gen.request_id, "object": obj, "created": int(time.time()), "model": model}


def completion(gen: Generation, model: str, choices: list[Choice],
               echo_texts: list[str] | None = None) -> dict:
    n = gen.params.n
    out = []
    for c in choices:
        text = c.text if echo_texts is None else echo_texts[c.index // n] + c.text
        out.append({"index": c.index, "text": text, "logprobs": None,
                    "finish_reason": c.finish_reason})
    return {**_head(gen, model, "text_completion"), "choices": out, "usage": gen.usage()}


def completion_chunk(gen: Generation, model: str, c: Choice | None, delta: str) -> dict:
    choices = [] if c is None else [{"index": c.index, "text": delta, "logprobs": None,
                                     "finish_reason": c.finish_reason}]
    return {**_head(gen, model, "text_completion"), "choices": choices}


def chat(gen: Generation, model: str, choices: list[Choice]) -> dict:
    out = [{"index": c.index, "message": {"role": "assistant", "content": c.text},
            "logprobs": None, "finish_reason": c.finish_reason} for c in choices]
    return {**_head(gen, model, "chat.completion"), "choices": out, "usage": gen.usage()}


def chat_chunk(gen: Generation, model: str, index: int, delta: dict,
               finish_reason: str | None) -> dict:
    return {**_head(gen, model, "chat.completion.chunk"),
            "choices": [{"index": index, "delta": delta, "logprobs": None,
                         "finish_reason": finish_reason}]}
