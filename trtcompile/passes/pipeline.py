"""The pass pipeline: one ordered list, an optional dump after each pass."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import onnx
import onnx_graphsurgeon as gs

from trtcompile.passes.context import PassContext, PassReport
from trtcompile.passes.graph_io import save_graph, to_model


def load_pass(name: str) -> Callable[[gs.Graph, PassContext], PassReport]:
    return getattr(importlib.import_module(f"trtcompile.passes.{name}"), name)


def run_passes_on_graph(graph: gs.Graph, names: Sequence[str], ctx: PassContext,
                        dump_dir: Path | None = None, log: Callable[[str], None] = print
                        ) -> list[PassReport]:
    """Run the passes `names` in order on `graph` (in place); dump the graph after each."""
    reports = []
    if dump_dir is not None:
        save_graph(graph, Path(dump_dir) / "00_exported.onnx")
    for i, name in enumerate(names, start=1):
        before, start = len(graph.nodes), time.perf_counter()
        report = load_pass(name)(graph, ctx)
        report.nodes_before, report.nodes_after = before, len(graph.nodes)
        report.seconds = time.perf_counter() - start
        reports.append(report)
        log(f"{report.summary()} [{report.seconds:.1f} s]")
        if dump_dir is not None:
            save_graph(graph, Path(dump_dir) / f"{i:02d}_{name}.onnx")
    return reports


def run_passes(model: onnx.ModelProto, names: Sequence[str], ctx: PassContext,
               dump_dir: Path | None = None, log: Callable[[str], None] = print
               ) -> tuple[onnx.ModelProto, list[PassReport]]:
    graph = gs.import_onnx(model)
    reports = run_passes_on_graph(graph, names, ctx, dump_dir, log)
    return to_model(graph), reports
