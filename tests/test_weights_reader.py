"""executor/weights.py: external initializers read in chunks through a buffer ring equal the
one-read path (node.tensor_to_torch) for every stored type, across chunk and file boundaries."""

import numpy as np
import onnx
import pytest
import torch

from trtcompile.errors import ArtifactError
from trtcompile.executor.node import tensor_to_torch
from trtcompile.executor.weights import read_external


def _external(tmp_path, arrays: dict[str, tuple[np.ndarray, int]], location="w.data"):
    """TensorProtos of raw arrays (bytes, ONNX type) written one after another to one file."""
    protos, offset = [], 0
    with open(tmp_path / location, "wb") as f:
        for name, (arr, dtype) in arrays.items():
            raw = arr.tobytes()
            f.write(raw)
            t = onnx.TensorProto(name=name, data_type=dtype, dims=list(arr.shape))
            t.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", location), ("offset", str(offset)), ("length", str(len(raw)))):
                t.external_data.add(key=key, value=value)
            protos.append(t)
            offset += len(raw)
    return protos


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_chunks_equal_the_one_read_path(tmp_path, chunk):
    rng = np.random.default_rng(0)
    arrays = {
        "f32": (rng.standard_normal((5, 33)).astype(np.float32), onnx.TensorProto.FLOAT),
        "bf16": (rng.integers(-2**15, 2**15, (17, 3)).astype(np.int16), onnx.TensorProto.BFLOAT16),
        "fp8": (rng.integers(0, 256, (9, 11)).astype(np.uint8), onnx.TensorProto.FLOAT8E4M3FN),
        "i64": (np.arange(3, dtype=np.int64), onnx.TensorProto.INT64),
        "empty": (np.zeros((0, 4), np.float32), onnx.TensorProto.FLOAT),
        "f16": (rng.standard_normal(129).astype(np.float16), onnx.TensorProto.FLOAT16),
    }
    protos = _external(tmp_path, arrays)
    got = read_external(protos[::-1], tmp_path, "cpu", chunk_bytes=chunk)   # any order given
    assert sorted(got) == sorted(arrays)
    for t in protos:
        want = tensor_to_torch(t, str(tmp_path))
        assert got[t.name].dtype == want.dtype and got[t.name].shape == want.shape, t.name
        assert torch.equal(got[t.name].view(torch.uint8), want.view(torch.uint8)), t.name


def test_two_data_files(tmp_path):
    a = _external(tmp_path, {"a": (np.arange(10, dtype=np.float32), onnx.TensorProto.FLOAT)}, "a.data")
    b = _external(tmp_path, {"b": (np.arange(6, dtype=np.int32), onnx.TensorProto.INT32)}, "b.data")
    got = read_external(a + b, tmp_path, "cpu", chunk_bytes=16)
    assert torch.equal(got["a"], torch.arange(10, dtype=torch.float32))
    assert torch.equal(got["b"], torch.arange(6, dtype=torch.int32))
    assert read_external([], tmp_path, "cpu") == {}            # no buffers for no tensors


def test_short_file_names_the_tensor(tmp_path):
    protos = _external(tmp_path, {"w": (np.ones(100, np.float32), onnx.TensorProto.FLOAT)})
    data = tmp_path / "w.data"
    data.write_bytes(data.read_bytes()[:250])
    with pytest.raises(ArtifactError, match="tensor 'w' needs 400 bytes at offset 0, the file holds 250 of them"):
        read_external(protos, tmp_path, "cpu", chunk_bytes=128)
