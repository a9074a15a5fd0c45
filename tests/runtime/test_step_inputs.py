"""Packed-batch engine inputs from a SchedulerOutput, exact values."""

import pytest
import torch

from trtcompile import io_names as n
from trtcompile.runtime.scheduler_output import ScheduledRequest, SchedulerOutput
from trtcompile.runtime.step_inputs import build_step_inputs


def i32(values):
    return torch.tensor(values, dtype=torch.int32)


def test_mixed_prefill_chunk_and_decode():
    out = SchedulerOutput(scheduled=[
        ScheduledRequest("dec", [42], start_pos=5, block_ids=[3, 7], sample=True),
        ScheduledRequest("pre", [1, 2, 3, 4, 5], start_pos=2, block_ids=[9, 4], sample=False),
    ], block_copies=[(2, 8)], total_num_tokens=6)
    si = build_step_inputs(out, block_size=4)
    t = si.tensors
    assert torch.equal(t[n.INPUT_IDS], i32([42, 1, 2, 3, 4, 5]))
    assert torch.equal(t[n.POSITIONS], i32([5, 2, 3, 4, 5, 6]))
    assert torch.equal(t[n.QUERY_START_LOC], i32([0, 1, 6]))
    assert torch.equal(t[n.SEQ_LENS], i32([6, 7]))
    assert torch.equal(t[n.BLOCK_TABLES], i32([[3, 7], [9, 4]]))
    # dec pos 5 -> block 7 off 1; pre pos 2,3 -> block 9; pos 4,5,6 -> block 4
    assert torch.equal(t[n.SLOT_MAPPING], i32([29, 38, 39, 16, 17, 18]))
    assert all(v.dtype == torch.int32 for v in t.values())
    assert si.request_ids == ["dec", "pre"] and si.sample == [True, False]
    assert si.block_copies == [(2, 8)]
    assert (si.num_tokens, si.num_seqs) == (6, 2)


def test_block_tables_padded_with_null_block():
    out = SchedulerOutput(scheduled=[
        ScheduledRequest("a", [1], start_pos=0, block_ids=[5], sample=True),
        ScheduledRequest("b", [1, 2], start_pos=7, block_ids=[2, 6, 1], sample=True),
    ])
    si = build_step_inputs(out, block_size=4, max_blocks_per_seq=5)
    assert torch.equal(si.tensors[n.BLOCK_TABLES], i32([[5, 0, 0, 0, 0], [2, 6, 1, 0, 0]]))
    assert torch.equal(si.tensors[n.SLOT_MAPPING], i32([20, 27, 4]))
    with pytest.raises(ValueError, match="max_blocks_per_seq"):
        build_step_inputs(out, block_size=4, max_blocks_per_seq=2)


def test_empty_step():
    si = build_step_inputs(SchedulerOutput(scheduled=[]), block_size=4)
    assert si.tensors[n.INPUT_IDS].shape == (0,)
    assert torch.equal(si.tensors[n.QUERY_START_LOC], i32([0]))
    assert si.tensors[n.BLOCK_TABLES].shape == (0, 0)


@pytest.mark.parametrize("kinds", ["array", "list", "array then list"])
def test_block_tables_of_c_ints_pack_as_lists_do(kinds):
    """The scheduler hands block tables as array('i'), packed as bytes; lists (or a mix) are
    converted id by id. Every form gives the same tensors, empty tables included."""
    from array import array

    tables = [[5, 1_000_000], [], [2, 6, 1], [7]]

    def form(i, t):
        if kinds == "list" or (kinds == "array then list" and i > 0):
            return list(t)
        return array("i", t)
    reqs = [ScheduledRequest(f"r{i}", [1], start_pos=4 * max(len(t) - 1, 0),
                             block_ids=form(i, t), sample=True) for i, t in enumerate(tables)]
    si = build_step_inputs(SchedulerOutput(scheduled=reqs), block_size=4, max_blocks_per_seq=4)
    assert torch.equal(si.tensors[n.BLOCK_TABLES],
                       i32([[5, 1_000_000, 0, 0], [0, 0, 0, 0], [2, 6, 1, 0], [7, 0, 0, 0]]))
    assert torch.equal(si.tensors[n.SLOT_MAPPING], i32([4_000_000, 0, 4, 28]))


def test_sampled_feed_fills_the_placeholder_rows():
    """Rows fed from the previous step's sampled ids take them, others keep the host ids; a
    step's input_ids() is the host tensor itself when nothing is fed."""
    from dataclasses import replace

    from trtcompile.runtime.step_inputs import SampledFeed

    out = SchedulerOutput(scheduled=[
        ScheduledRequest(r, [tok], start_pos=3, block_ids=[1], sample=True)
        for r, tok in (("a", -1), ("b", 9), ("c", -1))])
    si = build_step_inputs(out, block_size=4)
    assert si.input_ids() is si.tensors[n.INPUT_IDS]
    tokens = torch.tensor([70, 71, 72, 73])                     # the previous step's rows
    fed = replace(si, feed=SampledFeed([0, 2], [3, 1], tokens))
    assert torch.equal(fed.input_ids(), i32([73, 9, 71]))
    assert torch.equal(si.tensors[n.INPUT_IDS], i32([-1, 9, -1]))   # the host copy is left
    assert not fed.feed.fills_prefix and not fed.feed.in_order
    assert SampledFeed([0, 1], [0, 1], tokens).in_order
    prefix = SampledFeed([0, 1], [1, 0], tokens)
    assert prefix.fills_prefix and not prefix.in_order
    assert not SampledFeed([1], [1], tokens).fills_prefix
