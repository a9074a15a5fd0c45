"""Which GEMMs the quant passes touch: MatMul(x, W) with a constant 2-D W, the lm_head excepted."""

from __future__ import annotations

import onnx_graphsurgeon as gs


def gemm_targets(graph: gs.Graph, vocab_size: int) -> list[gs.Node]:
    """MatMul nodes with a constant [K, N] weight, in graph order, except the lm_head (the
    last of them with N == vocab), which stays in full precision. Other GEMMs whose width
    happens to equal the vocabulary (a q/k/v of 512 columns over a 512-token vocabulary) count."""
    out = [node for node in graph.nodes
           if node.op == "MatMul" and isinstance(node.inputs[1], gs.Constant)
           and node.inputs[1].values.ndim == 2]
    heads = [i for i, node in enumerate(out) if node.inputs[1].values.shape[1] == vocab_size]
    if heads:
        del out[heads[-1]]
    return out


def weight_name(node: gs.Node) -> str:
    return node.inputs[1].name
