"""DecodeGraphs on its own: each step's inputs, staged in pinned memory and copied in one go,
reach the graph of its batch and table width intact (rows, padding rows, block-table columns
past the step's width, and the rows fed from the previous step's sampled ids), whichever host
buffer a step takes and whichever width the step before had."""

import pytest
import torch

from trtcompile import io_names as io

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

MAX_BLOCKS = 6


class EchoBackend:
    """'Logits' row i = what the graph was fed for row i: input id, position, sequence length,
    slot, its block table, its query end."""

    def execute(self, feeds):
        cols = [feeds[n][:, None] for n in (io.INPUT_IDS, io.POSITIONS, io.SEQ_LENS,
                                             io.SLOT_MAPPING)]
        return torch.cat([*cols, feeds[io.BLOCK_TABLES], feeds[io.QUERY_START_LOC][1:, None]],
                         dim=1).float()


def step(s: int, width: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randint(1, 1000, shape, generator=g, dtype=torch.int32)  # noqa: E731
    return {io.INPUT_IDS: r(s), io.POSITIONS: r(s), io.SEQ_LENS: r(s), io.SLOT_MAPPING: r(s),
            io.QUERY_START_LOC: torch.arange(s + 1, dtype=torch.int32),
            io.BLOCK_TABLES: r(s, width)}


def expected(t: dict, bucket: int, ids: torch.Tensor, w: int = MAX_BLOCKS) -> torch.Tensor:
    """What the graph of this batch bucket and table width w echoes."""
    s, width = t[io.BLOCK_TABLES].shape
    rows = torch.zeros(bucket, 5 + w)
    rows[:, 2] = 1                                             # padding: one-token sequences
    rows[:s, 0], rows[:s, 1], rows[:s, 2], rows[:s, 3] = (
        ids.float(), t[io.POSITIONS].float(), t[io.SEQ_LENS].float(), t[io.SLOT_MAPPING].float())
    rows[:s, 4:4 + width] = t[io.BLOCK_TABLES].float()
    rows[:, -1] = torch.arange(1, bucket + 1)
    return rows


@pytest.mark.parametrize("widths", [None, (2, 4)], ids=["one width", "widths 2, 4, 6"])
def test_decode_graph_inputs_staged_in_one_copy(widths):
    from trtcompile.runtime.cuda_graphs import DecodeGraphs
    from trtcompile.runtime.step_inputs import SampledFeed

    graphs = DecodeGraphs(EchoBackend(), torch.zeros(1, device="cuda"), max_num_seqs=8,
                          max_blocks=MAX_BLOCKS, widths=widths)
    graphs.capture_all()
    assert graphs.buckets == [1, 2, 4, 8]
    assert graphs.widths == ([MAX_BLOCKS] if widths is None else [2, 4, MAX_BLOCKS])
    assert len(graphs.graphs) == 4 * len(graphs.widths)
    sampled = torch.arange(500, 508, device="cuda")            # a previous step's ids (int64)
    # (rows, width, fed rows dst <- src): a wide table, then narrower ones on the same host
    # buffer. Fed: none; rows 0..k-1 in order; rows that are not 0..k-1; none; all rows in
    # order; rows 0..k-1 from other rows of the previous step (twice)
    cases = [(5, 6, None), (3, 2, ([0, 1, 2], [0, 1, 2])), (5, 3, ([1, 4], [6, 0])),
             (2, 1, None), (8, 4, (list(range(8)), list(range(8)))), (1, 6, ([0], [7])),
             (4, 2, ([0, 1, 2, 3], [5, 2, 7, 0]))]
    for i, (s, width, fed) in enumerate(cases):
        t = step(s, width, seed=i)
        ids = t[io.INPUT_IDS].clone()
        feed = None
        if fed is not None:
            feed = SampledFeed(fed[0], fed[1], sampled)
            t[io.INPUT_IDS][fed[0]] = -1                       # the host holds placeholders
            ids[fed[0]] = sampled[fed[1]].cpu().int()
        assert graphs.fits(t)
        got = graphs.run(t, feed)
        bucket = min(b for b in graphs.buckets if b >= s)
        w = min(x for x in graphs.widths if x >= width)
        full = graphs.graphs[bucket, w][1]                     # padding rows included
        want = expected(t, bucket, ids, w)
        assert torch.equal(got.cpu(), want[:s]), f"case {i}"
        assert torch.equal(full.cpu(), want), f"case {i}: padding rows"
