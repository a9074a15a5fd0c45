"""The runtime on the real SmolLM2 artifact (CPU, fp32): greedy parity with HF generate under
chunked prefill, in-flight joins, preemption and prefix caching."""

import pytest
import torch

from trtcompile.llm import LLM
from trtcompile.runtime.sampling_params import SamplingParams

PROMPT_LENS = (1, 7, 30, 64, 100, 150, 229, 300)
NEW_TOKENS = 32

TEXT = (
    "The history of compilers begins with the first high level languages. Early machines were "
    "programmed by hand, one instruction at a time, and every program was written for a single "
    "machine. Engineers soon noticed that much of this work was mechanical: the same patterns "
    "of loads, stores and jumps appeared again and again. A compiler captures those patterns "
    "once, so that a programmer can state what should be computed and leave the machine to "
    "decide how. Today a language model is compiled in much the same way. Its graph is traced, "
    "simplified and fused, the attention is rewritten to read a paged cache, and the result is "
    "stored so that a server can load it in seconds. Requests arrive at any time, and the "
    "scheduler packs their tokens into each step so that the accelerator is never idle. When "
    "memory runs out, the newest request is paused and recomputed later, which keeps the "
    "others moving. Shared prefixes are computed once and reused, since many prompts begin "
    "with the same instructions. The measure of success is simple: the same answers as the "
    "original model, produced many times faster, with clear errors when something is wrong. "
    "A good tool also explains itself, reports its progress, and never leaves a half written "
    "artifact behind. Engineers who build such tools read the documentation of every library "
    "they use and test each claim they make, because an untested number is only a guess. "
)


@pytest.fixture(scope="module")
def prompts(smollm2_hf):
    ids = smollm2_hf.tokenizer.encode(TEXT * 2)
    assert len(ids) >= max(PROMPT_LENS) + 20
    return [ids[i * 3:i * 3 + n] for i, n in enumerate(PROMPT_LENS)]


@pytest.fixture(scope="module")
def hf_greedy(smollm2_hf, prompts):
    from transformers import GenerationConfig

    cfg = GenerationConfig(max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None,
                           pad_token_id=0)
    outs = []
    with torch.no_grad():
        for p in prompts:
            seq = smollm2_hf.model.generate(torch.tensor([p]), generation_config=cfg,
                                            attention_mask=torch.ones(1, len(p), dtype=torch.long))
            outs.append(seq[0, len(p):].tolist())
    assert all(len(o) == NEW_TOKENS for o in outs)
    return outs


GREEDY = SamplingParams(max_tokens=NEW_TOKENS, temperature=0.0, ignore_eos=True)


def test_greedy_parity_chunked_inflight(smollm2_artifact, prompts, hf_greedy):
    llm = LLM(smollm2_artifact, device="cpu", num_blocks=512, max_num_tokens=64, max_num_seqs=8)
    outs = llm.generate(prompts, GREEDY)
    assert [o.token_ids for o in outs] == hf_greedy
    assert llm.engine.stats.num_preemptions == 0


def test_greedy_parity_with_preemption(smollm2_artifact, prompts, hf_greedy):
    # 70 usable blocks of 16 tokens cannot hold all 8 sequences (~75 blocks at the end)
    llm = LLM(smollm2_artifact, device="cpu", num_blocks=71, max_num_tokens=128, max_num_seqs=8)
    outs = llm.generate(prompts, GREEDY)
    assert llm.engine.stats.num_preemptions > 0
    assert [o.token_ids for o in outs] == hf_greedy


def test_prefix_caching_allocates_only_unshared_blocks(smollm2_artifact, smollm2_hf):
    ids = smollm2_hf.tokenizer.encode(TEXT * 2)
    prefix = ids[:200]                                   # 12 full blocks of 16 + 8 tokens
    a, b = prefix + ids[300:335], prefix + ids[400:420]
    params = SamplingParams(max_tokens=8, temperature=0.0, ignore_eos=True)

    cold = LLM(smollm2_artifact, device="cpu", num_blocks=256, enable_prefix_caching=False)
    expected = [o.token_ids for o in cold.generate([a, b], params)]

    llm = LLM(smollm2_artifact, device="cpu", num_blocks=256, max_num_tokens=512)
    kv = llm.engine.scheduler.kv
    tokens = {"first": [], "second": []}
    llm.add(a, params, request_id="first")
    for out in llm.engine.step():                        # prefills "first" (it keeps its blocks)
        tokens[out.request_id] += out.new_token_ids
    free_before = kv.num_free_blocks
    llm.add(b, params, request_id="second")
    for out in llm.engine.step():                        # prefills "second", decodes "first"
        tokens[out.request_id] += out.new_token_ids
    # "second" holds 220 tokens = 14 blocks, 12 of them shared with "first";
    # "first" (235 prompt tokens + 1) stays within its 15th block
    assert free_before - kv.num_free_blocks == 14 - 12
    for out in llm.run_until_done():
        tokens[out.request_id] += out.new_token_ids
    assert [tokens["first"], tokens["second"]] == expected


@pytest.mark.parametrize("text,max_tokens", [("", None), (TEXT, 1)])
def test_perplexity_refuses_too_few_tokens(smollm2_artifact, text, max_tokens):
    """Fewer than two tokens leave nothing to score: a clear error (max_tokens < 2 before the
    artifact loads), not a division by zero."""
    from trtcompile.errors import RequestError
    from trtcompile.perplexity import perplexity

    with pytest.raises(RequestError, match="at least 2|max_tokens must be >= 2"):
        perplexity(smollm2_artifact, text, max_tokens=max_tokens, window=64, stride=64,
                   device="cpu", log=lambda m: None)
