"""One description per trtcompile op: inputs, outputs, attributes. Passes, the executor,
the ONNX schemas and the TensorRT adapters' test all read it from here."""

from __future__ import annotations

from dataclasses import dataclass, field

DOMAIN = "trtcompile"
OPSET_VERSION = 1
PLUGIN_NAMESPACE = "trtcompile"
PLUGIN_VERSION = "1"


@dataclass(frozen=True)
class Attr:
    name: str
    kind: str          # "int" | "float" | "string"
    default: object
    doc: str


@dataclass(frozen=True)
class Port:
    name: str
    doc: str
    optional: bool = False


@dataclass(frozen=True)
class OpSpec:
    name: str
    doc: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    attrs: tuple[Attr, ...] = field(default=())
    plugin: bool = True    # False: export-only boundary op, never reaches a backend

    def attr_defaults(self) -> dict:
        return {a.name: a.default for a in self.attrs}


_PLUGIN_ATTRS = (
    Attr("plugin_version", "string", PLUGIN_VERSION, "TensorRT plugin version"),
    Attr("plugin_namespace", "string", PLUGIN_NAMESPACE, "TensorRT plugin namespace"),
)

ATTENTION = OpSpec(
    name="CausalAttention",
    doc="Export boundary: causal attention of one layer, emitted by the exporter. "
        "q [B, Hq, T, D], k/v [B, Hkv, T, D] (rotary already applied) -> y [B, T, Hq, D].",
    inputs=(Port("q", "[B, Hq, T, D]"), Port("k", "[B, Hkv, T, D]"), Port("v", "[B, Hkv, T, D]")),
    outputs=(Port("y", "[B, T, Hq, D]"),),
    attrs=(
        Attr("scale", "float", 1.0, "softmax scale"),
        Attr("sliding_window", "int", 0, "attend to the last W keys only; 0 = no window"),
        Attr("layer_idx", "int", 0, "decoder layer index"),
    ),
    plugin=False,
)

PAGED_ATTENTION = OpSpec(
    name="PagedAttention",
    doc="Rotary (optional), K/V written to the pool at slot_mapping, causal attention of each "
        "new token over its sequence's cached and new tokens through block_tables. "
        "With fused_qkv=1, input 0 holds [.., T, (Hq+2Hkv)*D] and inputs 1, 2 are empty.",
    inputs=(
        Port("q", "[.., T, Hq*D] (or packed qkv)"),
        Port("k", "[.., T, Hkv*D]", optional=True),
        Port("v", "[.., T, Hkv*D]", optional=True),
        Port("positions", "int32 [T]"),
        Port("query_start_loc", "int32 [S+1]"),
        Port("seq_lens", "int32 [S]"),
        Port("block_tables", "int32 [S, max_blocks]"),
        Port("slot_mapping", "int32 [T]"),
        Port("kv_cache", "[L, 2, N, b, Hkv, D], written in place"),
        Port("inv_freq", "float32 [rotary_dim/2]; present iff rotary_dim > 0", optional=True),
        Port("kv_scales", "float32 [L, 2]; present iff the pool is fp8/int8", optional=True),
    ),
    outputs=(
        Port("y", "[.., T, Hq*D]"),
        Port("kv_cache_out", "aliases input kv_cache (same memory)"),
    ),
    attrs=(
        Attr("layer_idx", "int", 0, "which layer of kv_cache this node reads and writes"),
        Attr("num_heads", "int", 0, "query heads Hq"),
        Attr("num_kv_heads", "int", 0, "key/value heads Hkv"),
        Attr("head_dim", "int", 0, "D"),
        Attr("scale", "float", 1.0, "softmax scale"),
        Attr("sliding_window", "int", 0, "0 = no window"),
        Attr("rotary_dim", "int", 0, "0 = no rotary in the op; else rotate the first rotary_dim "
                                     "dims of q and k (rotate-half style)"),
        Attr("rotary_scaling", "float", 1.0, "multiplier applied to cos and sin"),
        Attr("fused_qkv", "int", 0, "1 = input 0 is packed [q | k | v]"),
    ) + _PLUGIN_ATTRS,
)

RMS_NORM = OpSpec(
    name="RMSNorm",
    doc="y = (x + residual) * rsqrt(mean((x + residual)^2) + eps) * weight over the last axis, "
        "computed in float32; residual_out = x + residual. Without residual: plain RMSNorm.",
    inputs=(Port("x", "[.., H]"), Port("weight", "[H]"), Port("residual", "[.., H]", optional=True)),
    outputs=(Port("y", "[.., H]"), Port("residual_out", "[.., H]", optional=True)),
    attrs=(Attr("epsilon", "float", 1e-6, "added to the mean square"),) + _PLUGIN_ATTRS,
)

SILU_MUL = OpSpec(
    name="SiluMul",
    doc="SwiGLU on the fused gate/up projection: y = silu(x[.., :I]) * x[.., I:].",
    inputs=(Port("x", "[.., 2I]"),),
    outputs=(Port("y", "[.., I]"),),
    attrs=_PLUGIN_ATTRS,
)

# Quantized ops. WeightOnlyGemm has CUDA kernels and a TensorRT adapter; the per-token
# quantizers have CUDA kernels only (plugin=False keeps them out of the TensorRT plugin table
# until their adapters exist).
WEIGHT_ONLY_GEMM = OpSpec(
    name="WeightOnlyGemm",
    doc="y = x @ dequant(qweight, scales[, zeros]): x [.., K] -> [.., N]. bits 8: qweight int8 "
        "[N, K], scales [N]; bits 4: qweight uint8 [N, K/2] (low nibble = even k), scales "
        "[N, K/group_size]; nibbles signed (w = q * s) or, with zeros, unsigned 0..15 "
        "(w = (q - zeros) * s).",
    inputs=(Port("x", "[.., K]"), Port("qweight", "int8 [N, K] or uint8 [N, K/2]"),
            Port("scales", "float32 [N] or [N, K/group_size]"),
            Port("zeros", "float32 [N, K/group_size]; present iff int4 asymmetric",
                 optional=True)),
    outputs=(Port("y", "[.., N]"),),
    attrs=(Attr("bits", "int", 8, "8 or 4"),
           Attr("group_size", "int", 0, "input channels per scale; 0 = per output channel"),
           *_PLUGIN_ATTRS),
)

QUANTIZE_INT8 = OpSpec(
    name="QuantizeInt8",
    doc="Dynamic per-token quantization: x [.., K] -> q int8 [.., K], scale [.., 1] "
        "with scale = max|x| / 127 per row; x ~ q * scale.",
    inputs=(Port("x", "[.., K]"),),
    outputs=(Port("q", "int8 [.., K]"), Port("scale", "[.., 1], x's dtype")),
    plugin=False,
)

QUANTIZE_FP8 = OpSpec(
    name="QuantizeFp8",
    doc="Dynamic per-token quantization: x [.., K] -> q float8e4m3fn [.., K], scale "
        "[.., 1] with scale = max|x| / 448 per row; x ~ q * scale.",
    inputs=(Port("x", "[.., K]"),),
    outputs=(Port("q", "float8e4m3fn [.., K]"), Port("scale", "[.., 1], x's dtype")),
    plugin=False,
)

ALL_OPS: dict[str, OpSpec] = {op.name: op for op in (ATTENTION, PAGED_ATTENTION, RMS_NORM, SILU_MUL,
                                                     WEIGHT_ONLY_GEMM, QUANTIZE_INT8, QUANTIZE_FP8)}
PLUGIN_OPS: dict[str, OpSpec] = {k: v for k, v in ALL_OPS.items() if v.plugin}


def register_onnx_schemas() -> None:
    """Register an onnx OpSchema per op so onnxscript and onnx.checker know them (idempotent)."""
    from onnx import defs

    kinds = {"int": defs.OpSchema.AttrType.INT, "float": defs.OpSchema.AttrType.FLOAT,
             "string": defs.OpSchema.AttrType.STRING}
    types = ["tensor(float)", "tensor(float16)", "tensor(bfloat16)", "tensor(int32)",
             "tensor(int64)", "tensor(int8)", "tensor(uint8)", "tensor(float8e4m3fn)"]
    for op in ALL_OPS.values():
        if defs.has(op.name, OPSET_VERSION, DOMAIN):
            continue
        opt = defs.OpSchema.FormalParameterOption
        params = [defs.OpSchema.FormalParameter(p.name, f"T{i}", p.doc,
                                                param_option=opt.Optional if p.optional else opt.Single)
                  for i, p in enumerate(op.inputs)]
        outs = [defs.OpSchema.FormalParameter(p.name, f"O{i}", p.doc,
                                              param_option=opt.Optional if p.optional else opt.Single)
                for i, p in enumerate(op.outputs)]
        constraints = [(f"T{i}", types, "") for i in range(len(op.inputs))]
        constraints += [(f"O{i}", types, "") for i in range(len(op.outputs))]
        attrs = [defs.OpSchema.Attribute(a.name, kinds[a.kind], a.doc) for a in op.attrs]
        defs.register_schema(defs.OpSchema(op.name, DOMAIN, OPSET_VERSION, doc=op.doc, inputs=params,
                                           outputs=outs, type_constraints=constraints,
                                           attributes=attrs))
