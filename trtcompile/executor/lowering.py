"""Lowering for the torch backend: the explicit W8A8 pattern of the graph (Q/DQ around a
MatMul, which TensorRT fuses into one FP8/INT8 GEMM) becomes one fused step here too:
torch._scaled_mm for fp8 (on Hopper, sm_90a, decode batches of <= 64 tokens with fast
accumulation run the kernel library's split-K fp8 GEMM instead), torch._int_mm for int8, each
weight laid out once at load.

Matched from each MatMul(a, b) with b = DequantizeLinear(W_q, W_scale, axis=1) of constants:
  dynamic: a = Mul(Cast(q), s)  with (q, s) = QuantizeFp8 | QuantizeInt8 (x)
  static:  a = DequantizeLinear(QuantizeLinear(x, s, zp), s, zp) with one scale s
and every value between x and the MatMul feeding only the next node of the pattern.
The fused step computes the pattern's arithmetic (products of the quantized values, float32
accumulation, the same scales); it skips the graph's rounding of the dequantized activation
to the model dtype, so results differ from the node-by-node run by that rounding only.

Where x of a dynamic pattern is the only use of an RMSNorm or SiluMul output, that node and
the quantization become one kernel that writes the codes and scales instead of x
(RMSNormQuantize / SiluMulQuantize; the same bits as the two kernels).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch

from trtcompile.errors import BackendUnavailableError
from trtcompile.executor import onnx_ops
from trtcompile.executor.node import Node
from trtcompile.ops import cuda_kernels
from trtcompile.ops.spec import DOMAIN

LOWERED_DOMAIN = "trtcompile.lowered"
_QUANTIZE_OPS = {"QuantizeFp8": "fp8", "QuantizeInt8": "int8"}
_TARGET_OF_WEIGHT = {torch.float8_e4m3fn: "fp8", torch.int8: "int8"}
# Shape alignment the library GEMMs need (K, N multiples of this); others stay unfused.
_ALIGN = {"fp8": 16, "int8": 8}
_INT_MM_MIN_ROWS = 17          # torch._int_mm wants more than 16 rows
_ONNX_CODE = {"fp8": 17, "int8": 3}   # QuantizeLinear output_dtype of each target


_QUANTIZING_PRODUCERS = {"RMSNorm": "RMSNormQuantize", "SiluMul": "SiluMulQuantize"}


@dataclass
class LoweringReport:
    fused: Counter = field(default_factory=Counter)        # target -> GEMMs fused
    kept: list[str] = field(default_factory=list)          # "node: why" for patterns left alone
    quantizing: Counter = field(default_factory=Counter)   # producer op -> quantization fused in

    def summary(self) -> str:
        done = ", ".join(f"{n} {t}" for t, n in sorted(self.fused.items())) or "none"
        into = ", ".join(f"{n} {op}" for op, n in sorted(self.quantizing.items()))
        return (f"fused quantized GEMMs: {done}" + (f"; quantization fused into {into}" if into else "")
                + (f"; {len(self.kept)} kept" if self.kept else ""))


class _Graph:
    """Producer and use counts of the values of a node list."""

    def __init__(self, nodes: list[Node], outputs: set[str]):
        self.producer = {o: n for n in nodes for o in n.outputs if o}
        self.uses = Counter(i for n in nodes for i in n.inputs if i)
        self.uses.update(outputs)

    def single_use_producer(self, value: str, op_type: str) -> Node | None:
        node = self.producer.get(value)
        if node is None or node.op_type != op_type or self.uses[value] != 1:
            return None
        return node


def _weight(g: _Graph, mm: Node, constants) -> tuple[Node, str] | None:
    dq = g.single_use_producer(mm.inputs[1], "DequantizeLinear")
    if dq is None or len([i for i in dq.inputs if i]) != 2 or dq.attrs.get("axis", 1) not in (1, -1):
        return None
    wq, ws = constants.get(dq.inputs[0]), constants.get(dq.inputs[1])
    if wq is None or ws is None or wq.dim() != 2 or wq.dtype not in _TARGET_OF_WEIGHT:
        return None
    if ws.dim() != 1 or ws.numel() != wq.shape[1]:
        return None
    return dq, _TARGET_OF_WEIGHT[wq.dtype]


def _dynamic_activation(g: _Graph, a: Node) -> tuple[list[Node], str, str] | None:
    """a = Mul(Cast(q), s), (q, s) = Quantize*(x) -> (nodes, x, target)."""
    for cast_in, scale_in in ((a.inputs[0], a.inputs[1]), (a.inputs[1], a.inputs[0])):
        cast = g.single_use_producer(cast_in, "Cast")
        quant = g.producer.get(scale_in)
        if cast is None or quant is None or quant.domain != DOMAIN:
            continue
        if quant.op_type in _QUANTIZE_OPS and quant.outputs == (cast.inputs[0], scale_in) \
                and g.uses[cast.inputs[0]] == 1 and g.uses[scale_in] == 1:
            return [quant, cast, a], quant.inputs[0], _QUANTIZE_OPS[quant.op_type]
    return None


def _static_activation(g: _Graph, a: Node, constants) -> tuple[list[Node], str, str, str] | None:
    """a = DQ(Q(x, s, zp), s, zp) with one scale s and a zero zero point -> (nodes, x, target, s)."""
    q = g.single_use_producer(a.inputs[0], "QuantizeLinear")
    if q is None or tuple(q.inputs[1:]) != tuple(a.inputs[1:]) or len(q.inputs) < 3:
        return None
    scale, zp = constants.get(q.inputs[1]), constants.get(q.inputs[2])
    if scale is None or zp is None or scale.numel() != 1 or bool(zp.float().abs().max() > 0):
        return None
    target = _TARGET_OF_WEIGHT.get(zp.dtype)
    return (None if target is None else ([q, a], q.inputs[0], target, q.inputs[1]))


def _quantizing_producer(g: _Graph, x: str, target: str) -> Node | None:
    """The RMSNorm / SiluMul node whose first output x feeds only the quantization, as one
    node that writes the codes (x.codes) and float32 scales (x.scale) instead; else None."""
    src = g.producer.get(x)
    if src is None or src.domain != DOMAIN or src.op_type not in _QUANTIZING_PRODUCERS \
            or src.outputs[0] != x or g.uses[x] != 1:
        return None
    return Node(_QUANTIZING_PRODUCERS[src.op_type], LOWERED_DOMAIN, src.inputs,
                (f"{x}.codes", f"{x}.scale", *src.outputs[1:]), {**src.attrs, "target": target},
                f"{src.name}.quantize")


def lower_quantized_gemms(nodes: list[Node], constants: dict[str, torch.Tensor],
                          graph_outputs: set[str], fp8_fast_accumulation: bool = False
                          ) -> tuple[list[Node], LoweringReport]:
    """-> (nodes with each matched pattern replaced by one QuantizedGemm step, report).
    Updates `constants`: each fused weight is stored once, laid out for the library GEMM."""
    g = _Graph(nodes, graph_outputs)
    report = LoweringReport()
    dropped: set[int] = set()
    fused_at: dict[int, Node] = {}      # id(original node) -> its replacement
    for mm in nodes:
        if mm.op_type != "MatMul" or mm.domain:
            continue
        weight = _weight(g, mm, constants)
        a = g.producer.get(mm.inputs[0])
        if weight is None or a is None or g.uses[mm.inputs[0]] != 1:
            continue
        dq, target = weight
        act = None
        if a.op_type == "Mul":
            dynamic = _dynamic_activation(g, a)
            act = None if dynamic is None else (*dynamic, "")
        elif a.op_type == "DequantizeLinear":
            act = _static_activation(g, a, constants)
        if act is None:
            continue
        pattern, x, act_target, act_scale = act
        wq = constants[dq.inputs[0]]
        k, n = wq.shape
        if act_target != target:
            report.kept.append(f"{mm.name}: {act_target} activations with {target} weights")
            continue
        if k % _ALIGN[target] or n % _ALIGN[target]:
            report.kept.append(f"{mm.name}: K={k}, N={n} not multiples of {_ALIGN[target]}")
            continue
        w_name, s_name = f"{dq.inputs[0]}.lowered", f"{dq.inputs[1]}.lowered"
        out_dtype = constants[dq.inputs[1]].dtype                   # the MatMul's dtype
        constants[w_name] = wq.t().contiguous().t()                 # column-major [K, N]
        constants[s_name] = constants[dq.inputs[1]].float().reshape(1, n).contiguous()
        for name in dq.inputs:
            if g.uses[name] == 1:
                constants.pop(name, None)
        dropped.update(id(p) for p in pattern + [dq])
        attrs = {"target": target, "fast_accum": fp8_fast_accumulation and target == "fp8"}
        producer = None if act_scale else _quantizing_producer(g, x, target)
        if producer is not None:
            fused_at[id(g.producer[x])] = producer
            report.quantizing[g.producer[x].op_type] += 1
            fused_at[id(mm)] = Node("QuantizedGemmCodes", LOWERED_DOMAIN,
                                    (producer.outputs[0], producer.outputs[1], w_name, s_name),
                                    mm.outputs, {**attrs, "out_dtype": out_dtype},
                                    f"{mm.name}.lowered")
        else:
            fused_at[id(mm)] = Node("QuantizedGemm", LOWERED_DOMAIN, (x, w_name, s_name, act_scale),
                                    mm.outputs, attrs, f"{mm.name}.lowered")
        report.fused[target] += 1
    out = [fused_at.get(id(n), n) for n in nodes if id(n) not in dropped]
    return out, report


def _decode_fp8_gemm(q, sx, w, w_scale) -> torch.Tensor | None:
    """The kernel library's fp8 GEMM for decode batches (split K, sm_90a), or None where it
    does not run (other GPUs, a library without it, more rows): torch._scaled_mm then."""
    try:
        lib = cuda_kernels.load()
    except BackendUnavailableError:
        return None
    return lib.fp8_gemm(q, sx, w, w_scale)


def _library_gemm(q: torch.Tensor, sx: torch.Tensor, w: torch.Tensor, w_scale: torch.Tensor,
                  target: str, fast_accum: bool, out_dtype: torch.dtype) -> torch.Tensor:
    """(q * sx) @ (W_q * w_scale) for codes q [M, K] and float32 scales sx [M, 1]."""
    rows = q.shape[0]
    if not q.is_cuda:                                   # the same arithmetic, for CPU checks
        y = (q.float() * sx) @ (w.float() * w_scale)
    elif target == "fp8":
        y = _decode_fp8_gemm(q, sx, w, w_scale) if fast_accum else None
        if y is None:
            y = torch._scaled_mm(q, w, scale_a=sx.contiguous(), scale_b=w_scale,
                                 out_dtype=torch.bfloat16, use_fast_accum=fast_accum)
    else:
        if rows < _INT_MM_MIN_ROWS:
            q = torch.nn.functional.pad(q, (0, 0, 0, _INT_MM_MIN_ROWS - rows))
        acc = torch._int_mm(q, w)[:rows]
        y = (acc * sx).mul_(w_scale)
    return y.to(out_dtype)


def quantized_gemm(x: torch.Tensor, w: torch.Tensor, w_scale: torch.Tensor,
                   act_scale: torch.Tensor | None = None, *, target: str,
                   fast_accum: bool = False) -> torch.Tensor:
    """y = (q(x) * sx) @ (W_q * w_scale): x [.., K], W_q [K, N] column-major, w_scale float32
    [1, N]; activations quantized per token (act_scale None) or with one static scale."""
    lead, k = x.shape[:-1], x.shape[-1]
    x2 = x.reshape(-1, k)
    if act_scale is None:
        q, sx = torch.ops.trtcompile.quantize_per_token(x2, target, True)   # float32 scales
    else:
        q = onnx_ops.quantize_linear(x2, act_scale, output_dtype=_ONNX_CODE[target])
        sx = act_scale.float().reshape(1, 1).expand(x2.shape[0], 1)
    y = _library_gemm(q, sx, w, w_scale, target, fast_accum, x.dtype)
    return y.reshape(*lead, w.shape[1])


def quantized_gemm_codes(q: torch.Tensor, sx: torch.Tensor, w: torch.Tensor,
                         w_scale: torch.Tensor, *, target: str, fast_accum: bool = False,
                         out_dtype: torch.dtype) -> torch.Tensor:
    """QuantizedGemm on activations a quantizing producer already turned into codes q [.., K]
    and float32 per-token scales sx [.., 1]."""
    lead, k = q.shape[:-1], q.shape[-1]
    y = _library_gemm(q.reshape(-1, k), sx.reshape(-1, 1), w, w_scale, target, fast_accum, out_dtype)
    return y.reshape(*lead, w.shape[1])


def rms_norm_quantize(x, weight, residual=None, *, epsilon=1e-6, target, plugin_version=None,
                      plugin_namespace=None):
    q, scale, res = torch.ops.trtcompile.rms_norm_quantize(x, weight, residual, float(epsilon), target)
    return (q, scale, res) if residual is not None else (q, scale)


def silu_mul_quantize(x, *, target, plugin_version=None, plugin_namespace=None):
    return torch.ops.trtcompile.silu_mul_quantize(x, target)


HANDLERS = {"QuantizedGemm": quantized_gemm, "QuantizedGemmCodes": quantized_gemm_codes,
            "RMSNormQuantize": rms_norm_quantize, "SiluMulQuantize": silu_mul_quantize}
