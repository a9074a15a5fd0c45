"""Drive a paged graph through two steps of a packed batch and compare with HF logits."""

from __future__ import annotations

import torch

from trtcompile import io_names as io


def make_steps(seqs: list[list[int]], splits: list[int], block_size: int, num_blocks: int,
               seed: int = 0):
    """Two steps: step 1 feeds seqs[i][:splits[i]], step 2 the rest. Blocks are handed out
    from a shuffled pool, so block tables are not contiguous."""
    gen = torch.Generator().manual_seed(seed)
    free = torch.randperm(num_blocks, generator=gen).tolist()
    tables = []
    for s in seqs:
        n = (len(s) + block_size - 1) // block_size
        tables.append([free.pop() for _ in range(n)])
    width = max(len(t) for t in tables)
    steps = []
    for lo_hi in ((lambda i: (0, splits[i])), (lambda i: (splits[i], len(seqs[i])))):
        ids, pos, qsl, lens, slots, rows = [], [], [0], [], [], []
        for i, s in enumerate(seqs):
            lo, hi = lo_hi(i)
            if hi <= lo:
                continue
            ids += s[lo:hi]
            pos += list(range(lo, hi))
            qsl.append(qsl[-1] + hi - lo)
            lens.append(hi)
            slots += [tables[i][p // block_size] * block_size + p % block_size for p in range(lo, hi)]
            rows.append((i, hi))
        bt = [tables[i] + [0] * (width - len(tables[i])) for i, _ in rows]
        i32 = lambda x: torch.tensor(x, dtype=torch.int32)  # noqa: E731
        steps.append(({io.INPUT_IDS: i32(ids), io.POSITIONS: i32(pos), io.QUERY_START_LOC: i32(qsl),
                       io.SEQ_LENS: i32(lens), io.BLOCK_TABLES: i32(bt), io.SLOT_MAPPING: i32(slots)},
                      rows))
    return steps


def compare_paged(run, hf_model, info, seqs, splits, block_size=4, num_blocks=64,
                  dtype=torch.float32) -> float:
    """Max |paged - HF| / logit range over every sampled row of both steps."""
    kv = torch.zeros(info.num_layers, 2, num_blocks, block_size, info.num_kv_heads,
                     info.head_dim, dtype=dtype)
    worst = 0.0
    for feeds, rows in make_steps(seqs, splits, block_size, num_blocks):
        feeds[io.KV_CACHE] = kv
        logits = run(feeds)
        for r, (i, upto) in enumerate(rows):
            with torch.no_grad():
                ref = hf_model(input_ids=torch.tensor([seqs[i][:upto]])).logits[0, -1].float()
            err = (logits[r] - ref).abs().max().item() / (ref.max() - ref.min()).item()
            worst = max(worst, err)
    return worst
