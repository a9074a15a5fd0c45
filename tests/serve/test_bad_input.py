"""Bad requests get OpenAI-shaped 4xx errors, never a 500 or a hang; the server keeps serving."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import MODEL_NAME

TIMEOUT = 30


@pytest.fixture(scope="module")
def http(server_url):
    with httpx.Client(base_url=server_url, timeout=TIMEOUT) as c:
        yield c


def _error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    return err


def _still_serves(http: httpx.Client) -> None:
    r = http.post("/v1/completions", json={"model": MODEL_NAME, "prompt": "ok", "max_tokens": 2})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] >= 1


CASES = [
    ("malformed json", b'{"prompt": "x", ', 400),
    ("not an object", b"[1, 2, 3]", 400),
    ("missing prompt", {"model": MODEL_NAME}, 400),
    ("prompt wrong type", {"prompt": 3.5}, 400),
    ("max_tokens wrong type", {"prompt": "x", "max_tokens": "many"}, 400),
    ("max_tokens zero", {"prompt": "x", "max_tokens": 0}, 400),
    ("max_tokens huge", {"prompt": "x", "max_tokens": 10**30}, 400),
    ("prompt over the limit", {"prompt": [1] * 600, "max_tokens": 1}, 400),
    ("prompt + max_tokens over the limit", {"prompt": [1] * 500, "max_tokens": 100}, 400),
    ("empty prompt", {"prompt": ""}, 400),
    ("empty token list", {"prompt": []}, 400),
    ("token id outside vocab", {"prompt": [1, 49152]}, 400),
    ("negative token id", {"prompt": [-1]}, 400),
    ("unknown model", {"model": "llama-70b", "prompt": "x"}, 404),
    ("temperature < 0", {"prompt": "x", "temperature": -1}, 400),
    ("temperature nan", b'{"prompt": "x", "temperature": NaN}', 400),
    ("top_p zero", {"prompt": "x", "top_p": 0}, 400),
    ("top_k negative", {"prompt": "x", "top_k": -3}, 400),
    ("n zero", {"prompt": "x", "n": 0}, 400),
    ("n huge", {"prompt": "x", "n": 10**6}, 400),
    ("negative seed", {"prompt": "x", "seed": -1}, 400),
    ("empty stop string", {"prompt": "x", "stop": [""]}, 400),
    ("stream wrong type", {"prompt": "x", "stream": "yes please"}, 400),
]


@pytest.mark.parametrize("body,status", [(b, s) for _, b, s in CASES],
                         ids=[name for name, _, _ in CASES])
def test_bad_completion_request(http, body, status):
    if isinstance(body, bytes):
        r = http.post("/v1/completions", content=body,
                      headers={"content-type": "application/json"})
    else:
        r = http.post("/v1/completions", json=body)
    _error(r, status)


@pytest.mark.parametrize("body", [
    {"messages": []},
    {"messages": "hi"},
    {"messages": [{"role": "wizard", "content": "hi"}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
    {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000},
    {"messages": [{"role": "user", "content": "hi"}], "temperature": -0.1},
], ids=["empty", "not a list", "bad role", "image part", "huge max_tokens", "temperature"])
def test_bad_chat_request(http, body):
    _error(http.post("/v1/chat/completions", json=body), 400)


def test_routes_and_methods(http):
    _error(http.get("/v1/nope"), 404)
    _error(http.get("/v1/completions"), 405)


def test_extreme_but_valid_sampling_is_served(http):
    for extra in ({"temperature": 1e-300}, {"top_p": 1e-300, "temperature": 1.0},
                  {"top_k": 10**9, "temperature": 1.5}, {"seed": 2**63 - 1}):
        r = http.post("/v1/completions", json={"prompt": "x", "max_tokens": 2, **extra})
        assert r.status_code == 200, (extra, r.text)
    _still_serves(http)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8)
junk = st.sampled_from(["3", 2.5, [], {}, True, float("inf")])   # never null: null = long
FIELDS = {
    "model": st.sampled_from([MODEL_NAME, "other"]) | json_values,
    "prompt": st.text(max_size=40) | st.lists(st.integers(-5, 60000), max_size=12)
    | json_values,
    "max_tokens": st.integers(-3, 4) | st.sampled_from([10**6, 2**63]) | junk,
    "temperature": st.floats(-2, 3) | json_values,
    "top_p": st.floats(-1, 2) | json_values,
    "top_k": st.integers(-2, 100) | json_values,
    "n": st.integers(-1, 3) | json_values,
    "stop": st.lists(st.text(max_size=3), max_size=2) | json_values,
    "seed": st.integers(-5, 2**64) | json_values,
    "stream": st.booleans() | json_values,
    "ignore_eos": st.booleans() | json_values,
    "echo": st.booleans(),
    "logit_bias": json_values,
}


@st.composite
def completion_bodies(draw):
    keys = draw(st.sets(st.sampled_from(sorted(FIELDS)), max_size=len(FIELDS)))
    body = {k: draw(FIELDS[k]) for k in sorted(keys)}
    body.setdefault("max_tokens", 3)         # keep valid requests short
    return body


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=completion_bodies())
def test_fuzz_completions_never_500(http, body):
    r = http.post("/v1/completions", content=json.dumps(body).encode(),
                  headers={"content-type": "application/json"})
    assert r.status_code in (200, 400, 404), (r.status_code, r.text, body)
    if r.status_code != 200:
        _error(r, r.status_code)
    elif body.get("stream") is True:
        assert r.text.rstrip().endswith("data: [DONE]")
        assert '"error"' not in r.text
    else:
        assert "choices" in r.json()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(messages=json_values | st.lists(st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "x"]) | json_values,
     "content": st.text(max_size=20) | json_values}), max_size=3),
    max_tokens=st.integers(-1, 3) | junk)
def test_fuzz_chat_never_500(http, messages, max_tokens):
    body = {"model": MODEL_NAME, "messages": messages, "max_tokens": max_tokens}
    r = http.post("/v1/chat/completions", content=json.dumps(body).encode(),
                  headers={"content-type": "application/json"})
    assert r.status_code in (200, 400, 404), (r.status_code, r.text, body)
    if r.status_code != 200:
        _error(r, r.status_code)


def test_still_serves_after_fuzz(http):
    _still_serves(http)
