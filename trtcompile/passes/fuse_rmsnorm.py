"""RMSNormalization (with the residual Add before it, when there is one) -> RMSNorm plugin."""

from __future__ import annotations

import onnx_graphsurgeon as gs

from trtcompile.passes.context import PassContext, PassReport
from trtcompile.passes.graph_util import is_op, plugin_node, producer


def _residual_add(x: gs.Tensor) -> gs.Node | None:
    add = producer(x)
    if not is_op(add, "Add"):
        return None
    a, b = add.inputs
    if isinstance(a, gs.Constant) or isinstance(b, gs.Constant):
        return None
    if a.shape is None or b.shape is None or list(a.shape) != list(b.shape):
        return None                                  # broadcasting add: not a residual
    return add


def fuse_rmsnorm(graph: gs.Graph, ctx: PassContext) -> PassReport:
    report = PassReport("fuse_rmsnorm")
    fused_residual = 0
    for norm in [n for n in graph.nodes if n.op == "RMSNormalization"]:
        if norm.attrs.get("axis", -1) != -1 or len(norm.inputs) != 2:
            report.notes.append(f"{norm.name}: axis != -1; left as is")
            continue
        x, weight = norm.inputs
        y = norm.outputs[0]
        eps = float(norm.attrs.get("epsilon", 1e-5))
        norm.inputs.clear()
        norm.outputs.clear()
        add = _residual_add(x)
        if add is not None:
            a, b = add.inputs
            add.inputs.clear()
            add.outputs.clear()
            # x (the sum) is now produced as residual_out, so its other readers are unchanged
            plugin_node(graph, "RMSNorm", [a, weight, b], [y, x], epsilon=eps)
            fused_residual += 1
        else:
            plugin_node(graph, "RMSNorm", [x, weight], [y], epsilon=eps)
        report.matched += 1
    if report.matched:
        report.notes.append(f"{fused_residual} with the residual add")
        graph.cleanup().toposort()
        report.changed = True
    return report
