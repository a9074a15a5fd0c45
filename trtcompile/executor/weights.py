"""A model's external initializers read straight onto its device.

On a CUDA device the file's bytes go through a ring of a few pinned host buffers: each chunk is
read into a free buffer while the copies of the chunks before it run, so the read of the data
file overlaps the host-to-device copies and no tensor exists twice in host memory. (Reading each
tensor into pageable memory and then copying it, as `node.tensor_to_torch` followed by `.to()`
does, runs the read and the copy of every tensor in turn.) On other devices the chunks are copied
as they are read."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import onnx
import torch

from trtcompile.errors import ArtifactError
from trtcompile.executor.node import external_place, stored_as

CHUNK_BYTES = 64 << 20     # bytes per staging buffer
BUFFERS = 3                # staging buffers in the ring


def _layout(t: onnx.TensorProto) -> tuple[torch.dtype, torch.dtype | None, int]:
    """(torch dtype of the stored elements, the dtype they are viewed as or None, element size)."""
    storage, viewed = stored_as(t.data_type)
    return torch.from_numpy(np.empty(0, dtype=storage)).dtype, viewed, storage.itemsize


def read_external(tensors: Iterable[onnx.TensorProto], base_dir: str | Path,
                  device: torch.device | str, chunk_bytes: int = CHUNK_BYTES) -> dict[str, torch.Tensor]:
    """name -> the tensor on `device`, for external-data initializers stored under base_dir.
    A data file shorter than a tensor's extent is refused with the tensor's name."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    tensors = sorted(tensors, key=external_place)   # each file front to back: sequential reads
    if not tensors:
        return {}
    ring = [torch.empty(chunk_bytes, dtype=torch.uint8, pin_memory=cuda) for _ in range(BUFFERS)]
    views = [memoryview(b.numpy()) for b in ring]
    done: list[torch.cuda.Event | None] = [None] * BUFFERS   # the copy out of each buffer
    out: dict[str, torch.Tensor] = {}
    k = 0
    with ExitStack() as files:
        opened: dict[Path, object] = {}
        for t in tensors:
            location, offset = external_place(t)
            stored, viewed, itemsize = _layout(t)
            dims = tuple(t.dims)
            nbytes = int(np.prod(dims, dtype=np.int64)) * itemsize
            path = Path(base_dir) / location
            if path not in opened:
                opened[path] = files.enter_context(open(path, "rb"))
            f = opened[path]
            dst = torch.empty(nbytes, dtype=torch.uint8, device=device)
            f.seek(offset)
            pos = 0
            while pos < nbytes:
                n = min(chunk_bytes, nbytes - pos)
                if done[k] is not None:
                    done[k].synchronize()
                got = f.readinto(views[k][:n])
                if got != n:
                    raise ArtifactError(f"{path.name}: tensor '{t.name}' needs {nbytes} bytes at "
                                        f"offset {offset}, the file holds {pos + got} of them")
                dst[pos:pos + n].copy_(ring[k][:n], non_blocking=cuda)
                if cuda:
                    done[k] = torch.cuda.Event()
                    done[k].record()
                k = (k + 1) % BUFFERS
                pos += n
            value = dst.view(stored).reshape(dims)
            out[t.name] = value if viewed is None else value.view(viewed)
    if cuda:
        torch.cuda.current_stream(device).synchronize()   # the ring's buffers outlive no copy
    return out
