"""A deterministic stand-in model that sees only what a real engine sees.

It keeps a fake KV cache (the token id and position written at each pool slot), writes
this step's tokens through slot_mapping, then rebuilds each sequence's context from
block_tables and seq_lens alone. Its logits are a fixed function of that full context, so
a wrong slot, block table, CoW copy or lost preempted state changes the generated tokens.
"""

from __future__ import annotations

import numpy as np
import torch

from trtcompile import io_names
from trtcompile.runtime.step_inputs import StepInputs

_MOD = 1_000_000_007


class FakeModel:
    def __init__(self, num_blocks: int, block_size: int, vocab_size: int,
                 num_patterns: int = 97, seed: int = 0) -> None:
        self.block_size = block_size
        self.vocab_size = vocab_size
        n_slots = num_blocks * block_size
        self.kv_token = np.full(n_slots, -1, dtype=np.int64)
        self.kv_pos = np.full(n_slots, -1, dtype=np.int64)
        rng = np.random.default_rng(seed)
        self.table = torch.from_numpy(
            rng.standard_normal((num_patterns, vocab_size)).astype(np.float32) * 3)
        self.coef = rng.integers(1, _MOD, size=1 << 16, dtype=np.int64)
        self.num_calls = 0

    def context_ids(self, inputs: StepInputs, row: int) -> np.ndarray:
        """The token ids of sequence `row`, read back from the fake KV cache."""
        t = inputs.tensors
        n = int(t[io_names.SEQ_LENS][row])
        pos = np.arange(n)
        table = t[io_names.BLOCK_TABLES][row].numpy().astype(np.int64)
        slots = table[pos // self.block_size] * self.block_size + pos % self.block_size
        if not np.array_equal(self.kv_pos[slots], pos):
            raise AssertionError(f"sequence {inputs.request_ids[row]}: KV cache holds wrong "
                                 f"positions {self.kv_pos[slots].tolist()}")
        return self.kv_token[slots]

    def __call__(self, inputs: StepInputs) -> torch.Tensor:
        self.num_calls += 1
        for src, dst in inputs.block_copies:
            s, d = src * self.block_size, dst * self.block_size
            self.kv_token[d:d + self.block_size] = self.kv_token[s:s + self.block_size]
            self.kv_pos[d:d + self.block_size] = self.kv_pos[s:s + self.block_size]
        t = inputs.tensors
        slots = t[io_names.SLOT_MAPPING].numpy().astype(np.int64)
        self.kv_token[slots] = inputs.input_ids().numpy()
        self.kv_pos[slots] = t[io_names.POSITIONS].numpy()
        keys = []
        for row in range(inputs.num_seqs):
            ctx = self.context_ids(inputs, row)
            keys.append(int((ctx * self.coef[:ctx.size] % _MOD).sum() % _MOD))
        idx = torch.tensor(keys, dtype=torch.int64) % self.table.shape[0]
        return self.table[idx]
