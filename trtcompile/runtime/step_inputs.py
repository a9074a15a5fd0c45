"""SchedulerOutput -> the engine's packed-batch input tensors (DESIGN.md "Engine I/O contract")."""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from itertools import chain

import numpy as np
import torch

from trtcompile import io_names
from trtcompile.runtime.block_pool import NULL_BLOCK
from trtcompile.runtime.sampler import upload
from trtcompile.runtime.scheduler_output import SchedulerOutput


@dataclass(frozen=True)
class SampledFeed:
    """Input ids still on the device: row dst[i] of the step's input_ids is tokens[src[i]],
    the previous step's sampled ids, not yet copied to the host (the host tensor holds a
    PLACEHOLDER, -1, in those rows). dst is increasing."""
    dst: list[int]
    src: list[int]
    tokens: torch.Tensor                  # [S_prev] int64, on the device that sampled them

    def apply(self, input_ids: torch.Tensor) -> torch.Tensor:
        """input_ids with the fed rows in place, on the tokens' device (no wait for it)."""
        ids = input_ids.to(self.tokens.device, non_blocking=True, copy=True)
        index = upload(self.dst + self.src, ids.device).view(2, -1)
        ids[index[0]] = self.tokens[index[1]].to(ids.dtype)
        return ids

    @property
    def fills_prefix(self) -> bool:
        """The fed rows are rows 0..k-1 (as in a decode step after a decode step)."""
        return self.dst[-1] == len(self.dst) - 1

    @property
    def in_order(self) -> bool:
        """Rows 0..k-1 take tokens 0..k-1 (no request left since the previous step)."""
        return self.fills_prefix and self.dst == self.src


@dataclass(frozen=True)
class StepInputs:
    tensors: dict[str, torch.Tensor]      # int32 CPU tensors keyed by io_names (no kv_cache)
    request_ids: list[str]                # logits row i belongs to request_ids[i]
    sample: list[bool]                    # whether row i's logits are sampled this step
    block_copies: list[tuple[int, int]]   # (src, dst) block copies to do before the step
    feed: SampledFeed | None = None       # rows whose id is the previous step's sampled id

    def input_ids(self) -> torch.Tensor:
        """The step's input ids with the fed rows in place: the host tensor when nothing is
        fed, else a tensor on the device that sampled them. Execute functions read input ids
        here, never from tensors (which holds placeholders in the fed rows)."""
        ids = self.tensors[io_names.INPUT_IDS]
        return ids if self.feed is None else self.feed.apply(ids)

    @property
    def num_tokens(self) -> int:
        return int(self.tensors[io_names.INPUT_IDS].shape[0])

    @property
    def num_seqs(self) -> int:
        return len(self.request_ids)


def _packed(tables: list, count: int) -> np.ndarray:
    """The tables' ids one after another as int32: tables of C ints (array 'i', what the
    scheduler gives) are joined as bytes, lists converted id by id."""
    if tables and type(tables[0]) is array and tables[0].typecode == "i":
        try:
            joined = b"".join(tables)          # TypeError: a list among them
        except TypeError:
            joined = b""
        if len(joined) == 4 * count:
            return np.frombuffer(joined, dtype=np.int32, count=count)
    return np.fromiter(chain.from_iterable(tables), dtype=np.int32, count=count)


def build_step_inputs(sched_out: SchedulerOutput, block_size: int,
                      max_blocks_per_seq: int | None = None) -> StepInputs:
    """Pack the scheduled requests, in order, into the engine inputs. block_tables rows
    are padded with the null block 0 up to max_blocks_per_seq (default: the longest table)."""
    reqs = sched_out.scheduled
    num_seqs = len(reqs)
    token_lists = [r.token_ids for r in reqs]
    block_lists = [r.block_ids for r in reqs]
    n_new = np.fromiter(map(len, token_lists), dtype=np.int64, count=num_seqs)
    starts = np.array([r.start_pos for r in reqs], dtype=np.int64)
    n_blocks = np.fromiter(map(len, block_lists), dtype=np.int64, count=num_seqs)
    longest = int(n_blocks.max()) if num_seqs else 0
    width = longest if max_blocks_per_seq is None else max_blocks_per_seq
    if width < longest:
        raise ValueError(f"a block table has {longest} blocks > max_blocks_per_seq={width}")

    qsl = np.zeros(num_seqs + 1, dtype=np.int64)
    np.cumsum(n_new, out=qsl[1:])
    num_tokens = int(qsl[-1])
    seq_lens = starts + n_new

    # Token and block ids are int32 engine inputs: packed as such (the bulk of the values).
    input_ids = np.fromiter(chain.from_iterable(token_lists), dtype=np.int32, count=num_tokens)
    block_tables = np.full((num_seqs, width), NULL_BLOCK, dtype=np.int32)
    # Row-major boolean mask: row i's first n_blocks[i] entries, in order.
    block_tables[np.arange(width) < n_blocks[:, None]] = _packed(block_lists, int(n_blocks.sum()))

    if (n_new == 1).all():                                           # decode only
        tok_seq, positions = np.arange(num_seqs), starts
    else:
        tok_seq = np.repeat(np.arange(num_seqs), n_new)              # [T] owning sequence
        positions = np.arange(num_tokens) - qsl[:-1][tok_seq] + starts[tok_seq]
    slot_mapping = block_tables[tok_seq, positions // block_size] * block_size \
        + positions % block_size

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.int32, copy=False))

    tensors = {
        io_names.INPUT_IDS: t(input_ids),
        io_names.POSITIONS: t(positions),
        io_names.QUERY_START_LOC: t(qsl),
        io_names.SEQ_LENS: t(seq_lens),
        io_names.BLOCK_TABLES: t(block_tables),
        io_names.SLOT_MAPPING: t(slot_mapping),
    }
    return StepInputs(tensors=tensors, request_ids=[r.request_id for r in reqs],
                      sample=[r.sample for r in reqs],
                      block_copies=list(sched_out.block_copies))
