"""OpenAI request bodies (pydantic) and their mapping to SamplingParams."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trtcompile.errors import RequestError
from trtcompile.runtime.sampling_params import SamplingParams

MAX_SEED = 2**63 - 1
MIN_TEMPERATURE = 1e-5        # below this (and >= 0) sampling is greedy: avoids inf logits
MIN_TOP_P = 1e-6              # float32 top_p must not underflow to 0 in the sampler

TokenIds = list[int]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class _Body(BaseModel):
    # Unknown OpenAI fields (logit_bias, user, ...) are accepted and ignored.
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    max_tokens: int | None = None
    temperature: float = Field(1.0, allow_inf_nan=False)
    top_p: float = Field(1.0, allow_inf_nan=False)
    n: int = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    # vLLM-style extensions
    top_k: int = 0
    ignore_eos: bool = False
    stop_token_ids: list[int] = Field(default_factory=list)


class CompletionRequest(_Body):
    prompt: str | list[str] | TokenIds | list[TokenIds]
    max_tokens: int | None = 16
    echo: bool = False


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict] | None = None


class ChatCompletionRequest(_Body):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = None


def prompts_of(prompt: str | list) -> list[str | list[int]]:
    """A completion `prompt` as a list of prompts (text or token ids)."""
    if isinstance(prompt, str):
        return [prompt]
    if not prompt:
        raise RequestError("prompt must not be empty")
    if all(isinstance(p, int) for p in prompt):
        return [list(prompt)]
    return list(prompt)


def chat_text(messages: list[ChatMessage]) -> list[dict]:
    """Messages as the chat template wants them (text parts of multi-part content joined)."""
    out = []
    for m in messages:
        content = m.content
        if isinstance(content, list):
            parts = [p.get("text") for p in content if p.get("type") == "text"]
            if any(not isinstance(p, str) for p in parts) or len(parts) != len(content):
                raise RequestError("messages: only text content parts are supported")
            content = "".join(parts)
        out.append({"role": m.role, "content": content or ""})
    return out


def sampling_params(body: _Body, max_tokens: int) -> SamplingParams:
    """SamplingParams for a body; raises RequestError naming the bad field."""
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    temperature = body.temperature
    if 0 <= temperature < MIN_TEMPERATURE:
        temperature = 0.0
    top_p = max(body.top_p, MIN_TOP_P) if body.top_p > 0 else body.top_p
    if body.temperature > 2.0:
        raise RequestError(f"temperature must be in [0, 2], got {body.temperature!r}")
    params = SamplingParams(max_tokens=max_tokens, temperature=temperature, top_k=body.top_k,
                            top_p=top_p, seed=body.seed, stop=stop, ignore_eos=body.ignore_eos,
                            stop_token_ids=tuple(body.stop_token_ids), n=body.n)
    params.validate()
    return params
