"""Fold small constant subgraphs, store identical weights once, drop dead nodes, sort."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx_graphsurgeon as gs
import torch

from trtcompile.executor import onnx_ops
from trtcompile.passes.context import PassContext, PassReport

FOLD_MAX_ELEMENTS = 1 << 16      # larger results stay computed (folding would store them)
NEVER_FOLD = ("QuantizeLinear", "DequantizeLinear")   # quantized weights stay quantized


def _fold(graph: gs.Graph) -> int:
    folded = 0
    for node in list(graph.nodes):
        fn = onnx_ops.HANDLERS.get(node.op) if node.domain in (None, "", "ai.onnx") else None
        if fn is None or not node.inputs or len(node.outputs) != 1 or node.op in NEVER_FOLD:
            continue
        if not all(isinstance(t, gs.Constant) for t in node.inputs if t.name):
            continue
        args = [torch.from_numpy(np.array(t.values)) if t.name else None for t in node.inputs]
        try:
            out = fn(*args, **node.attrs)
        except (TypeError, ValueError, RuntimeError, NotImplementedError):
            continue
        if not isinstance(out, torch.Tensor) or out.numel() > FOLD_MAX_ELEMENTS:
            continue
        var = node.outputs[0]
        node.outputs.clear()
        constant = gs.Constant(var.name + "_folded", out.numpy())
        for consumer in list(var.outputs):
            consumer.inputs[:] = [constant if t is var else t for t in consumer.inputs]
        graph.outputs = [constant if t is var else t for t in graph.outputs]
        folded += 1
    return folded


def _collapse_reshapes(graph: gs.Graph) -> int:
    """Reshape(Reshape(x, a), b) -> Reshape(x, b) when b is a constant without 0 entries."""
    collapsed = 0
    for node in graph.nodes:
        if node.op != "Reshape" or not isinstance(node.inputs[1], gs.Constant):
            continue
        if 0 in node.inputs[1].values.tolist():
            continue
        inner = node.inputs[0].inputs[0] if len(node.inputs[0].inputs) == 1 else None
        if inner is not None and inner.op == "Reshape" and len(node.inputs[0].outputs) == 1:
            node.inputs[0] = inner.inputs[0]
            collapsed += 1
    return collapsed


DEDUPE_MAX_BYTES = 1 << 20


def _dedupe(graph: gs.Graph) -> int:
    """Merge equal small constants (shapes, axes, scalars). Weights are not hashed: hashing an
    8B model's would cost tens of seconds, and an exporter does not repeat a weight."""
    seen: dict[tuple, gs.Constant] = {}
    merged = 0
    for node in graph.nodes:
        for i, t in enumerate(node.inputs):
            if not isinstance(t, gs.Constant) or t.values.nbytes > DEDUPE_MAX_BYTES:
                continue
            v = t.values
            key = (str(v.dtype), v.shape, hashlib.sha1(np.ascontiguousarray(v).view(np.uint8)).hexdigest())
            first = seen.setdefault(key, t)
            if first is not t:
                node.inputs[i] = first
                merged += 1
    return merged


def cleanup(graph: gs.Graph, ctx: PassContext) -> PassReport:
    report = PassReport("cleanup")
    folded = _fold(graph)
    collapsed = _collapse_reshapes(graph)
    graph.cleanup().toposort()
    merged = _dedupe(graph)
    graph.cleanup().toposort()
    report.matched = folded + collapsed + merged
    report.changed = True
    report.notes.append(f"{folded} nodes folded, {collapsed} reshape chains collapsed, "
                        f"{merged} duplicate constant uses merged")
    return report
