"""The executor's view of one ONNX node: names and parsed attributes, nothing else."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

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


_VIEWED = {onnx.TensorProto.BFLOAT16: (np.int16, torch.bfloat16),          # numpy storage, torch
           onnx.TensorProto.FLOAT8E4M3FN: (np.uint8, torch.float8_e4m3fn)}


def stored_as(data_type: int) -> tuple[np.dtype, torch.dtype | None]:
    """(numpy dtype the bytes of ONNX type `data_type` are read as, torch dtype they are then
    viewed as, or None when torch takes the numpy dtype as it is)."""
    storage, viewed = _VIEWED.get(data_type, (onnx.helper.tensor_dtype_to_np_dtype(data_type), None))
    return np.dtype(storage), viewed


def external_place(t: onnx.TensorProto) -> tuple[str, int]:
    """(data file, byte offset) of an external tensor."""
    info = {e.key: e.value for e in t.external_data}
    return info["location"], int(info.get("offset", 0))


def _read_external(t: onnx.TensorProto, base_dir: str) -> torch.Tensor:
    """One read of an external tensor straight into the array torch takes over (no copies)."""
    from trtcompile.errors import ArtifactError

    location, offset = external_place(t)
    storage, viewed = stored_as(t.data_type)
    count = int(np.prod(t.dims, dtype=np.int64))
    path = Path(base_dir) / location
    arr = np.fromfile(path, dtype=storage, count=count, offset=offset)
    if arr.size != count:
        raise ArtifactError(f"{path.name}: tensor '{t.name}' needs {count} elements at offset "
                            f"{offset}, the file holds {arr.size}")
    out = torch.from_numpy(arr.reshape(tuple(t.dims)))
    return out if viewed is None else out.view(viewed)


def array_to_torch(arr: np.ndarray, data_type: int) -> torch.Tensor:
    """The tensor of ONNX type `data_type` whose values `arr` holds, sharing its memory (the
    executor never writes into its constants, so a read-only array is fine)."""
    storage, viewed = _VIEWED.get(data_type, (None, None))
    arr = np.ascontiguousarray(arr)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        out = torch.from_numpy(arr if storage is None else arr.view(storage))
    return out if viewed is None else out.view(viewed)


def tensor_to_torch(t: onnx.TensorProto, base_dir: str | None = None) -> torch.Tensor:
    if base_dir is not None and t.data_location == onnx.TensorProto.EXTERNAL:
        return _read_external(t, base_dir)
    if t.data_type in _VIEWED:
        storage, viewed = _VIEWED[t.data_type]
        raw = numpy_helper.to_array(t, base_dir or "")
        return torch.from_numpy(np.ascontiguousarray(raw).view(storage).copy()).view(viewed)
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
