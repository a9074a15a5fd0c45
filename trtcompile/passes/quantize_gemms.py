"""W8A8 (fp8 E4M3 or int8 SmoothQuant): MatMul(x, W_const) ->
MatMul(DQ(Q(x)), DQ(W_q)) with explicit QuantizeLinear/DequantizeLinear: weights per output
channel; activations per tensor (static, calibrated) or per token (QuantizeInt8/QuantizeFp8)."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from trtcompile.passes.context import PassContext, PassReport
from trtcompile.passes.graph_util import add_node, const, new_var, plugin_node
from trtcompile.quant import numerics
from trtcompile.quant.modes import QuantFlag
from trtcompile.quant.smoothing import fold_inverse_scale
from trtcompile.quant.targets import gemm_targets, weight_name


def _zero_point(graph: gs.Graph, fp8: bool) -> gs.Constant:
    if fp8:
        import ml_dtypes
        return const(graph, "zp_fp8", np.zeros((), ml_dtypes.float8_e4m3fn))
    return const(graph, "zp_int8", np.zeros((), np.int8))


def _smooth(graph, node, absmax, alpha) -> np.ndarray:
    """Fold smoothing factors where the producer allows; returns X's absmax after it."""
    w = node.inputs[1].values
    s = numerics.smoothing_factors(absmax, w, alpha)
    how = fold_inverse_scale(graph, node.inputs[0], node, s)
    if how is None:
        return absmax
    node.inputs[1] = const(graph, f"{weight_name(node)}_smoothed",
                           (w.astype(np.float32) * s[:, None]).astype(w.dtype))
    return absmax / s


def _activation(graph, x, fp8: bool, static_absmax: float | None) -> gs.Variable:
    """x -> dequantized x (float), through Q/DQ (static) or a per-token quantize op."""
    qmax = numerics.FP8_E4M3_MAX if fp8 else numerics.INT8_MAX
    xd = new_var(graph, "act_dq", dtype=x.dtype)
    if static_absmax is not None:
        scale = const(graph, "act_scale", numerics.activation_scale(static_absmax, qmax))
        zp = _zero_point(graph, fp8)
        xq = new_var(graph, "act_q")
        add_node(graph, "QuantizeLinear", [x, scale, zp], [xq])
        add_node(graph, "DequantizeLinear", [xq, scale, zp], [xd])
        return xd
    xq, scale, xf = new_var(graph, "act_q"), new_var(graph, "act_qscale"), new_var(graph, "act_qf")
    plugin_node(graph, "QuantizeFp8" if fp8 else "QuantizeInt8", [x], [xq, scale])
    add_node(graph, "Cast", [xq], [xf], {"to": onnx.TensorProto.FLOAT})
    add_node(graph, "Mul", [xf, scale], [xd])
    return xd


def _weight(graph, node, fp8: bool) -> gs.Variable:
    w = node.inputs[1].values
    q, scales = numerics.fp8_per_channel(w) if fp8 else numerics.int8_per_output_column(w)
    stem = weight_name(node)
    wd = new_var(graph, "weight_dq")
    add_node(graph, "DequantizeLinear", [const(graph, f"{stem}_q", q),
                                         const(graph, f"{stem}_scales", scales)], [wd], {"axis": 1})
    return wd


def quantize_gemms(graph: gs.Graph, ctx: PassContext) -> PassReport:
    report = PassReport("quantize_gemms")
    plan = ctx.quant
    if plan is None or not plan.flags & (QuantFlag.ACT_INT8 | QuantFlag.ACT_FP8):
        report.notes.append("no W8A8 mode")
        return report
    fp8 = bool(plan.flags & QuantFlag.ACT_FP8)
    static = plan.activation == "static"
    targets = gemm_targets(graph, ctx.info.vocab_size)
    absmax = {}
    for node in targets:
        name = weight_name(node)
        if plan.needs_calibration and name not in (plan.act_absmax or {}):
            report.notes.append(f"{name}: no calibration statistics; left in full precision")
            continue
        absmax[id(node)] = plan.act_absmax[name] if plan.act_absmax else None
    if plan.flags & QuantFlag.SMOOTHQUANT:        # last first: down folds into gate_up's columns
        before = {k: v for k, v in absmax.items()}
        for node in reversed(targets):
            if id(node) in absmax:
                absmax[id(node)] = _smooth(graph, node, absmax[id(node)], plan.smoothquant_alpha)
        kept = sum(absmax[k] is before[k] for k in absmax)
        report.notes.append(f"smoothed {len(absmax) - kept} GEMM inputs (alpha "
                            f"{plan.smoothquant_alpha}); {kept} whose producer cannot absorb it "
                            "(o_proj) left unsmoothed")
    for node in targets:
        if id(node) not in absmax:
            continue
        stats = absmax[id(node)]
        xd = _activation(graph, node.inputs[0], fp8, float(stats.max()) if static else None)
        node.inputs[0] = xd
        node.inputs[1] = _weight(graph, node, fp8)
        report.matched += 1
    if report.matched:
        report.changed = True
        report.notes.insert(0, f"{plan.mode}, activations {plan.activation}, lm_head kept")
        graph.cleanup().toposort()
    return report
