"""Weights between the exporter, the passes and the artifact without protobuf copies: they stay
numpy arrays (views of the exported torch tensors) on the gs.Graph and are written once,
straight into `<model>.onnx.data` (and further files of up to SHARD_BYTES each), when the graph
is saved."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx_graphsurgeon.ir.tensor import LazyValues

from trtcompile.ops.spec import DOMAIN, OPSET_VERSION

EXTERNAL_ABOVE = 64 << 20      # total weight bytes above which they go to an external file
EXTERNAL_MIN_TENSOR = 1024     # smaller tensors stay inside the .onnx file
ALIGN = 4096                   # offsets of tensors in the data file (page aligned)
SHARD_BYTES = 1 << 30          # data files up to this size (one bigger tensor gets its own):
                               # the artifact's checksums are verified one file per thread


def attach_weights(graph: gs.Graph, weights: Mapping[str, np.ndarray]) -> int:
    """Turn the graph's undefined tensors named in `weights` into constants holding those
    arrays (no copy). Returns how many were attached."""
    tensors = graph.tensors()
    attached = 0
    for name, values in weights.items():
        tensor = tensors.get(name)
        if isinstance(tensor, gs.Variable):
            tensor.to_constant(values)
            attached += 1
    return attached


def to_model(graph: gs.Graph) -> onnx.ModelProto:
    model = gs.export_onnx(graph)
    if not any(o.domain == DOMAIN for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(DOMAIN, OPSET_VERSION))
    return model


def _constants(graph: gs.Graph) -> list[gs.Constant]:
    seen, out = set(), []
    for tensor in graph.tensors().values():
        if isinstance(tensor, gs.Constant) and id(tensor) not in seen \
                and not isinstance(tensor._values, LazyValues):
            seen.add(id(tensor))
            out.append(tensor)
    return out


def _external_proto(const: gs.Constant, location: str, offset: int, length: int) -> onnx.TensorProto:
    from onnx_graphsurgeon.exporters.onnx_exporter import dtype_to_onnx

    proto = onnx.TensorProto(name=const.name, dims=list(const.values.shape),
                             data_type=dtype_to_onnx(const.values.dtype),
                             data_location=onnx.TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = proto.external_data.add()
        entry.key, entry.value = key, value
    return proto


def array_bytes(values: np.ndarray) -> memoryview:
    """The bytes of an array, read in place (no copy for a contiguous array)."""
    return np.ascontiguousarray(values).reshape(-1).view(np.uint8).data


MEMORY_LOCATION = "<memory>"  # external-data location of weights handed over in memory


def _weight_constants(graph: gs.Graph) -> list[gs.Constant]:
    """Constants stored as they export (no dtype conversion) and big enough to go external."""
    return [c for c in _constants(graph)
            if c.export_dtype == c.values.dtype and c.values.nbytes >= EXTERNAL_MIN_TENSOR]


@contextmanager
def _exported_as_external(refs: list[tuple[gs.Constant, str, int]]):
    """Within the block each (constant, location, offset) of `refs` exports as a reference to
    `location` at `offset` instead of its bytes; the constants get their arrays back after."""
    swapped: list[tuple[gs.Constant, object]] = []
    try:
        for const, location, offset in refs:
            proto = _external_proto(const, location, offset, const.values.nbytes)
            swapped.append((const, const._values))
            const._values = LazyValues(proto)
        yield
    finally:
        for const, values in swapped:
            const._values = values


def to_model_sharing_weights(graph: gs.Graph) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """(model, weights): `graph` as a ModelProto whose large weights are references to
    MEMORY_LOCATION, and those weights by name: the graph's own arrays, not copies. For
    OnnxExecutor(model, weights=weights) on a graph too big to copy (calibration of 8B models)."""
    consts = _weight_constants(graph)
    with _exported_as_external([(c, MEMORY_LOCATION, 0) for c in consts]):
        model = to_model(graph)
    return model, {c.name: c.values for c in consts}


def save_graph(graph: gs.Graph, path: Path) -> None:
    """Save `graph` to `path`; when its weights exceed EXTERNAL_ABOVE bytes, every tensor of at
    least EXTERNAL_MIN_TENSOR bytes goes to `<name>.data`, `<name>.data.1`, ... (SHARD_BYTES a
    file at most, unless one tensor is bigger), written from its array directly.
    The graph is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    consts = [c for c in _constants(graph) if c.export_dtype == c.values.dtype]
    if sum(c.values.nbytes for c in consts) <= EXTERNAL_ABOVE:
        onnx.save_model(to_model(graph), str(path))
        return
    refs: list[tuple[gs.Constant, str, int]] = []
    shard, f = 0, None
    try:
        for const in _weight_constants(graph):
            offset = 0 if f is None else -(-f.tell() // ALIGN) * ALIGN   # round up to the alignment
            if f is None or (offset > 0 and offset + const.values.nbytes > SHARD_BYTES):
                if f is not None:
                    f.close()
                    shard += 1
                location = data_file_name(path.name, shard)
                f = open(path.parent / location, "wb")
                offset = 0
            f.seek(offset)
            f.write(array_bytes(const.values))
            refs.append((const, location, offset))
    finally:
        if f is not None:
            f.close()
    with _exported_as_external(refs):
        onnx.save_model(to_model(graph), str(path))


def data_file_name(model_name: str, shard: int) -> str:
    """The external data file of a model's shard: `<model>.data`, then `<model>.data.1`, ..."""
    return f"{model_name}.data" + (f".{shard}" if shard else "")
