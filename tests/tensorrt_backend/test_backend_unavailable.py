"""Without tensorrt, the backend says how to install it (never falls back to torch)."""

import pytest

from trtcompile.backends.tensorrt._trt import has_tensorrt
from trtcompile.backends.tensorrt.builder import build_engine
from trtcompile.backends.tensorrt.profiles import EngineLimits
from trtcompile.backends.tensorrt.runner import TensorRTEngine
from trtcompile.errors import BackendUnavailableError

pytestmark = pytest.mark.skipif(has_tensorrt(),
                                reason="tensorrt is installed: nothing unavailable to test")
LIMITS = EngineLimits(max_num_seqs=4, max_num_tokens=64, max_model_len=128, block_size=16)


def test_build_engine_raises_with_install_hint(tmp_path):
    with pytest.raises(BackendUnavailableError) as exc:
        build_engine(tmp_path / "model.onnx", tmp_path / "sm90.engine", tmp_path / "lib.so", LIMITS,
                     timing_cache_path=None, hardware_compatibility=None, workspace_bytes=None,
                     verbose=False)
    assert "pip install" in str(exc.value) and "tensorrt>=10.9" in str(exc.value)
    assert not (tmp_path / "sm90.engine").exists()


def test_runner_raises_with_install_hint(tmp_path):
    with pytest.raises(BackendUnavailableError, match="pypi.nvidia.com"):
        TensorRTEngine(tmp_path, {"engines": {}})
