"""W8A8 GEMMs on CUDA through the lowering (torch._scaled_mm / torch._int_mm): a tiny
quantized Llama's logits on the GPU equal the CPU node-by-node run of the same graph."""

import pytest
import torch

from quant.quant_harness import quantized_model, stepped_logits
from quant.test_lowering import W8A8
from trtcompile.executor import OnnxExecutor

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(autouse=True)
def _setup(tmp_path, monkeypatch):
    from trtcompile.ops.cuda_kernels import register_cuda_impls

    monkeypatch.setenv("TRTCOMPILE_CACHE", str(tmp_path / "cache"))
    register_cuda_impls()


@pytest.mark.parametrize("case", W8A8)
def test_lowered_gemms_on_cuda_match_the_cpu_graph(exported, case):
    if W8A8[case][1] == "fp8" and torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("fp8 GEMMs need sm_89+")
    quant, target = W8A8[case]
    loaded, path = exported("llama")
    model = quantized_model(loaded, path, **quant)
    gpu = OnnxExecutor(model, "cuda")
    assert gpu.lowering.fused[target] == 8, gpu.lowering.summary()
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
