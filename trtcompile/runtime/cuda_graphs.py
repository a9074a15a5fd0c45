"""Decode steps replayed from CUDA graphs captured per batch-size bucket and block-table width.

A decode-only step (one new token per sequence) with S sequences whose longest block table has
W blocks runs the graph of the smallest batch bucket B >= S and the narrowest width bucket
>= W. Rows S..B-1 are padding: token 0 at position 0 of a one-token sequence whose K/V goes to
slot 0, i.e. into block 0, which the block pool never hands out. Table columns past a row's
blocks hold block 0.

The attention kernels plan a call from its shapes (a CUDA graph replays that plan): a table of
max_model_len's width makes them plan every step for the longest context allowed (split counts,
kernel variant). Hence the width buckets: a graph is planned for at most four times the
context its step can have.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping

import torch

from trtcompile import io_names as io
from trtcompile.runtime.step_inputs import SampledFeed

DEFAULT_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256, 320, 384, 512)
# Block-table width buckets: FIRST_WIDTH blocks (1024 tokens at block size 16), then four
# times wider up to max_model_len's width. (H200, W1 on llama-3.2-1b at max_model_len 32768:
# 37.9-42.4k output tok/s with every decode step planned for 2048 blocks, 46.8-47.9k with
# these buckets; docs/benchmarks.md, session 24.)
FIRST_WIDTH = 64
WIDTH_STEP = 4
# The per-step inputs, one after another in one int32 buffer (n rows each), with the fed rows'
# indices (SampledFeed), then the block tables: a step's inputs reach the device in one copy.
_ROWS = (io.INPUT_IDS, io.POSITIONS, io.SEQ_LENS, io.SLOT_MAPPING, "feed_dst", "feed_src")
_PAD = {io.INPUT_IDS: 0, io.POSITIONS: 0, io.SEQ_LENS: 1, io.SLOT_MAPPING: 0}   # padding rows
_TABLES = "tables"


def width_buckets(max_blocks: int) -> list[int]:
    """FIRST_WIDTH, WIDTH_STEP times that, ... below max_blocks, and max_blocks."""
    widths, w = [], FIRST_WIDTH
    while w < max_blocks:
        widths.append(w)
        w *= WIDTH_STEP
    return widths + [max_blocks]


def _views(buf, n: int) -> dict:
    """name -> its part of one step buffer (torch tensor or numpy array alike); the tables'
    part holds one step's [rows, width] table, at that width's row stride."""
    views = {name: buf[i * n:(i + 1) * n] for i, name in enumerate(_ROWS)}
    views[_TABLES] = buf[len(_ROWS) * n:]
    return views


class DecodeGraphs:
    def __init__(self, backend, kv_cache: torch.Tensor, max_num_seqs: int, max_blocks: int,
                 buckets=DEFAULT_BUCKETS, widths=None):
        self.backend = backend
        self.kv_cache = kv_cache
        self.max_blocks = max_blocks
        self.buckets = sorted({b for b in buckets if b < max_num_seqs} | {max_num_seqs})
        self.widths = sorted({w for w in widths or width_buckets(max_blocks) if w < max_blocks}
                             | {max_blocks})
        n = self.buckets[-1]
        size = len(_ROWS) * n + n * max_blocks
        device = kv_cache.device
        self._device_buf = torch.zeros(size, dtype=torch.int32, device=device)
        self._staged = _views(self._device_buf, n)
        # the graphs' inputs: views of the staged rows; the block tables of width w, a view of
        # the tables' part with row stride w (every width's graphs read the same memory)
        self.static = {name: self._staged[name] for name in _PAD}
        self.static[io.QUERY_START_LOC] = torch.arange(n + 1, dtype=torch.int32, device=device)
        self._tables = {w: self._staged[_TABLES][: n * w].view(n, w) for w in self.widths}
        # Two pinned host buffers taken in turn: a step fills one while the copy out of the
        # other may still be queued; each buffer's event marks its copy done.
        self._host = [torch.zeros(size, dtype=torch.int32, pin_memory=True) for _ in range(2)]
        self._host_views = [_views(h.numpy(), n) for h in self._host]
        self._copied = [torch.cuda.Event() for _ in range(2)]
        self._turn = 0
        self.graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self.pool = None

    def _feeds(self, b: int, w: int) -> dict[str, torch.Tensor]:
        feeds = {k: (v[: b + 1] if k == io.QUERY_START_LOC else v[:b]) for k, v in self.static.items()}
        feeds[io.BLOCK_TABLES] = self._tables[w][:b]
        feeds[io.KV_CACHE] = self.kv_cache
        return feeds

    def capture_all(self) -> None:
        """Capture a graph of every batch bucket at every table width."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for name, value in _PAD.items():                  # every row is padding
                self.static[name].fill_(value)
            for b, w in self._shapes():
                self.backend.execute(self._feeds(b, w))       # warm-up: sizes workspaces
        torch.cuda.current_stream().wait_stream(stream)
        for b, w in self._shapes():
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                out = self.backend.execute(self._feeds(b, w))
            self.pool = graph.pool()
            self.graphs[b, w] = (graph, out)
        torch.cuda.synchronize()

    def _shapes(self) -> list[tuple[int, int]]:
        """(batch bucket, width bucket) of every graph, largest first (so that smaller ones
        reuse its memory pool)."""
        return [(b, w) for b in reversed(self.buckets) for w in reversed(self.widths)]

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
        width = tensors[io.BLOCK_TABLES].shape[1]
        w = self.widths[bisect.bisect_left(self.widths, width)]
        table = h[_TABLES][: b * w].reshape(b, w)   # the graph's table, at its row stride
        table[:s, :width] = tensors[io.BLOCK_TABLES].numpy()
        table[:s, width:] = 0
        table[s:] = 0
        if feed is not None:                        # which rows take which sampled ids
            k, prefix, in_order = len(feed.dst), feed.fills_prefix, feed.in_order
            if not in_order:
                h["feed_src"][:k] = feed.src
            if not prefix:
                h["feed_dst"][:k] = feed.dst
        used = len(_ROWS) * self.buckets[-1] + b * w
        self._device_buf[:used].copy_(self._host[turn][:used], non_blocking=True)
        self._copied[turn].record()
        if feed is not None:
            ids, tokens = self.static[io.INPUT_IDS], feed.tokens
            if not in_order:
                tokens = tokens.index_select(0, self._staged["feed_src"][:k])
            if prefix:
                ids[:k].copy_(tokens[:k])
            else:
                ids[self._staged["feed_dst"][:k]] = tokens.int()
        graph, out = self.graphs[b, w]
        graph.replay()
        return out[:s]
