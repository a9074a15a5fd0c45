"""The pass pipeline: one ordered list, an optional dump after each pass."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path

import onnx
import onnx_graphsurgeon as gs

from trtcompile.ops.spec import DOMAIN, OPSET_VERSION
from trtcompile.passes.context import PassContext, PassReport


def load_pass(name: str) -> Callable[[gs.Graph, PassContext], PassReport]:
    return getattr(importlib.import_module(f"trtcompile.passes.{name}"), name)


def to_model(graph: gs.Graph) -> onnx.ModelProto:
    model = gs.export_onnx(graph)
    if not any(o.domain == DOMAIN for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(DOMAIN, OPSET_VERSION))
    return model


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """Save with weights as external data (`<name>.data`) when the model is large."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # (ModelProto.ByteSize() itself fails past protobuf's 2 GiB limit, so count raw bytes)
    weight_bytes = sum(len(i.raw_data) or i.ByteSize() for i in model.graph.initializer)
    large = weight_bytes > (64 << 20)
    onnx.save_model(model, str(path), save_as_external_data=large, all_tensors_to_one_file=True,
                    location=path.name + ".data", size_threshold=1024)


def run_passes(model: onnx.ModelProto, names: Sequence[str], ctx: PassContext,
               dump_dir: Path | None = None, log: Callable[[str], None] = print
               ) -> tuple[onnx.ModelProto, list[PassReport]]:
    graph = gs.import_onnx(model)
    reports = []
    if dump_dir is not None:
        save_model(to_model(graph), Path(dump_dir) / "00_exported.onnx")
    for i, name in enumerate(names, start=1):
        before = len(graph.nodes)
        report = load_pass(name)(graph, ctx)
        report.nodes_before, report.nodes_after = before, len(graph.nodes)
        reports.append(report)
        log(report.summary())
        if dump_dir is not None:
            save_model(to_model(graph), Path(dump_dir) / f"{i:02d}_{name}.onnx")
    return to_model(graph), reports
