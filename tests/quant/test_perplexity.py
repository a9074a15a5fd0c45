"""Perplexity feeds: every position is the last token of its own sequence."""

import torch

from trtcompile.executor import OnnxExecutor
from trtcompile.passes import PASSES
from trtcompile.passes.context import PassContext
from trtcompile.passes.pipeline import run_passes
from trtcompile.perplexity import Window, nll_of_window, window_feeds, windows
from trtcompile import io_names as io

import onnx


def test_windows_score_each_target_once():
    assert windows(10, 4, 4) == [Window(0, 4, 1), Window(4, 8, 5), Window(8, 10, 9)]
    assert windows(10, 4, 2) == [Window(0, 4, 1), Window(2, 6, 4), Window(4, 8, 6),
                                 Window(6, 10, 8)]
    for n, w, s in ((100, 16, 16), (100, 16, 5), (17, 16, 16)):
        scored = [t for win in windows(n, w, s) for t in range(win.score_from, win.end)]
        assert len(scored) == len(set(scored))


def test_window_feeds_give_every_position_logits(exported):
    loaded, path = exported("llama")
    ctx = PassContext(info=loaded.info, inv_freq=loaded.inv_freq, block_size=4)
    model, _ = run_passes(onnx.load(str(path)), PASSES, ctx, log=lambda m: None)
    tokens = torch.randint(0, loaded.info.vocab_size, (37,), generator=torch.Generator().manual_seed(0)).tolist()
    feeds = window_feeds(tokens, 4)
    feeds[io.KV_CACHE] = torch.zeros(loaded.info.num_layers, 2, 12, 4, loaded.info.num_kv_heads,
                                     loaded.info.head_dim)
    logits = OnnxExecutor(model).run(feeds)["logits"]
    with torch.no_grad():
        ref = loaded.model(input_ids=torch.tensor([tokens])).logits[0]
    torch.testing.assert_close(logits, ref, rtol=1e-4, atol=1e-4)
    nll, n = nll_of_window(logits, tokens, Window(0, 37, 1))
    want = torch.nn.functional.cross_entropy(ref[:-1], torch.tensor(tokens[1:]), reduction="sum")
    assert n == 36 and abs(nll - want.item()) < 1e-3


def test_logit_rows_graph_matches_one_token_sequences(exported):
    from trtcompile.perplexity import LOGIT_ROWS, _one_sequence_feeds, with_logit_rows

    loaded, path = exported("llama")
    ctx = PassContext(info=loaded.info, inv_freq=loaded.inv_freq, block_size=4)
    model, _ = run_passes(onnx.load(str(path)), PASSES, ctx, log=lambda m: None)
    tokens = list(range(3, 40))
    kv = lambda: torch.zeros(loaded.info.num_layers, 2, 12, 4, loaded.info.num_kv_heads,  # noqa: E731
                             loaded.info.head_dim)
    per_seq = OnnxExecutor(model).run({**window_feeds(tokens, 4), io.KV_CACHE: kv()})["logits"]
    rows = with_logit_rows(model)
    assert any(i.name == LOGIT_ROWS for i in rows.graph.input)
    one = OnnxExecutor(rows).run({**_one_sequence_feeds(tokens, 4), io.KV_CACHE: kv()})["logits"]
    torch.testing.assert_close(one, per_seq, rtol=1e-5, atol=1e-5)
