"""The torch backend's lowering of W8A8 patterns (executor/lowering.py), on the CPU: every
quantized GEMM is fused, nothing of its Q/DQ chain is left, and the logits equal the graph
run node by node."""

from collections import Counter

import pytest
import torch

from quant.quant_harness import quantized_model, stepped_logits
from trtcompile.executor import OnnxExecutor

W8A8 = {
    "fp8_dynamic": (dict(mode="fp8"), "fp8"),
    "fp8_static": (dict(mode="fp8", activation="static"), "fp8"),
    "int8_sq_dynamic": (dict(mode="int8_sq"), "int8"),
    "int8_sq_static": (dict(mode="int8_sq", activation="static"), "int8"),
}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRTCOMPILE_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("case", W8A8)
def test_lowering_fuses_every_quantized_gemm_and_keeps_the_logits(exported, case):
    quant, target = W8A8[case]
    loaded, path = exported("llama")
    model = quantized_model(loaded, path, **quant)
    plain = OnnxExecutor(model, lower=False)
    lowered = OnnxExecutor(model, lower=True)
    assert lowered.lowering.fused == Counter({target: 8}), lowered.lowering.summary()
    assert not lowered.lowering.kept
    ops = Counter(s.fn.__name__ for s in lowered.steps)
    if quant.get("activation") == "static":
        assert ops["quantized_gemm"] == 8 and not lowered.lowering.quantizing
    else:   # per layer: qkv and gate_up take their norm's codes, down SiluMul's; o quantizes
        assert lowered.lowering.quantizing == Counter(RMSNorm=4, SiluMul=2)
        assert (ops["quantized_gemm"], ops["quantized_gemm_codes"]) == (2, 6)
        assert (ops["rms_norm_quantize"], ops["silu_mul_quantize"]) == (4, 2)
        assert ops["rms_norm"] == 1 and ops["silu_mul"] == 0   # the final norm feeds lm_head
        assert "quantization fused into 4 RMSNorm, 2 SiluMul" in lowered.lowering.summary()
    assert not {"quantize_linear", "dequantize_linear", "quantize_int8", "quantize_fp8"} & set(ops)
    # the fused weights replace the originals: no quantized constant is kept twice
    assert sum(t.dtype in (torch.int8, torch.float8_e4m3fn) and t.dim() == 2
               for t in lowered.constants.values()) == 8
    gen = torch.Generator().manual_seed(5)
    seqs = [torch.randint(0, loaded.info.vocab_size, (n,), generator=gen).tolist() for n in (7, 30, 3)]
    a = stepped_logits(plain, loaded.info, seqs, [4, 17, 3])
    b = stepped_logits(lowered, loaded.info, seqs, [4, 17, 3])
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * a.abs().max().item())


def test_lowering_leaves_unquantized_graphs_alone(exported):
    loaded, path = exported("llama")
    model = quantized_model(loaded, path, mode="int8_weight_only")
    lowered = OnnxExecutor(model, lower=True)
    assert sum(lowered.lowering.fused.values()) == 0
    assert all(s.fn.__module__ != "trtcompile.executor.lowering" for s in lowered.steps)



@pytest.mark.parametrize("case", ["fp8_dynamic", "int8_sq_dynamic"])
def test_fast_accumulation_reaches_only_the_fp8_gemms(exported, case):
    quant, target = W8A8[case]
    loaded, path = exported("llama")
    model = quantized_model(loaded, path, **quant)
    for fast in (False, True):
        lowered = OnnxExecutor(model, lower=True, fp8_fast_accumulation=fast)
        flags = [s.attrs["fast_accum"] for s in lowered.steps
                 if s.fn.__name__ in ("quantized_gemm", "quantized_gemm_codes")]
        assert len(flags) == 8 and set(flags) == {fast and target == "fp8"}


def test_fast_accumulation_is_a_build_setting():
    from trtcompile.backends.torch_backend import executor_options
    from trtcompile.config import load_config

    config = load_config(None, ["model.source=tiny-llama", "quantization.mode=fp8"])
    assert config.quantization.fp8_fast_accumulation               # the default
    assert executor_options({"build_config": config.to_dict()}) == {"fp8_fast_accumulation": True}
    exact = load_config(None, ["model.source=tiny-llama", "quantization.mode=fp8",
                               "quantization.fp8_fast_accumulation=false"])
    assert executor_options({"build_config": exact.to_dict()}) == {"fp8_fast_accumulation": False}
    assert executor_options({}) == {"fp8_fast_accumulation": False}  # artifacts before the key
