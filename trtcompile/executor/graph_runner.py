"""OnnxExecutor: runs a trtcompile ONNX graph node by node with torch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from trtcompile.errors import UnsupportedOpError
from trtcompile.executor import onnx_ops, trtc_ops
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


def tensor_to_torch(t: onnx.TensorProto, base_dir: str | None = None) -> torch.Tensor:
    if t.data_type == onnx.TensorProto.BFLOAT16:
        raw = numpy_helper.to_array(t, base_dir or "")
        return torch.from_numpy(np.ascontiguousarray(raw).view(np.int16).copy()).view(torch.bfloat16)
    if t.data_type == onnx.TensorProto.FLOAT8E4M3FN:
        raw = numpy_helper.to_array(t, base_dir or "")
        return torch.from_numpy(np.ascontiguousarray(raw).view(np.uint8).copy()).view(torch.float8_e4m3fn)
    arr = numpy_helper.to_array(t, base_dir or "")
    return torch.from_numpy(np.array(arr, copy=True))


def _attr_value(a: onnx.AttributeProto):
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, onnx.TensorProto):
        return tensor_to_torch(v)
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode() for x in v]
    return v


class OnnxExecutor:
    """Executes an ONNX model with torch on `device`. `run(feeds) -> {output name: tensor}`."""

    def __init__(self, model: onnx.ModelProto | str | Path, device: str | torch.device = "cpu"):
        base_dir = None
        if not isinstance(model, onnx.ModelProto):
            base_dir = str(Path(model).parent)
            model = onnx.load(str(model), load_external_data=False)
        self.device = torch.device(device)
        graph = model.graph
        self.input_names = [i.name for i in graph.input]
        self.output_names = [o.name for o in graph.output]
        self.constants: dict[str, torch.Tensor] = {}
        for init in graph.initializer:
            t = tensor_to_torch(init, base_dir)
            small_int = t.dtype == torch.int64 and t.numel() <= SMALL_INT
            self.constants[init.name] = t if small_int else t.to(self.device)
        self.steps = self._plan(graph)

    def _plan(self, graph: onnx.GraphProto) -> list[_Step]:
        last_use: dict[str, int] = {}
        for i, node in enumerate(graph.node):
            for name in node.input:
                if name:
                    last_use[name] = i
        keep = set(self.output_names) | set(self.constants)
        steps = []
        for i, node in enumerate(graph.node):
            table = trtc_ops.HANDLERS if node.domain == DOMAIN else onnx_ops.HANDLERS
            if node.domain not in ("", "ai.onnx", DOMAIN) or node.op_type not in table:
                raise UnsupportedOpError(
                    f"node '{node.name}': op '{node.domain or 'ai.onnx'}::{node.op_type}' is not "
                    f"supported by the torch executor; supported: {', '.join(sorted(onnx_ops.HANDLERS))}"
                    f" and trtcompile::{', '.join(sorted(trtc_ops.HANDLERS))}")
            attrs = {a.name: _attr_value(a) for a in node.attribute}
            if node.op_type == "Constant" and "value" in attrs:
                attrs["value"] = attrs["value"]
            free = tuple(n for n in set(node.input) if n and last_use.get(n) == i and n not in keep)
            steps.append(_Step(table[node.op_type], tuple(node.input), tuple(node.output), attrs,
                               free, node.name or f"{node.op_type}_{i}"))
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
