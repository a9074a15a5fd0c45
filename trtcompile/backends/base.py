"""The one interface the runtime sees of a backend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch


class EngineBackend(Protocol):
    """Runs one step of the engine I/O contract (trtcompile.io_names).

    `inputs` holds every engine input by name, `kv_cache` included (the runtime owns the
    pool; the backend writes new K/V into it in place). Returns logits, float32 [S, vocab].
    """

    device: "torch.device"

    def execute(self, inputs: Mapping[str, "torch.Tensor"]) -> "torch.Tensor": ...
