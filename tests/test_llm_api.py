"""The Python API's argument checks (LLM): user errors before any file is read."""

import pytest


@pytest.mark.parametrize("kwargs,needle", [
    (dict(num_blocks=1), "num_blocks must be an integer >= 2"),
    (dict(num_blocks=0), "num_blocks must be an integer >= 2"),       # not "the default"
    (dict(max_num_seqs=0), "max_num_seqs must be an integer >= 1"),
    (dict(max_num_tokens=-5), "max_num_tokens must be an integer >= 1"),
    (dict(num_blocks="64"), "got '64'"),
    (dict(device="tpu"), "unknown device 'tpu'")])
def test_llm_refuses_bad_arguments_before_loading(tmp_path, kwargs, needle):
    """The Python API: each bad argument is a ConfigError (a user error, also a ValueError),
    raised before the artifact is read (the path does not exist)."""
    from trtcompile.errors import ConfigError
    from trtcompile.llm import LLM

    with pytest.raises(ConfigError, match=needle):
        LLM(tmp_path / "no-artifact", **kwargs)


@pytest.mark.parametrize("kwargs,needle", [
    (dict(temperature="hot"), "temperature must be a number"),
    (dict(top_p=None), "top_p must be a number"),
    (dict(seed="x"), "seed must be an integer or None"),
    (dict(seed=True), "seed must be an integer or None"),
    (dict(stop_token_ids=(1.5,)), "stop_token_ids must hold integers")])
def test_sampling_params_of_the_wrong_type_are_request_errors(kwargs, needle):
    """Not a TypeError from a comparison, nor (a seed) a failure inside a step."""
    from trtcompile.errors import RequestError
    from trtcompile.runtime.sampling_params import SamplingParams

    with pytest.raises(RequestError, match=needle):
        SamplingParams(**kwargs).validate()


def test_one_stop_string_is_one_stop_string():
    """stop="END" is the stop string END (as the OpenAI API takes it), not E, N and D."""
    import numpy as np

    from trtcompile.runtime.sampling_params import SamplingParams

    p = SamplingParams(stop="END", seed=np.int64(3), stop_token_ids=(np.int32(2),))
    p.validate()
    assert p.stop == ("END",)
