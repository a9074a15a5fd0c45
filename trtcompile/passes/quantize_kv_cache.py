"""Quantized KV cache: one float32 [L, 2] constant `kv_scales` (calibrated k, v scale per
layer) feeds the kv_scales input of every PagedAttention, which then quantizes on write and dequantizes
on read; the pool input already has the fp8/int8 dtype (insert_paged_attention)."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from trtcompile.ops.spec import DOMAIN, PAGED_ATTENTION
from trtcompile.passes.context import PassContext, PassReport
from trtcompile.passes.graph_util import const

KV_SCALES = "kv_scales"
SCALES_INPUT = [p.name for p in PAGED_ATTENTION.inputs].index(KV_SCALES)


def quantize_kv_cache(graph: gs.Graph, ctx: PassContext) -> PassReport:
    report = PassReport("quantize_kv_cache")
    if ctx.kv_scales is None:
        report.notes.append(f"pool in {ctx.kv_dtype}: no scales")
        return report
    nodes = [n for n in graph.nodes if n.op == "PagedAttention" and n.domain == DOMAIN
             and len(n.inputs) > SCALES_INPUT]
    scales = np.asarray(ctx.kv_scales, np.float32)
    if not nodes or scales.shape != (ctx.info.num_layers, 2):
        report.notes.append("pattern not found (PagedAttention nodes with a kv_scales input, "
                            f"scales [{ctx.info.num_layers}, 2]); graph untouched")
        return report
    table = const(graph, KV_SCALES, scales)
    for node in nodes:
        node.inputs[SCALES_INPUT] = table
        report.matched += 1
    report.changed = True
    report.notes.append(f"{ctx.kv_dtype} pool, k scales {scales[:, 0].min():.3g}.."
                        f"{scales[:, 0].max():.3g}, v scales {scales[:, 1].min():.3g}.."
                        f"{scales[:, 1].max():.3g}")
    graph.cleanup().toposort()
    return report
