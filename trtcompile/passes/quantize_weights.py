"""Weight-only quantization: MatMul(x, W_const) -> WeightOnlyGemm(x, qweight, scales)
(int8 per output channel, or int4 group-wise packed two per byte)."""

from __future__ import annotations

import onnx_graphsurgeon as gs

from trtcompile.passes.context import PassContext, PassReport
from trtcompile.passes.graph_util import const, plugin_node
from trtcompile.quant import numerics
from trtcompile.quant.modes import QuantFlag
from trtcompile.quant.targets import gemm_targets


def quantize_weights(graph: gs.Graph, ctx: PassContext) -> PassReport:
    report = PassReport("quantize_weights")
    plan = ctx.quant
    if plan is None or not plan.flags & (QuantFlag.WEIGHT_INT8 | QuantFlag.WEIGHT_INT4):
        report.notes.append("no weight-only mode")
        return report
    int4 = bool(plan.flags & QuantFlag.WEIGHT_INT4)
    skipped = 0
    for node in gemm_targets(graph, ctx.info.vocab_size):
        x, w = node.inputs[0], node.inputs[1].values
        if int4 and w.shape[0] % plan.group_size:
            skipped += 1
            continue
        stem = node.inputs[1].name
        if int4:
            q, scales, zeros = numerics.int4_groupwise_asym(w, plan.group_size)
            attrs = {"bits": 4, "group_size": plan.group_size}
            extra = [const(graph, f"{stem}_zeros", zeros)]
        else:
            q, scales = numerics.int8_per_channel(w)
            attrs, extra = {"bits": 8, "group_size": 0}, []
        plugin_node(graph, "WeightOnlyGemm",
                    [x, const(graph, f"{stem}_q", q), const(graph, f"{stem}_scales", scales),
                     *extra], list(node.outputs), **attrs)
        node.outputs.clear()
        report.matched += 1
    if skipped:
        report.notes.append(f"{skipped} GEMM(s) with K not a multiple of {plan.group_size} kept")
    if report.matched:
        report.changed = True
        report.notes.append(f"{plan.mode}, lm_head kept in full precision")
        graph.cleanup().toposort()
    return report
