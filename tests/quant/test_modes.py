"""The mode table is complete; hardware and backend checks name what is wrong."""

import pytest

from trtcompile.build import check_supported
from trtcompile.config import (ActivationQuant, Backend, BuildConfig, Config, ModelConfig,
                               QuantConfig, QuantMode)
from trtcompile.errors import BackendUnavailableError, ConfigError, HardwareError
from trtcompile.passes import PASSES, QUANT_PASSES
from trtcompile.quant.modes import (MODE_FLAGS, QuantFlag, QuantPlan, arch_capability,
                                    check_hardware, flags_of, pipeline_for, quant_passes)


def test_every_mode_has_flags_and_every_flag_is_used():
    assert set(MODE_FLAGS) == set(QuantMode)
    used = QuantFlag.NONE
    for flags in MODE_FLAGS.values():
        used |= flags
    assert used == QuantFlag(sum(f.value for f in QuantFlag))


def test_flags_are_consistent():
    weight_bits = QuantFlag.WEIGHT_INT8 | QuantFlag.WEIGHT_INT4 | QuantFlag.WEIGHT_FP8
    for mode, flags in MODE_FLAGS.items():
        if mode == QuantMode.NONE:
            assert flags == QuantFlag.NONE
            continue
        assert len(flags & weight_bits) == 1, mode          # exactly one weight format
        assert quant_passes(flags) and set(quant_passes(flags)) <= set(QUANT_PASSES)


def test_pipeline_inserts_quant_passes_before_the_cast():
    assert pipeline_for(PASSES, flags_of(QuantMode.NONE)) == PASSES
    names = pipeline_for(PASSES, flags_of(QuantMode.INT4_WEIGHT_ONLY))
    assert names.index("quantize_weights") == PASSES.index("cast_to_dtype")
    assert [n for n in names if n not in QUANT_PASSES] == list(PASSES)
    assert "quantize_gemms" in pipeline_for(PASSES, flags_of(QuantMode.INT8_SQ))


def test_kv_cache_pass_follows_the_quant_passes():
    assert "quantize_kv_cache" not in pipeline_for(PASSES, flags_of(QuantMode.NONE))
    names = pipeline_for(PASSES, flags_of(QuantMode.NONE), kv_quantized=True)
    assert names.index("quantize_kv_cache") == PASSES.index("cast_to_dtype")
    names = pipeline_for(PASSES, flags_of(QuantMode.INT8_WEIGHT_ONLY), kv_quantized=True)
    assert names.index("quantize_kv_cache") == names.index("quantize_weights") + 1
    assert names.index("quantize_kv_cache") + 1 == names.index("cast_to_dtype")


def test_calibration_needed():
    def plan(mode, act="static"):
        return QuantPlan(mode, flags_of(mode), activation=act)
    assert plan(QuantMode.FP8).needs_calibration
    assert not plan(QuantMode.FP8, "dynamic").needs_calibration
    assert plan(QuantMode.INT8_SQ, "dynamic").needs_calibration      # smoothing factors
    assert not plan(QuantMode.INT8_WEIGHT_ONLY).needs_calibration


@pytest.mark.parametrize("arch,cap", [("sm80", (8, 0)), ("sm89", (8, 9)), ("sm90a", (9, 0)),
                                      ("sm100", (10, 0))])
def test_arch_capability(arch, cap):
    assert arch_capability(arch) == cap


def test_fp8_needs_sm89():
    with pytest.raises(HardwareError, match=r"'fp8'.*NVIDIA A100.*sm_80"):
        check_hardware(QuantMode.FP8, (8, 0), "NVIDIA A100")
    check_hardware(QuantMode.FP8, (8, 9), "NVIDIA L4")
    check_hardware(QuantMode.INT8_SQ, (8, 0), "NVIDIA A100")


def _config(mode, backend=Backend.TENSORRT, archs=("sm80", "sm90"), activation="dynamic"):
    return Config(model=ModelConfig(source="tiny-llama"),
                  build=BuildConfig(backend=backend, gpu_archs=archs),
                  quantization=QuantConfig(mode=mode, activation=ActivationQuant(activation)))


def test_build_refuses_fp8_for_sm80():
    with pytest.raises(HardwareError, match="sm80"):
        check_supported(_config(QuantMode.FP8))


def test_build_refuses_weight_only_on_tensorrt_and_accepts_it_on_torch():
    with pytest.raises(ConfigError, match="WeightOnlyGemm"):
        check_supported(_config(QuantMode.INT4_WEIGHT_ONLY))
    for mode in QuantMode:
        check_supported(_config(mode, Backend.TORCH))


def test_build_refuses_dynamic_w8a8_on_tensorrt_only():
    for mode in (QuantMode.FP8, QuantMode.INT8_SQ):
        with pytest.raises(ConfigError, match="activation 'dynamic'.*static"):
            check_supported(_config(mode, archs=("sm90",)))
        check_supported(_config(mode, Backend.TORCH))
        try:                              # static Q/DQ is TensorRT's own: no refusal
            check_supported(_config(mode, archs=("sm90",), activation="static"))
        except BackendUnavailableError:   # ... other than TensorRT missing here
            pass


def test_gemm_targets_skip_only_the_lm_head():
    """A GEMM as wide as the vocabulary (q/k/v of 512 columns, vocab 512) is still a target;
    only the last such GEMM (the lm_head) is kept in full precision."""
    import numpy as np
    import onnx_graphsurgeon as gs

    from trtcompile.quant.targets import gemm_targets

    x = gs.Variable("x", np.float32, (1, 4))
    nodes, h = [], x
    for i, n in enumerate((8, 4, 8)):           # vocab 8: qkv-like, down-like, lm_head
        out = gs.Variable(f"h{i}", np.float32, (1, n))
        w = gs.Constant(f"w{i}", np.ones((h.shape[1], n), np.float32))
        nodes.append(gs.Node("MatMul", inputs=[h, w], outputs=[out]))
        h = out
    graph = gs.Graph(nodes=nodes, inputs=[x], outputs=[h])
    assert [n.inputs[1].name for n in gemm_targets(graph, vocab_size=8)] == ["w0", "w1"]
