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
