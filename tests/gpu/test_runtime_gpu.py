"""The GPU torch backend end to end: greedy outputs on CUDA (kernels + CUDA graphs) equal the
CPU runtime's (reference ops) on the same fp32 artifact; bf16 agreement with HF bf16."""

from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SHAPE = dict(vocab_size=2048, hidden_size=256, intermediate_size=512, num_hidden_layers=3,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)


def _artifact(tmp: Path, dtype: str, *overrides: str) -> tuple[Path, Path]:
    from transformers import LlamaConfig, LlamaForCausalLM

    from trtcompile.build import build
    from trtcompile.config import load_config

    hf = tmp / "hf"
    if not hf.exists():
        torch.manual_seed(0)
        LlamaForCausalLM(LlamaConfig(**SHAPE)).save_pretrained(hf)
    out = tmp / f"artifact-{dtype}"
    build(load_config(None, [f"model.source={hf}", f"model.dtype={dtype}",
                             f"build.output_dir={out}", "limits.max_num_seqs=8",
                             "limits.max_num_tokens=128", "limits.max_model_len=512", *overrides]),
          log=lambda m: None)
    return hf, out


def _prompts():
    gen = torch.Generator().manual_seed(3)
    return [torch.randint(0, SHAPE["vocab_size"], (n,), generator=gen).tolist()
            for n in (1, 5, 17, 64, 100, 150)]


@pytest.mark.parametrize("first_width", [None, 4], ids=["one table width", "widths 4, 16, 32"])
def test_gpu_greedy_equals_cpu_runtime_fp32(tmp_path_factory, monkeypatch, first_width):
    """first_width 4: decode graphs at block-table widths 4, 16 and 32 (the prompts' tables
    grow from 1 to 11 blocks of 16), each planned by the kernels for its width."""
    from trtcompile.llm import LLM
    from trtcompile.runtime import cuda_graphs
    from trtcompile.runtime.sampling_params import SamplingParams

    if first_width is not None:
        monkeypatch.setattr(cuda_graphs, "FIRST_WIDTH", first_width)
    _, art = _artifact(tmp_path_factory.mktemp("gpu_rt"), "float32")
    params = SamplingParams(max_tokens=24, temperature=0.0, ignore_eos=True)
    cpu = LLM(art, device="cpu", num_blocks=256, max_num_tokens=64)
    lines = []
    gpu = LLM(art, device="cuda", num_blocks=256, max_num_tokens=64, log=lines.append)
    expect = [o.token_ids for o in cpu.generate(_prompts(), params)]
    got = [o.token_ids for o in gpu.generate(_prompts(), params)]
    assert gpu.runner.graphs is not None and gpu.runner.graphs.graphs
    assert gpu.runner.graphs.widths == ([32] if first_width is None else [4, 16, 32])
    widths = len(gpu.runner.graphs.widths)
    assert any(f"captured {4 * widths} decode CUDA graphs (4 batch sizes x {widths} block-table "
               "widths)" in line for line in lines), lines
    assert got == expect


def test_gpu_bf16_agreement_with_hf_bf16(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    from trtcompile.llm import LLM
    from trtcompile.runtime.sampling_params import SamplingParams

    hf_dir, art = _artifact(tmp_path_factory.mktemp("gpu_bf16"), "bfloat16")
    hf = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.bfloat16).cuda().eval()
    params = SamplingParams(max_tokens=16, temperature=0.0, ignore_eos=True)
    ours = [o.token_ids for o in LLM(art, device="cuda", num_blocks=256).generate(_prompts(), params)]
    agree = total = 0
    for p, o in zip(_prompts(), ours):
        with torch.no_grad():
            ref = hf.generate(torch.tensor([p], device="cuda"), max_new_tokens=16, do_sample=False,
                              eos_token_id=None, pad_token_id=0,
                              attention_mask=torch.ones(1, len(p), dtype=torch.long, device="cuda"))
        ref = ref[0, len(p):].tolist()
        # agreement up to the first divergence (bf16 rounding differs between implementations)
        n = next((i for i, (a, b) in enumerate(zip(o, ref)) if a != b), len(ref))
        agree += n
        total += len(ref)
    print(f"bf16 greedy agreement with HF bf16: {agree}/{total} tokens before first divergence")
    assert agree / total >= 0.5


def test_gpu_async_scheduling_equals_serial(tmp_path_factory):
    """The step launched ahead (placeholders fed from the device) changes no token: greedy,
    seeded sampling, logprobs, a stop token that finishes a request mid-flight, waiting
    requests (12 prompts, 8 sequences) and chunked prefill (64-token budget)."""
    from trtcompile.llm import LLM
    from trtcompile.runtime.sampling_params import SamplingParams as P

    _, art = _artifact(tmp_path_factory.mktemp("gpu_async"), "float32")
    prompts = _prompts() * 2
    serial = LLM(art, device="cuda", num_blocks=256, max_num_tokens=64, async_scheduling=False)
    greedy = P(max_tokens=24, temperature=0.0, ignore_eos=True)
    first = serial.generate(prompts, greedy)
    stop = first[2].token_ids[10]                      # stops prompt 2 by its 11th token
    params = [greedy, P(max_tokens=20, seed=7, top_k=50, logprobs=2),
              P(max_tokens=30, temperature=0.0, stop_token_ids=(stop,), ignore_eos=True)] * 4
    expect = serial.generate(prompts, params)
    fast = LLM(art, device="cuda", num_blocks=256, max_num_tokens=64)
    got = fast.generate(prompts, params)
    assert [o.token_ids for o in got] == [o.token_ids for o in expect]
    assert [o.finish_reason for o in got] == [o.finish_reason for o in expect]
    assert "stop" in [o.finish_reason for o in got]
    for g, e in zip(got, expect):
        assert (g.logprobs is None) == (e.logprobs is None)
        if g.logprobs is not None:
            assert torch.allclose(torch.tensor(g.logprobs), torch.tensor(e.logprobs), atol=1e-5)


def test_gpu_weight_only_decode_same_with_early_launches(tmp_path_factory, monkeypatch):
    """int8 weight-only, bf16: the decode GEMVs launched to start while RMSNorm, SiluMul and the
    decode attention kernel still run (the default on sm_90+) give the tokens of plain launches
    (TRTC_WOQ_PDL=0; the graphs are captured when the LLM loads, so each LLM keeps its mode)."""
    from trtcompile.llm import LLM
    from trtcompile.runtime.sampling_params import SamplingParams

    _, art = _artifact(tmp_path_factory.mktemp("gpu_woq"), "bfloat16",
                       "quantization.mode=int8_weight_only")
    params = SamplingParams(max_tokens=24, temperature=0.0, ignore_eos=True)
    early = [o.token_ids for o in LLM(art, device="cuda", num_blocks=256).generate(_prompts(), params)]
    monkeypatch.setenv("TRTC_WOQ_PDL", "0")
    plain = [o.token_ids for o in LLM(art, device="cuda", num_blocks=256).generate(_prompts(), params)]
    assert early == plain
