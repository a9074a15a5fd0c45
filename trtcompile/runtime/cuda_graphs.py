"""Decode steps replayed from CUDA graphs captured per batch-size bucket.

A decode-only step (one new token per sequence) with S sequences runs the graph of the
smallest bucket B >= S. Rows S..B-1 are padding: token 0 at position 0 of a one-token
sequence whose K/V goes to slot 0, i.e. into block 0, which the block pool never hands out.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping

import torch

from trtcompile import io_names as io

DEFAULT_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256, 320, 384, 512)
_STEP_INPUTS = (io.INPUT_IDS, io.POSITIONS, io.QUERY_START_LOC, io.SEQ_LENS, io.BLOCK_TABLES,
                io.SLOT_MAPPING)


class DecodeGraphs:
    def __init__(self, backend, kv_cache: torch.Tensor, max_num_seqs: int, max_blocks: int,
                 buckets=DEFAULT_BUCKETS):
        self.backend = backend
        self.kv_cache = kv_cache
        self.max_blocks = max_blocks
        self.buckets = sorted({b for b in buckets if b < max_num_seqs} | {max_num_seqs})
        dev = kv_cache.device
        n = self.buckets[-1]
        i32 = dict(dtype=torch.int32, device=dev)
        self.static = {
            io.INPUT_IDS: torch.zeros(n, **i32), io.POSITIONS: torch.zeros(n, **i32),
            io.QUERY_START_LOC: torch.arange(n + 1, **i32), io.SEQ_LENS: torch.ones(n, **i32),
            io.BLOCK_TABLES: torch.zeros(n, max_blocks, **i32),
            io.SLOT_MAPPING: torch.zeros(n, **i32),
        }
        self.graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self.pool = None

    def _feeds(self, b: int) -> dict[str, torch.Tensor]:
        feeds = {k: (v[: b + 1] if k == io.QUERY_START_LOC else v[:b]) for k, v in self.static.items()}
        feeds[io.KV_CACHE] = self.kv_cache
        return feeds

    def capture_all(self) -> None:
        """Capture every bucket, largest first (so smaller ones reuse its memory pool)."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for b in reversed(self.buckets):
                self._reset_padding(0)
                self.backend.execute(self._feeds(b))          # warm-up: sizes workspaces
        torch.cuda.current_stream().wait_stream(stream)
        for b in reversed(self.buckets):
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                out = self.backend.execute(self._feeds(b))
            self.pool = graph.pool()
            self.graphs[b] = (graph, out)
        torch.cuda.synchronize()

    def _reset_padding(self, start: int) -> None:
        s = self.static
        s[io.INPUT_IDS][start:] = 0
        s[io.POSITIONS][start:] = 0
        s[io.SEQ_LENS][start:] = 1
        s[io.BLOCK_TABLES][start:] = 0
        s[io.SLOT_MAPPING][start:] = 0
        n = s[io.QUERY_START_LOC].shape[0] - 1
        s[io.QUERY_START_LOC].copy_(torch.arange(n + 1, dtype=torch.int32))

    @staticmethod
    def is_decode(tensors: Mapping[str, torch.Tensor]) -> bool:
        return tensors[io.INPUT_IDS].shape[0] == tensors[io.SEQ_LENS].shape[0]

    def fits(self, tensors: Mapping[str, torch.Tensor]) -> bool:
        return (bool(self.graphs) and self.is_decode(tensors)
                and tensors[io.SEQ_LENS].shape[0] <= self.buckets[-1]
                and tensors[io.BLOCK_TABLES].shape[1] <= self.max_blocks)

    def run(self, tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """tensors: this step's CPU int32 inputs (decode only). Returns logits [S, vocab]."""
        s = tensors[io.SEQ_LENS].shape[0]
        b = self.buckets[bisect.bisect_left(self.buckets, s)]
        st = self.static
        for name in (io.INPUT_IDS, io.POSITIONS, io.SEQ_LENS, io.SLOT_MAPPING):
            st[name][:s].copy_(tensors[name], non_blocking=True)
        width = tensors[io.BLOCK_TABLES].shape[1]
        st[io.BLOCK_TABLES][:s, :width].copy_(tensors[io.BLOCK_TABLES], non_blocking=True)
        if width < self.max_blocks:
            st[io.BLOCK_TABLES][:s, width:] = 0
        if b > s:                                   # padding rows (rows >= s) keep their values
            st[io.SEQ_LENS][s:b] = 1
            st[io.SLOT_MAPPING][s:b] = 0
            st[io.BLOCK_TABLES][s:b] = 0
            st[io.POSITIONS][s:b] = 0
        graph, out = self.graphs[b]
        graph.replay()
        return out[:s]
