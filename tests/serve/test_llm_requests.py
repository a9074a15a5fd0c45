"""LLM, the Python API, over the serving tests' artifact: prompts that cannot be served are
RequestErrors before any step, and a step that fails leaves no half-run request behind."""

from __future__ import annotations

import signal

import pytest

from trtcompile.errors import RequestError
from trtcompile.llm import LLM
from trtcompile.runtime.sampling_params import SamplingParams

GREEDY = SamplingParams(max_tokens=4, temperature=0.0, ignore_eos=True)


@pytest.fixture(scope="module")
def llm(chat_artifact):
    return LLM(chat_artifact, device="cpu", num_blocks=64)


@pytest.mark.parametrize("prompt,needle", [
    ([10**6], "prompt token id 1000000 is outside the vocabulary"),
    ([5, -1], "prompt token id -1 is outside the vocabulary"),
    ([5, 2.5], "sequence of token ids"),
    (3.5, "a prompt is a string or a sequence of token ids")])
def test_bad_prompts_are_request_errors(llm, prompt, needle):
    with pytest.raises(RequestError, match=needle):
        llm.generate([prompt], GREEDY)
    assert not llm.engine.has_unfinished()
    assert len(llm.generate([[5, 6, 7]], GREEDY)[0].token_ids) == 4


def test_a_failed_step_aborts_its_requests(llm, monkeypatch):
    calls = []

    def failing(inputs):
        calls.append(1)
        raise RuntimeError("injected step failure")

    monkeypatch.setattr(llm.engine, "execute_fn", failing)
    with pytest.raises(RuntimeError, match="injected"):
        llm.generate([[5, 6, 7], [8, 9]], GREEDY)
    assert calls and not llm.engine.has_unfinished()
    monkeypatch.undo()

    def hung(signum, frame):
        raise TimeoutError("generate did not finish: a half-run request was left behind")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        outs = llm.generate([[5, 6, 7], [8, 9]], GREEDY)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert [len(o.token_ids) for o in outs] == [4, 4]


def test_a_stream_left_early_is_aborted(llm):
    stream = llm.stream([5, 6, 7], SamplingParams(max_tokens=8, temperature=0.0, ignore_eos=True))
    assert next(stream)
    stream.close()                      # the caller stops iterating
    assert not llm.engine.has_unfinished()
    assert len(llm.generate([[5, 6, 7]], GREEDY)[0].token_ids) == 4


@pytest.mark.parametrize("prompts,params,needle", [
    ([[5, 6], [7, 8]], [GREEDY], "1 SamplingParams for 2 prompts"),
    ([[5, 6]], {"max_tokens": 2}, "params must be SamplingParams"),
    ([[5, 6]], SamplingParams(max_tokens=2, n=2), "n must be 1"),
    ([[5, 6], []], GREEDY, "must not be empty")])
def test_generate_queues_nothing_unless_all_prompts_are_valid(llm, prompts, params, needle):
    with pytest.raises(RequestError, match=needle):
        llm.generate(prompts, params)
    assert not llm.engine.has_unfinished()        # the valid first prompt was not left queued


def test_one_string_is_one_prompt(llm):
    outs = llm.generate("a b c", GREEDY)
    assert len(outs) == 1 and len(outs[0].token_ids) == 4
