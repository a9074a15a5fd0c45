"""W8A8 GEMMs on CUDA through the lowering (torch._scaled_mm / torch._int_mm): a tiny
quantized Llama's logits on the GPU equal the CPU node-by-node run of the same graph."""

from collections import Counter

import numpy as np
import pytest
import torch

from quant.quant_harness import quantized_model, stepped_logits
from quant.test_lowering import W8A8
from trtcompile.executor import OnnxExecutor

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def llama64(tmp_path_factory):
    """A random Llama with head_dim 64 (the kernels' smallest), loaded and exported."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from trtcompile.export.onnx_export import export_onnx
    from trtcompile.models.loading import load_model

    root = tmp_path_factory.mktemp("llama64")
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=512, hidden_size=256, intermediate_size=512,
                                 num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2)).save_pretrained(root / "hf")
    loaded = load_model(str(root / "hf"))
    return loaded, export_onnx(loaded.model, root / "model.onnx", max_tokens=512,
                               log=lambda m: None)


@pytest.fixture(autouse=True)
def _setup(tmp_path, monkeypatch):
    from trtcompile.ops.cuda_kernels import register_cuda_impls

    monkeypatch.setenv("TRTCOMPILE_CACHE", str(tmp_path / "cache"))
    register_cuda_impls()


@pytest.mark.parametrize("case", W8A8)
def test_lowered_gemms_on_cuda_match_the_cpu_graph(llama64, case):
    if W8A8[case][1] == "fp8" and torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("fp8 GEMMs need sm_89+")
    quant, target = W8A8[case]
    loaded, path = llama64
    model = quantized_model(loaded, path, **quant)
    gpu = OnnxExecutor(model, "cuda")
    assert gpu.lowering.fused[target] == 8, gpu.lowering.summary()
    if quant.get("activation") != "static":   # the norms and SiluMul write codes, not values
        assert gpu.lowering.quantizing == Counter(RMSNorm=4, SiluMul=2), gpu.lowering.summary()
    gen = torch.Generator().manual_seed(5)
    seqs = [torch.randint(0, loaded.info.vocab_size, (n,), generator=gen).tolist()
            for n in (7, 30, 3, 21)]
    splits = [6, 29, 3, 20]     # step 1: 58 rows; step 2: 3 rows (_int_mm's padded path)
    ref = stepped_logits(OnnxExecutor(model), loaded.info, seqs, splits)
    out = stepped_logits(gpu, loaded.info, seqs, splits, device="cuda")
    err = ((out - ref).abs().max() / (ref.max() - ref.min())).item()
    # fp32 graph; the fused GEMM rounds its output to bf16 (torch._scaled_mm's row-wise
    # output type) and may quantize a few activations to the neighbouring code
    assert err < 0.02, f"{case}: max |gpu - cpu| / range = {err:.4f}"


def test_calibration_on_the_gpu_matches_the_cpu(llama64):
    """quantization.calibration_device=cuda: the same statistics as the CPU run, up to fp32
    summation order."""
    import onnx

    from trtcompile.passes import PASSES
    from trtcompile.passes.context import PassContext
    from trtcompile.passes.pipeline import run_passes
    from trtcompile.quant.calibrate import calibrate
    from trtcompile.quant.kv_cache import collect_kv_absmax

    loaded, path = llama64
    ctx = PassContext(info=loaded.info, inv_freq=loaded.inv_freq, block_size=16)
    model, _ = run_passes(onnx.load(str(path)), PASSES[:-2], ctx, log=lambda m: None)
    kw = dict(model_source="llama64", seed=0, mode="fp8", text="calibration text " * 60,
              tokenizer=None, info=loaded.info, block_size=16, log=lambda m: None)
    on_cpu, _ = calibrate(model, **kw, device="cpu")
    on_gpu, hit = calibrate(model, **{**kw, "model_source": "llama64-gpu"}, device="cuda")
    assert not hit and on_cpu.keys() == on_gpu.keys() and len(on_cpu) == 8
    for name in on_cpu:
        np.testing.assert_allclose(on_gpu[name], on_cpu[name], rtol=2e-3, atol=1e-5, err_msg=name)
    tokens = [b % loaded.info.vocab_size for b in b"kv calibration " * 40]
    kv = {d: collect_kv_absmax(model, tokens, loaded.info, 16, lambda m: None, d)
          for d in ("cpu", "cuda")}
    assert kv["cpu"].shape == (loaded.info.num_layers, 2) and (kv["cpu"] > 0).all()
    np.testing.assert_allclose(kv["cuda"], kv["cpu"], rtol=2e-3)
