"""Sampler: greedy, temperature, top-k, top-p, seeds, logprobs."""

import torch

from trtcompile.runtime.sampler import Sampler
from trtcompile.runtime.sampling_params import SamplingParams as P


def logits_rows(rows=4, vocab=50, seed=0):
    return torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed)) * 2


def gens(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_greedy_and_degenerate_filters_pick_argmax():
    x = logits_rows()
    argmax = x.argmax(-1).tolist()
    s = Sampler()
    for p in (P(temperature=0), P(top_k=1), P(top_p=1e-6)):
        out = s.sample(x, [p] * 4, gens([1, 2, 3, 4]))
        assert out.token_ids == argmax
    out = s.sample(x, [P(temperature=0)] * 4, [None] * 4)
    assert out.logprobs == torch.log_softmax(x, -1).gather(1, x.argmax(-1)[:, None])[:, 0].tolist()


def test_seeded_rows_do_not_depend_on_the_batch():
    x = logits_rows(rows=3)
    s = Sampler()
    alone = [s.sample(x[i:i + 1], [P(seed=10 + i)], gens([10 + i])).token_ids[0]
             for i in range(3)]
    batched = s.sample(x, [P(seed=10), P(seed=11), P(seed=12)], gens([10, 11, 12])).token_ids
    assert batched == alone
    mixed = s.sample(x, [P(seed=10), P(temperature=0), P(seed=12)], gens([10, 99, 12])).token_ids
    assert mixed[0] == alone[0] and mixed[2] == alone[2] and mixed[1] == int(x[1].argmax())


def test_top_k_and_top_p_restrict_the_support():
    x = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    s = Sampler()
    g = torch.Generator().manual_seed(0)
    seen_k, seen_p, seen_all = set(), set(), set()
    for _ in range(400):
        seen_k.add(s.sample(x, [P(top_k=2)], [g]).token_ids[0])
        seen_p.add(s.sample(x, [P(top_p=0.7)], [g]).token_ids[0])   # keeps 0.5 + 0.3
        seen_all.add(s.sample(x, [P()], [g]).token_ids[0])
    assert seen_k == {0, 1} and seen_p == {0, 1} and seen_all == {0, 1, 2, 3}


def test_temperature_sampling_matches_distribution():
    probs = torch.tensor([0.6, 0.3, 0.1])
    x = torch.log(probs)[None, :].repeat(2000, 1)
    out = Sampler().sample(x, [P(seed=0)] * 2000, gens(range(2000)))
    freq = torch.bincount(torch.tensor(out.token_ids), minlength=3).float() / 2000
    assert torch.allclose(freq, probs, atol=0.04)
    sharp = Sampler().sample(x[:200], [P(temperature=0.05)] * 200, gens(range(200)))
    assert set(sharp.token_ids) == {0}


def test_top_logprobs():
    x = torch.tensor([[0.0, 3.0, 1.0, 2.0]])
    out = Sampler().sample(x, [P(temperature=0, logprobs=2)], [None])
    lp = torch.log_softmax(x, -1)[0]
    assert out.token_ids == [1]
    assert out.top_logprobs[0] == [(1, lp[1].item()), (3, lp[3].item())]


def test_extreme_but_valid_values_do_not_crash():
    from trtcompile.runtime.sampler import Sampler
    from trtcompile.runtime.sampling_params import SamplingParams

    logits = torch.tensor([[1.0, 3.0, 2.0], [0.5, 0.1, 4.0]])
    params = [SamplingParams(temperature=1e-45), SamplingParams(temperature=1.0, top_p=1e-46)]
    gens = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]
    out = Sampler().sample(logits, params, gens)
    assert out.token_ids == [1, 2]        # tiny temperature acts greedy; tiny top_p keeps the top
