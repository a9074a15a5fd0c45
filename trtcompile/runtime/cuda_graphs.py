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
from trtcompile.runtime.step_inputs import SampledFeed

DEFAULT_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256, 320, 384, 512)
# The per-step inputs, one after another in one int32 buffer (n rows each, block tables last),
# with the fed rows' indices (SampledFeed): a step's inputs reach the device in one copy.
_ROWS = (io.INPUT_IDS, io.POSITIONS, io.SEQ_LENS, io.SLOT_MAPPING, "feed_dst", "feed_src")
_PAD = {io.INPUT_IDS: 0, io.POSITIONS: 0, io.SEQ_LENS: 1, io.SLOT_MAPPING: 0}   # padding rows


def _views(buf, n: int, max_blocks: int) -> dict:
    """name -> its part of one step buffer (torch tensor or numpy array alike)."""
    views = {name: buf[i * n:(i + 1) * n] for i, name in enumerate(_ROWS)}
    views[io.BLOCK_TABLES] = buf[len(_ROWS) * n:].reshape(n, max_blocks)
    return views


class DecodeGraphs:
    def __init__(self, backend, kv_cache: torch.Tensor, max_num_seqs: int, max_blocks: int,
                 buckets=DEFAULT_BUCKETS):
        self.backend = backend
        self.kv_cache = kv_cache
        self.max_blocks = max_blocks
        self.buckets = sorted({b for b in buckets if b < max_num_seqs} | {max_num_seqs})
        n = self.buckets[-1]
        size = len(_ROWS) * n + n * max_blocks
        self._device_buf = torch.zeros(size, dtype=torch.int32, device=kv_cache.device)
        self.static = _views(self._device_buf, n, max_blocks)
        self.static[io.QUERY_START_LOC] = torch.arange(n + 1, dtype=torch.int32,
                                                       device=kv_cache.device)
        # Two pinned host buffers taken in turn: a step fills one while the copy out of the
        # other may still be queued; each buffer's event marks its copy done.
        self._host = [torch.zeros(size, dtype=torch.int32, pin_memory=True) for _ in range(2)]
        self._host_views = [_views(h.numpy(), n, max_blocks) for h in self._host]
        self._copied = [torch.cuda.Event() for _ in range(2)]
        self._turn = 0
        self.graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self.pool = None

    def _feeds(self, b: int) -> dict[str, torch.Tensor]:
        feeds = {k: (v[: b + 1] if k == io.QUERY_START_LOC else v[:b]) for k, v in self.static.items()
                 if not k.startswith("feed_")}
        feeds[io.KV_CACHE] = self.kv_cache
        return feeds

    def capture_all(self) -> None:
        """Capture every bucket, largest first (so smaller ones reuse its memory pool)."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for name, value in _PAD.items():                  # every row is padding
                self.static[name].fill_(value)
            for b in reversed(self.buckets):
                self.backend.execute(self._feeds(b))          # warm-up: sizes workspaces
        torch.cuda.current_stream().wait_stream(stream)
        for b in reversed(self.buckets):
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                out = self.backend.execute(self._feeds(b))
            self.pool = graph.pool()
            self.graphs[b] = (graph, out)
        torch.cuda.synchronize()

    @staticmethod
    def is_decode(tensors: Mapping[str, torch.Tensor]) -> bool:
        return tensors[io.INPUT_IDS].shape[0] == tensors[io.SEQ_LENS].shape[0]

    def fits(self, tensors: Mapping[str, torch.Tensor]) -> bool:
        return (bool(self.graphs) and self.is_decode(tensors)
                and tensors[io.SEQ_LENS].shape[0] <= self.buckets[-1]
                and tensors[io.BLOCK_TABLES].shape[1] <= self.max_blocks)

    def run(self, tensors: Mapping[str, torch.Tensor], feed: SampledFeed | None = None
            ) -> torch.Tensor:
        """tensors: this step's CPU int32 inputs (decode only); feed: rows whose input id is
        the previous step's sampled id, on this device. Returns logits [S, vocab]."""
        s = tensors[io.SEQ_LENS].shape[0]
        b = self.buckets[bisect.bisect_left(self.buckets, s)]
        turn = self._turn
        self._turn = 1 - turn
        self._copied[turn].synchronize()            # its copy two steps ago (long done)
        h = self._host_views[turn]
        for name, pad in _PAD.items():              # rows >= s: padding, up to the bucket
            h[name][:s] = tensors[name].numpy()
            h[name][s:b] = pad
        table, width = h[io.BLOCK_TABLES], tensors[io.BLOCK_TABLES].shape[1]
        table[:s, :width] = tensors[io.BLOCK_TABLES].numpy()
        table[:s, width:] = 0
        table[s:b] = 0
        if feed is not None:                        # which rows take which sampled ids
            k, prefix, in_order = len(feed.dst), feed.fills_prefix, feed.in_order
            if not in_order:
                h["feed_src"][:k] = feed.src
            if not prefix:
                h["feed_dst"][:k] = feed.dst
        # Whole table rows up to the bucket: b x max_blocks ids a step (W1, 256 x 64: 64 KB; at
        # max_model_len 32k and block 16, 2 MB at 256 sequences, where a 2D copy of the used
        # columns would pay).
        used = len(_ROWS) * self.buckets[-1] + b * self.max_blocks
        self._device_buf[:used].copy_(self._host[turn][:used], non_blocking=True)
        self._copied[turn].record()
        if feed is not None:
            ids, tokens = self.static[io.INPUT_IDS], feed.tokens
            if not in_order:
                tokens = tokens.index_select(0, self.static["feed_src"][:k])
            if prefix:
                ids[:k].copy_(tokens[:k])
            else:
                ids[self.static["feed_dst"][:k]] = tokens.int()
        graph, out = self.graphs[b]
        graph.replay()
        return out[:s]
