"""SwiGLU: silu(x @ Wg) * (x @ Wu) -> SiluMul(x @ [Wg | Wu]), one GEMM instead of two."""

from __future__ import annotations

import onnx_graphsurgeon as gs

from trtcompile.passes.context import PassContext, PassReport
from trtcompile.passes.graph_util import (add_node, concat_weights, const, is_op,
                                          matmul_with_const, new_var, plugin_node, producer)


def _silu_input(t: gs.Tensor) -> gs.Tensor | None:
    """g when t = g * Sigmoid(g) (either operand order)."""
    node = producer(t)
    if not is_op(node, "Mul"):
        return None
    a, b = node.inputs
    for g, s in ((a, b), (b, a)):
        sig = producer(s)
        if is_op(sig, "Sigmoid") and sig.inputs[0] is g:
            return g
    return None


def fuse_gate_up(graph: gs.Graph, ctx: PassContext) -> PassReport:
    report = PassReport("fuse_gate_up")
    for mul in [n for n in graph.nodes if n.op == "Mul"]:
        if len(mul.inputs) != 2 or not mul.outputs:
            continue
        a, b = mul.inputs
        match = None
        for gated, up in ((a, b), (b, a)):
            g = _silu_input(gated)
            if g is None:
                continue
            gate_p, up_p = matmul_with_const(g), matmul_with_const(up)
            if gate_p and up_p and gate_p[0] is up_p[0] and gate_p[2] is None and up_p[2] is None:
                match = gate_p, up_p
                break
        if match is None:
            continue
        (x, wg, _), (_, wu, _) = match
        out = mul.outputs[0]
        mul.inputs.clear()
        mul.outputs.clear()
        fused = new_var(graph, "gate_up", dtype=out.dtype)
        add_node(graph, "MatMul", [x, const(graph, "gate_up_weight", concat_weights([wg, wu], 1))],
                 [fused])
        plugin_node(graph, "SiluMul", [fused], [out])
        report.matched += 1
    if report.matched:
        graph.cleanup().toposort()
        report.changed = True
    return report
