"""Which GEMMs the quant passes touch: MatMul(x, W) with a constant 2-D W, the lm_head excepted."""

from __future__ import annotations

import onnx_graphsurgeon as gs


def gemm_targets(graph: gs.Graph, vocab_size: int) -> list[gs.Node]:
    """MatMul nodes with a constant [K, N] weight, in graph order; N == vocab (lm_head) is kept
    in full precision."""
    out = []
    for node in graph.nodes:
        if node.op != "MatMul" or not isinstance(node.inputs[1], gs.Constant):
            continue
        w = node.inputs[1].values
        if w.ndim == 2 and w.shape[1] != vocab_size:
            out.append(node)
    return out


def weight_name(node: gs.Node) -> str:
    return node.inputs[1].name
