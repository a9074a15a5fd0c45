"""Every pass preserves the function: packed batches, chunked prefill, decode over a cache
written by an earlier call, non-contiguous block tables."""

from collections import Counter

import onnx
import pytest
import torch

from trtcompile.models.families import SUPPORTED as FAMILIES
from paged_harness import compare_paged
from trtcompile.executor import OnnxExecutor
from trtcompile.passes import PASSES
from trtcompile.passes.context import PassContext
from trtcompile.passes.pipeline import run_passes

# Ops marked supported in the onnx-tensorrt operator matrix (docs/operators.md of
# onnx/onnx-tensorrt), plus LayerNormalization (opset 17, listed from TensorRT 8.6 on).
TENSORRT_ONNX_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast
Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace
DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual
GRU HardSigmoid Identity If ImageScaler InstanceNormalization IsNaN LeakyRelu Less LessOrEqual Log
LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean Min Mul Neg Not Or Pad
ParametricSoftplus Pow PRelu QuantizeLinear RandomUniform RandomUniformLike Range ReduceL1 ReduceL2
ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare
Relu Reshape Resize ReverseSequence RNN Round ScaledTanh Scan Scatter ScatterElements ScatterND
Selu Shape Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt
Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Unsqueeze Upsample Where Xor
LayerNormalization
""".split())
OUR_OPS = {"PagedAttention", "RMSNorm", "SiluMul"}

SEQ_LENS = (5, 23, 9, 40)
SPLITS = (4, 10, 9, 1)      # step 2: decode, chunk, nothing new (skipped), long chunk


def _ctx(loaded):
    return PassContext(info=loaded.info, inv_freq=loaded.inv_freq, block_size=4)


def _seqs(vocab):
    gen = torch.Generator().manual_seed(1)
    return [torch.randint(0, vocab, (n,), generator=gen).tolist() for n in SEQ_LENS]


@pytest.mark.parametrize("family", FAMILIES)
def test_each_pass_preserves_logits(exported, family):
    loaded, path = exported(family)
    model = onnx.load(str(path))
    seqs = _seqs(loaded.info.vocab_size)
    for k in range(1, len(PASSES) + 1):
        out, _ = run_passes(model, PASSES[:k], _ctx(loaded), log=lambda m: None)
        ex = OnnxExecutor(out)
        err = compare_paged(lambda f: ex.run(f)["logits"], loaded.model, loaded.info, seqs,
                            list(SPLITS))
        assert err <= 1e-4, f"{family} after {PASSES[k - 1]}: relative error {err:.2e}"


@pytest.mark.parametrize("family", FAMILIES)
def test_final_graph_ops_are_ours_or_tensorrt(exported, family):
    loaded, path = exported(family)
    out, _ = run_passes(onnx.load(str(path)), PASSES, _ctx(loaded), log=lambda m: None)
    ops = Counter(n.op_type for n in out.graph.node)
    foreign = set(ops) - TENSORRT_ONNX_OPS - OUR_OPS
    assert not foreign, f"{family}: ops neither ours nor TensorRT's: {foreign}"
    assert ops["PagedAttention"] == loaded.info.num_layers
    # nothing the fusions should have removed is left
    for gone in ("CausalAttention", "RotaryEmbedding", "RMSNormalization", "Sigmoid", "Cos", "Sin"):
        assert ops[gone] == 0, f"{family}: {ops[gone]} {gone} left"
    onnx.checker.check_model(out, full_check=True)


def test_llama_fusions_exact_counts(exported):
    loaded, path = exported("llama")
    out, reports = run_passes(onnx.load(str(path)), PASSES, _ctx(loaded), log=lambda m: None)
    by_name = {r.name: r for r in reports}
    layers = loaded.info.num_layers
    assert by_name["insert_paged_attention"].matched == layers
    assert by_name["fuse_rope"].matched == layers
    assert by_name["fuse_rmsnorm"].matched == 2 * layers + 1
    assert by_name["fuse_qkv"].matched == layers
    assert by_name["fuse_gate_up"].matched == layers
    ops = Counter(n.op_type for n in out.graph.node)
    # per layer: qkv, o, gate_up, down; plus none for the tied lm_head (a Gemm)
    assert ops["MatMul"] == 4 * layers and ops["Gemm"] == 1 and ops["SiluMul"] == layers


def test_pass_that_does_not_fit_leaves_graph_untouched(exported):
    loaded, path = exported("gpt2")
    model = onnx.load(str(path))
    out, reports = run_passes(model, ("fuse_rope", "fuse_rmsnorm", "fuse_gate_up"), _ctx(loaded),
                              log=lambda m: None)
    assert all(not r.changed and r.nodes_before == r.nodes_after for r in reports)
    assert len(out.graph.node) == len(model.graph.node)


def test_dump_after_each_pass(exported, tmp_path):
    loaded, path = exported("llama")
    run_passes(onnx.load(str(path)), PASSES, _ctx(loaded), dump_dir=tmp_path, log=lambda m: None)
    names = sorted(p.name for p in tmp_path.glob("*.onnx"))
    assert names == ["00_exported.onnx"] + [f"{i:02d}_{n}.onnx" for i, n in enumerate(PASSES, 1)]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cast_to_dtype_makes_weights_and_casts_explicit(exported, dtype):
    loaded, path = exported("llama")
    ctx = PassContext(info=loaded.info, inv_freq=loaded.inv_freq, block_size=4, dtype=dtype,
                      kv_dtype=dtype)
    out, _ = run_passes(onnx.load(str(path)), PASSES, ctx, log=lambda m: None)
    code = {"float16": onnx.TensorProto.FLOAT16, "bfloat16": onnx.TensorProto.BFLOAT16}[dtype]
    floats = [i for i in out.graph.initializer if i.data_type in (1, 10, 16)]
    assert {i.name for i in floats if i.data_type == 1} == {"rope_inv_freq"}
    assert all(i.data_type == code for i in floats if i.name != "rope_inv_freq")
    kv = next(i for i in out.graph.input if i.name == "kv_cache")
    assert kv.type.tensor_type.elem_type == code
    logits = out.graph.output[0]
    assert logits.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    # and it still computes the model (loosely: half precision)
    ex = OnnxExecutor(out)
    err = compare_paged(lambda f: ex.run(f)["logits"], loaded.model, loaded.info,
                        _seqs(loaded.info.vocab_size), list(SPLITS), dtype=getattr(torch, dtype))
    assert err < 0.05, f"{dtype}: relative error {err:.3f}"
