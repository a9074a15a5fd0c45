"""Fold the q/k RotaryEmbedding nodes into PagedAttention (cos/sin from positions inside)."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from trtcompile.passes.context import PassContext, PassReport
from trtcompile.passes.graph_util import const, flat_heads, is_op, producer

INV_FREQ_INPUT = 9


def _rope_source(var: gs.Tensor) -> gs.Node | None:
    """The RotaryEmbedding node when var = Reshape(Transpose(RotaryEmbedding(x)))."""
    reshape = producer(var)
    if not is_op(reshape, "Reshape"):
        return None
    trans = producer(reshape.inputs[0])
    if not is_op(trans, "Transpose") or list(trans.attrs["perm"]) != [0, 2, 1, 3]:
        return None
    rope = producer(trans.inputs[0])
    if not is_op(rope, "RotaryEmbedding") or rope.attrs.get("interleaved", 0):
        return None
    if len(rope.inputs) > 3 and rope.inputs[3].name:        # position_ids form: not emitted by export
        return None
    return rope


def fuse_rope(graph: gs.Graph, ctx: PassContext) -> PassReport:
    report = PassReport("fuse_rope")
    if ctx.inv_freq is None or ctx.info.rotary_dim == 0:
        report.notes.append("model has no rotary embedding; graph untouched")
        return report
    inv_freq = None
    info = ctx.info
    for node in [n for n in graph.nodes if n.op == "PagedAttention"]:
        if node.attrs["rotary_dim"]:
            continue
        q_rope, k_rope = _rope_source(node.inputs[0]), _rope_source(node.inputs[1])
        if q_rope is None or k_rope is None:
            report.notes.append(f"{node.name}: q/k not produced by RotaryEmbedding; left as is")
            continue
        if inv_freq is None:
            inv_freq = const(graph, "rope_inv_freq", np.asarray(ctx.inv_freq, np.float32))
        node.inputs[0] = flat_heads(graph, q_rope.inputs[0], info.num_heads, info.head_dim)
        node.inputs[1] = flat_heads(graph, k_rope.inputs[0], info.num_kv_heads, info.head_dim)
        node.inputs[INV_FREQ_INPUT] = inv_freq
        node.attrs["rotary_dim"] = int(info.rotary_dim)
        node.attrs["rotary_scaling"] = float(info.rotary_scaling)
        report.matched += 1
    if report.matched:
        graph.cleanup().toposort()
        report.changed = True
    return report
