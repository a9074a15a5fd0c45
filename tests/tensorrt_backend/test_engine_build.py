"""A real engine build and step on a GPU with TensorRT and the plugin library; skipped
(with the reason) everywhere else. Never faked, never run through the torch backend."""

import pytest

from trtcompile.backends.tensorrt._trt import has_tensorrt

pytestmark = pytest.mark.skipif(not has_tensorrt(), reason="tensorrt is not installed "
                                "(pip install --extra-index-url https://pypi.nvidia.com 'tensorrt>=10.9')")


def _needs_gpu_and_plugins():
    import torch

    from trtcompile.backends.tensorrt.builder import find_plugin_library
    from trtcompile.errors import BackendUnavailableError

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    try:
        return find_plugin_library()
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))


def test_build_and_run_tiny_llama(tmp_path):
    _needs_gpu_and_plugins()
    import torch

    from trtcompile.artifact import load_artifact
    from trtcompile.build import build
    from trtcompile.config import Backend, BuildConfig, Config, LimitsConfig, ModelConfig
    from trtcompile.backends.tensorrt.runner import TensorRTEngine
    from trtcompile.backends.tensorrt.arch import current_arch

    config = Config(model=ModelConfig(source="tiny-llama"),
                    build=BuildConfig(backend=Backend.TENSORRT, gpu_archs=(current_arch(),),
                                      output_dir=str(tmp_path / "art")),
                    limits=LimitsConfig(max_num_seqs=4, max_num_tokens=64, max_model_len=128))
    build(config)
    art = load_artifact(tmp_path / "art")
    engine = TensorRTEngine(art.path, art.manifest)
    kv = art.manifest["io"]["inputs"][-1]
    shape = [4 if isinstance(d, str) else d for d in kv["shape"]]
    dev = engine.device
    ids = torch.tensor([1, 2, 3], dtype=torch.int32, device=dev)
    inputs = {"input_ids": ids, "positions": torch.arange(3, dtype=torch.int32, device=dev),
              "query_start_loc": torch.tensor([0, 3], dtype=torch.int32, device=dev),
              "seq_lens": torch.tensor([3], dtype=torch.int32, device=dev),
              "block_tables": torch.tensor([[0]], dtype=torch.int32, device=dev),
              "slot_mapping": torch.arange(3, dtype=torch.int32, device=dev),
              "kv_cache": torch.zeros(shape, dtype=getattr(torch, kv["dtype"]), device=dev)}
    logits = engine.execute(inputs)
    assert logits.shape == (1, art.manifest["io"]["outputs"][0]["shape"][1])
    assert torch.isfinite(logits).all()
