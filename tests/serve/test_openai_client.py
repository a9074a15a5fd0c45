"""The official openai client, unmodified, against the server."""

from __future__ import annotations

import httpx
import openai
import pytest

from conftest import MODEL_NAME, metric



@pytest.fixture(scope="module")
def client(server_url):
    return openai.OpenAI(base_url=server_url + "/v1", api_key="unused", max_retries=0,
                         timeout=30)


def test_models_and_health(client, server_url):
    assert [m.id for m in client.models.list().data] == [MODEL_NAME]
    assert httpx.get(server_url + "/health").json() == {"status": "ok"}


def test_completion(client):
    r = client.completions.create(model=MODEL_NAME, prompt="Hello, my name is", max_tokens=6,
                                  temperature=0, extra_body={"ignore_eos": True})
    assert r.object == "text_completion" and r.model == MODEL_NAME
    assert len(r.choices) == 1 and r.choices[0].finish_reason == "length"
    assert r.choices[0].text
    assert r.usage.completion_tokens == 6 and r.usage.prompt_tokens > 0
    again = client.completions.create(model=MODEL_NAME, prompt="Hello, my name is",
                                      max_tokens=6, temperature=0,
                                      extra_body={"ignore_eos": True})
    assert again.choices[0].text == r.choices[0].text          # greedy is deterministic


def test_completion_batch_and_n(client):
    r = client.completions.create(model=MODEL_NAME, prompt=["one", "two"], max_tokens=3,
                                  n=2, seed=7, extra_body={"ignore_eos": True})
    assert sorted(c.index for c in r.choices) == [0, 1, 2, 3]
    assert r.usage.completion_tokens == 12


def test_chat(client):
    r = client.chat.completions.create(
        model=MODEL_NAME, max_tokens=5, temperature=0, extra_body={"ignore_eos": True},
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "What is 2+2?"}])
    msg = r.choices[0].message
    assert r.object == "chat.completion" and msg.role == "assistant" and msg.content
    assert r.usage.completion_tokens == 5 and r.choices[0].finish_reason == "length"


def test_stream_completion_matches_non_stream(client):
    kw = dict(model=MODEL_NAME, prompt="The capital of France", max_tokens=8, temperature=0,
              extra_body={"ignore_eos": True})
    full = client.completions.create(**kw).choices[0].text
    chunks = list(client.completions.create(stream=True, **kw))
    assert "".join(c.choices[0].text for c in chunks) == full
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])


def test_stream_chat_with_usage(client):
    kw = dict(model=MODEL_NAME, max_tokens=7, temperature=0, extra_body={"ignore_eos": True},
              messages=[{"role": "user", "content": "Say hi"}])
    full = client.chat.completions.create(**kw).choices[0].message.content
    chunks = list(client.chat.completions.create(stream=True,
                                                 stream_options={"include_usage": True}, **kw))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "length" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 7


def test_raw_sse_ends_with_done(server_url):
    body = {"model": MODEL_NAME, "prompt": [5, 6, 7], "max_tokens": 3, "stream": True}
    with httpx.stream("POST", server_url + "/v1/completions", json=body, timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in r.iter_lines() if ln]
    assert all(ln.startswith("data: ") for ln in lines) and lines[-1] == "data: [DONE]"


def test_errors_map_to_client_exceptions(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="gpt-4", prompt="x", max_tokens=2)
    assert e.value.body["message"].startswith("model 'gpt-4' is not served")
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=MODEL_NAME, prompt="x", temperature=-0.5)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL_NAME, messages=[], max_tokens=2)


def test_metrics_count_tokens(client, server_url):
    before = metric(httpx.get(server_url + "/metrics").text, "trtcompile_generation_tokens_total")
    client.completions.create(model=MODEL_NAME, prompt="count me", max_tokens=4,
                              extra_body={"ignore_eos": True})
    text = httpx.get(server_url + "/metrics").text
    assert metric(text, "trtcompile_generation_tokens_total") == before + 4
    assert metric(text, "trtcompile_time_to_first_token_seconds_count") >= 1
    assert metric(text, "trtcompile_kv_blocks_used") == 0
