"""SmoothQuant folding: X' = X / s moved into the op that produces X, W' = s * W.

    RMSNorm(h, g) ──y──> MatMul(y, W)        g' = g / s          (y' = y / s)
    MatMul(z, Wgu) ──> SiluMul ──u──> MatMul(u, Wd)
                                             Wgu[:, I:] /= s     (u' = u / s, up half only)
Returns None (graph untouched) when the producer is neither, or is shared."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from trtcompile.passes.graph_util import const, is_op, producer


def _only_consumer(var: gs.Tensor, node: gs.Node) -> bool:
    return len(var.outputs) == 1 and var.outputs[0] is node


def fold_inverse_scale(graph: gs.Graph, x: gs.Tensor, consumer: gs.Node,
                       s: np.ndarray) -> str | None:
    """Divide the producer of x by s per channel so that x becomes x / s; what was folded."""
    src = producer(x)
    if not _only_consumer(x, consumer):
        return None
    if is_op(src, "RMSNorm") and src.outputs[0] is x and isinstance(src.inputs[1], gs.Constant):
        g = src.inputs[1].values
        src.inputs[1] = const(graph, f"{src.inputs[1].name}_smoothed",
                              (g.astype(np.float32) / s).astype(g.dtype))
        return "rmsnorm"
    if is_op(src, "SiluMul"):
        gu = producer(src.inputs[0])
        if (is_op(gu, "MatMul") and isinstance(gu.inputs[1], gs.Constant)
                and _only_consumer(src.inputs[0], src)):
            w = gu.inputs[1].values.astype(np.float32).copy()       # [K, 2I]
            inter = w.shape[1] // 2
            w[:, inter:] /= s[None, :]
            gu.inputs[1] = const(graph, f"{gu.inputs[1].name}_smoothed", w.astype(gu.inputs[1].values.dtype))
            return "silu_mul"
    return None
