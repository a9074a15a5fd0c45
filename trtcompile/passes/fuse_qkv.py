"""One GEMM for q, k and v: PagedAttention reads a packed [q | k | v] projection."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from trtcompile.passes.context import PassContext, PassReport
from trtcompile.passes.graph_util import (add_node, concat_weights, const, is_op,
                                          matmul_with_const, new_var, producer)


def _split_source(q: gs.Tensor, k: gs.Tensor, v: gs.Tensor) -> gs.Tensor | None:
    """Z when q, k, v are the three outputs, in order, of Split(Z) on the last axis."""
    node = producer(q)
    if not is_op(node, "Split") or list(node.outputs) != [q, k, v]:
        return None
    axis = node.attrs.get("axis", 0)
    rank = len(node.inputs[0].shape) if node.inputs[0].shape else None
    return node.inputs[0] if rank and axis in (-1, rank - 1) else None


def _merged_projection(graph: gs.Graph, q, k, v) -> gs.Tensor | None:
    parts = [matmul_with_const(t) for t in (q, k, v)]
    if any(p is None for p in parts) or len({id(p[0]) for p in parts}) != 1:
        return None
    x = parts[0][0]
    weight = concat_weights([p[1] for p in parts], axis=1)
    out = new_var(graph, "qkv_proj", dtype=q.dtype)
    add_node(graph, "MatMul", [x, const(graph, "qkv_weight", weight)], [out])
    if all(p[2] is None for p in parts):
        return out
    bias = np.concatenate([p[2] if p[2] is not None else np.zeros(p[1].shape[1], p[1].dtype)
                           for p in parts])
    biased = new_var(graph, "qkv", dtype=q.dtype)
    add_node(graph, "Add", [out, const(graph, "qkv_bias", bias)], [biased])
    return biased


def fuse_qkv(graph: gs.Graph, ctx: PassContext) -> PassReport:
    report = PassReport("fuse_qkv")
    for node in [n for n in graph.nodes if n.op == "PagedAttention"]:
        if node.attrs["fused_qkv"]:
            continue
        q, k, v = node.inputs[:3]
        packed = _split_source(q, k, v) or _merged_projection(graph, q, k, v)
        if packed is None:
            report.notes.append(f"{node.name}: q/k/v are not constant-weight projections of one "
                                "input; left as is")
            continue
        node.inputs[0] = packed
        node.inputs[1] = gs.Variable.empty()
        node.inputs[2] = gs.Variable.empty()
        node.attrs["fused_qkv"] = 1
        report.matched += 1
    if report.matched:
        graph.cleanup().toposort()
        report.changed = True
    return report
