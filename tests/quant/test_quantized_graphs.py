"""Quantized graphs of a tiny model stay close to fp32; the ops are what each mode says."""

from collections import Counter

import onnx
import pytest
import torch

from quant.quant_harness import error_vs, quantized_model
from trtcompile.passes.context import PassContext
from trtcompile.passes.pipeline import run_passes
from trtcompile.passes import PASSES
from trtcompile.quant.calibrate import calibrate

SPLITS = [4, 10, 9, 1]
# mode settings -> (bound on max |logits - fp32| / logit range, ops that must appear)
CASES = {
    "int8_weight_only": (dict(mode="int8_weight_only"), 0.02, {"WeightOnlyGemm": 8}),
    "int4_g32": (dict(mode="int4_weight_only", group_size=32), 0.15, {"WeightOnlyGemm": 8}),
    "fp8_static": (dict(mode="fp8", activation="static"), 0.06, {"QuantizeLinear": 8, "DequantizeLinear": 16}),
    "fp8_dynamic": (dict(mode="fp8"), 0.06, {"QuantizeFp8": 8}),
    "int8_sq_static": (dict(mode="int8_sq", activation="static"), 0.03, {"QuantizeLinear": 8, "DequantizeLinear": 16}),
    "int8_sq_dynamic": (dict(mode="int8_sq"), 0.03, {"QuantizeInt8": 8}),
}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRTCOMPILE_CACHE", str(tmp_path / "cache"))


def _seqs(vocab):
    gen = torch.Generator().manual_seed(1)
    return [torch.randint(0, vocab, (n,), generator=gen).tolist() for n in (5, 23, 9, 40)]


@pytest.mark.parametrize("case", CASES)
def test_quantized_logits_close_to_fp32(exported, case):
    quant, bound, ops = CASES[case]
    loaded, path = exported("llama")
    model = quantized_model(loaded, path, **quant)
    counts = Counter(n.op_type for n in model.graph.node)
    for op, n in ops.items():
        assert counts[op] == n, f"{case}: {dict(counts)}"
    assert counts["Gemm"] + counts["MatMul"] >= 1                # lm_head left in full precision
    err = error_vs(model, loaded.model, loaded, _seqs(loaded.info.vocab_size), SPLITS)
    assert 0 < err <= bound, f"{case}: relative error {err:.4f} > {bound}"


def test_weights_are_stored_quantized(exported):
    loaded, path = exported("llama")
    model = quantized_model(loaded, path, mode="fp8")
    def matrices(m):
        return Counter(t.data_type for t in m.graph.initializer if len(t.dims) == 2)
    assert matrices(model)[onnx.TensorProto.FLOAT8E4M3FN] == 8
    model = quantized_model(loaded, path, mode="int4_weight_only", group_size=32)
    assert matrices(model)[onnx.TensorProto.UINT8] == 8


def test_calibration_cache_hit(exported, tmp_path):
    loaded, path = exported("llama")
    ctx = PassContext(info=loaded.info, inv_freq=loaded.inv_freq, block_size=4)
    model, _ = run_passes(onnx.load(str(path)), PASSES[:-2], ctx, log=lambda m: None)
    kw = dict(model_source="tiny-llama", seed=0, mode="fp8", text="hello world " * 40,
              tokenizer=None, info=loaded.info, block_size=4, log=lambda m: None)
    first, hit1 = calibrate(model, **kw)
    second, hit2 = calibrate(model, **kw)
    assert (hit1, hit2) == (False, True)
    assert len(first) == 8 and first.keys() == second.keys()
    for k in first:
        assert (first[k] == second[k]).all() and first[k].min() >= 0
    assert len(list((tmp_path / "cache" / "calib").glob("*.npz"))) == 1
    _, hit3 = calibrate(model, **{**kw, "text": "other text " * 40})
    assert not hit3


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_calibration_device_without_a_gpu():
    from trtcompile.errors import ConfigError
    from trtcompile.quant.calibrate import resolve_device

    lines = []
    assert resolve_device("auto", lines.append) == "cpu"
    assert lines and "on the CPU" in lines[0]
    assert resolve_device("cpu", lines.append) == "cpu"
    with pytest.raises(ConfigError, match="calibration_device is cuda"):
        resolve_device("cuda")


def test_calibration_cache_key_follows_every_weight():
    import numpy as np

    from trtcompile.quant.calibrate import cache_key

    weights = {"a": np.arange(12, dtype=np.float32).reshape(3, 4),
               "b": np.ones(5, dtype=np.float16), "c": np.zeros((2, 2), np.uint8)}
    key = cache_key("m", 0, [1, 2], "fp8", weights)
    assert key == cache_key("m", 0, [1, 2], "fp8", {k: v.copy() for k, v in weights.items()})
    assert key == cache_key("m", 0, [1, 2], "fp8", {**weights, "a": np.asfortranarray(weights["a"])})
    for name in weights:
        changed = weights[name].copy()
        changed.reshape(-1)[-1] += 1
        assert cache_key("m", 0, [1, 2], "fp8", {**weights, name: changed}) != key, name
    assert cache_key("m", 0, [1, 2], "fp8", {"a2": weights["a"], "b": weights["b"],
                                             "c": weights["c"]}) != key
    assert cache_key("m", 1, [1, 2], "fp8", weights) != key
