"""The executor's view of one ONNX node: names and parsed attributes, nothing else."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import torch
from onnx import numpy_helper


@dataclass(frozen=True)
class Node:
    op_type: str
    domain: str                    # "" for the standard ops
    inputs: tuple[str, ...]        # "" = omitted optional input
    outputs: tuple[str, ...]
    attrs: dict
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


def from_proto(node: onnx.NodeProto, index: int) -> Node:
    domain = "" if node.domain == "ai.onnx" else node.domain
    return Node(node.op_type, domain, tuple(node.input), tuple(node.output),
                {a.name: _attr_value(a) for a in node.attribute},
                node.name or f"{node.op_type}_{index}")
