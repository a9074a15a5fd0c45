"""OnnxExecutor: runs a trtcompile ONNX graph node by node with torch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import torch

from trtcompile.errors import UnsupportedOpError
from trtcompile.executor import lowering, onnx_ops, trtc_ops
from trtcompile.executor.node import Node, array_to_torch, from_proto, tensor_to_torch
from trtcompile.executor.weights import read_external
from trtcompile.ops.spec import DOMAIN

SMALL_INT = 64     # int64 initializers up to this many elements stay on the CPU (shapes)


@dataclass(frozen=True)
class _Step:
    fn: Callable
    inputs: tuple[str, ...]        # "" = omitted optional input
    outputs: tuple[str, ...]
    attrs: dict
    free_after: tuple[str, ...]    # values whose last use is this step
    name: str


_TABLES = {DOMAIN: trtc_ops.HANDLERS, lowering.LOWERED_DOMAIN: lowering.HANDLERS,
           "": onnx_ops.HANDLERS}


class OnnxExecutor:
    """Executes an ONNX model with torch on `device`. `run(feeds) -> {output name: tensor}`.
    `lower`: fuse the quantized GEMM patterns into library GEMMs (executor/lowering.py);
    default: on for CUDA devices, off on the CPU (where the graph runs as written).
    `fp8_fast_accumulation`: the lowered fp8 GEMMs use the fast accumulation mode.
    `weights`: arrays of the model's external initializers, by name, taken instead of reading
    files (graph_io.to_model_sharing_weights); on the CPU they are used without a copy."""

    def __init__(self, model: onnx.ModelProto | str | Path, device: str | torch.device = "cpu",
                 lower: bool | None = None, fp8_fast_accumulation: bool = False,
                 weights: Mapping[str, np.ndarray] | None = None):
        base_dir = None
        if not isinstance(model, onnx.ModelProto):
            base_dir = str(Path(model).parent)
            model = onnx.load(str(model), load_external_data=False)
        self.device = torch.device(device)
        graph = model.graph
        self.input_names = [i.name for i in graph.input]
        self.output_names = [o.name for o in graph.output]
        self.constants: dict[str, torch.Tensor] = {}
        # on a CUDA device, the data file's weights through pinned buffers (executor/weights.py)
        streamed = {}
        if base_dir is not None and self.device.type == "cuda":
            streamed = read_external(
                (i for i in graph.initializer if i.data_location == onnx.TensorProto.EXTERNAL
                 and (weights is None or i.name not in weights)), base_dir, self.device)
        for init in graph.initializer:
            if init.name in streamed:
                t = streamed.pop(init.name)
            elif weights is not None and init.name in weights:
                t = array_to_torch(weights[init.name], init.data_type)
            else:
                t = tensor_to_torch(init, base_dir)
            small_int = t.dtype == torch.int64 and t.numel() <= SMALL_INT
            self.constants[init.name] = t.cpu() if small_int else t.to(self.device)
        nodes = [from_proto(n, i) for i, n in enumerate(graph.node)]
        self.lowering: lowering.LoweringReport | None = None
        if lower is None:
            lower = self.device.type == "cuda"
        if lower:
            nodes, self.lowering = lowering.lower_quantized_gemms(
                nodes, self.constants, set(self.output_names), fp8_fast_accumulation)
        self.steps = self._plan(nodes)

    def _plan(self, nodes: list[Node]) -> list[_Step]:
        last_use: dict[str, int] = {}
        for i, node in enumerate(nodes):
            for name in node.inputs:
                if name:
                    last_use[name] = i
        keep = set(self.output_names) | set(self.constants)
        steps = []
        for i, node in enumerate(nodes):
            table = _TABLES.get(node.domain)
            if table is None or node.op_type not in table:
                raise UnsupportedOpError(
                    f"node '{node.name}': op '{node.domain or 'ai.onnx'}::{node.op_type}' is not "
                    f"supported by the torch executor; supported: {', '.join(sorted(onnx_ops.HANDLERS))}"
                    f" and trtcompile::{', '.join(sorted(trtc_ops.HANDLERS))}")
            free = tuple(n for n in set(node.inputs) if n and last_use.get(n) == i and n not in keep)
            steps.append(_Step(table[node.op_type], node.inputs, node.outputs, node.attrs, free,
                               node.name))
        return steps

    def run(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise UnsupportedOpError(f"missing graph inputs: {', '.join(missing)}")
        env: dict[str, torch.Tensor] = dict(self.constants)
        env.update(feeds)
        for step in self.steps:
            args = [env[n] if n else None for n in step.inputs]
            out = step.fn(*args, **step.attrs)
            if isinstance(out, tuple):
                for name, value in zip(step.outputs, out):
                    if name:
                        env[name] = value
            else:
                env[step.outputs[0]] = out
            for name in step.free_after:
                env.pop(name, None)
        return {n: env[n] for n in self.output_names}
