"""ModelRunner: owns the KV pool, turns StepInputs into engine inputs, returns logits."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trtcompile import io_names as io
from trtcompile.runtime.sampler import upload
from trtcompile.runtime.step_inputs import StepInputs

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
                "float8_e4m3fn": torch.float8_e4m3fn, "int8": torch.int8}


@dataclass(frozen=True)
class KVPoolSpec:
    num_layers: int
    num_kv_heads: int
    head_dim: int
    block_size: int
    dtype: str

    @property
    def bytes_per_block(self) -> int:
        elem = torch.tensor([], dtype=TORCH_DTYPES[self.dtype]).element_size()
        return self.num_layers * 2 * self.block_size * self.num_kv_heads * self.head_dim * elem

    def allocate(self, num_blocks: int, device: torch.device) -> torch.Tensor:
        return torch.zeros(self.num_layers, 2, num_blocks, self.block_size, self.num_kv_heads,
                           self.head_dim, dtype=TORCH_DTYPES[self.dtype], device=device)


def blocks_for_budget(spec: KVPoolSpec, device: torch.device, memory_fraction: float,
                      cpu_num_blocks: int) -> int:
    """Pool size: the configured count on CPU; on GPU a share of the memory free now."""
    if device.type != "cuda":
        return cpu_num_blocks
    free, _total = torch.cuda.mem_get_info(device)
    return max(2, int(free * memory_fraction) // spec.bytes_per_block)


class ModelRunner:
    """execute(step) -> logits [S, vocab] float32; the pool lives here, not in the engine."""

    def __init__(self, backend, pool: KVPoolSpec, num_blocks: int):
        self.backend = backend
        self.device = backend.device
        self.num_blocks = num_blocks
        self.kv_cache = pool.allocate(num_blocks, self.device)
        self.graphs = None

    def capture_decode_graphs(self, max_num_seqs: int, max_blocks: int) -> None:
        """CUDA graphs for decode steps (GPU torch backend only)."""
        from trtcompile.runtime.cuda_graphs import DecodeGraphs

        self.graphs = DecodeGraphs(self.backend, self.kv_cache, max_num_seqs, max_blocks)
        self.graphs.capture_all()

    def __call__(self, step: StepInputs) -> torch.Tensor:
        if step.block_copies:
            src = upload([s for s, _ in step.block_copies], self.device)
            dst = upload([d for _, d in step.block_copies], self.device)
            pool = self.kv_cache
            if pool.dtype == torch.float8_e4m3fn:    # copied as bytes (no fp8 index kernels)
                pool = pool.view(torch.uint8)
            pool[:, :, dst] = pool[:, :, src]
        if self.graphs is not None and self.graphs.fits(step.tensors):
            return self.graphs.run(step.tensors, step.feed)
        feeds = {k: v.to(self.device, non_blocking=True) for k, v in step.tensors.items()
                 if k != io.INPUT_IDS}
        feeds[io.INPUT_IDS] = step.input_ids().to(self.device, non_blocking=True)
        feeds[io.KV_CACHE] = self.kv_cache
        return self.backend.execute(feeds)
