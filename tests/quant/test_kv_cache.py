"""Quantized KV cache (fp8 / int8): config, the kv_scales constant in the graph, logits against
the same graph over a float32 pool, and the runtime (pool dtype, greedy, prefix sharing) on
tiny Llama artifacts."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import pytest
import torch

from quant.quant_harness import stepped_logits
from trtcompile.build import build, check_supported
from trtcompile.config import BuildConfig, Config, KVCacheConfig, LimitsConfig, ModelConfig
from trtcompile.errors import ConfigError
from trtcompile.executor import OnnxExecutor
from trtcompile.passes.context import PassContext
from trtcompile.quant.kv_cache import POOL_DTYPES, QMAX, pool_dtype
from trtcompile.quant.pipeline import run_pipeline

POOLS = {"fp8": torch.float8_e4m3fn, "int8": torch.int8}
ONNX_TYPES = {"fp8": onnx.TensorProto.FLOAT8E4M3FN, "int8": onnx.TensorProto.INT8}
SEQ_LENS, SPLITS = (5, 23, 9, 40), [4, 10, 9, 1]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRTCOMPILE_CACHE", str(tmp_path / "cache"))


def _config(kv: str, **build) -> Config:
    return Config(model=ModelConfig(source="tiny-llama"),
                  kv_cache=KVCacheConfig(dtype=kv, block_size=4), build=BuildConfig(**build))


def _graph(exported, kv: str):
    loaded, path = exported("llama")
    ctx = PassContext(info=loaded.info, inv_freq=loaded.inv_freq, block_size=4,
                      kv_dtype=pool_dtype(kv, "float32"))
    model, _reports, ctx = run_pipeline(onnx.load(str(path)), _config(kv), ctx, loaded.tokenizer,
                                        log=lambda m: None)
    return loaded, model, ctx


def test_config_accepted_for_torch_refused_for_tensorrt():
    for kv in POOLS:
        check_supported(_config(kv))
        with pytest.raises(ConfigError, match="tensorrt"):
            check_supported(_config(kv, backend="tensorrt"))


@pytest.mark.parametrize("kv", POOLS)
def test_graph_feeds_calibrated_scales_to_every_layer(exported, kv):
    loaded, model, ctx = _graph(exported, kv)
    scales = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer
              if t.name.startswith("kv_scales")}
    assert list(scales) == ["kv_scales"]
    table = scales["kv_scales"]
    assert table.dtype == np.float32 and table.shape == (loaded.info.num_layers, 2)
    np.testing.assert_array_equal(table, ctx.kv_scales)
    assert (table > 0).all() and (table * QMAX[POOL_DTYPES[kv]] < 100).all()  # absmax, not 1s
    nodes = [n for n in model.graph.node if n.op_type == "PagedAttention"]
    assert len(nodes) == loaded.info.num_layers
    assert all(n.input[10] == "kv_scales" for n in nodes)
    pool = next(i for i in model.graph.input if i.name == "kv_cache")
    assert pool.type.tensor_type.elem_type == ONNX_TYPES[kv]


# max |logits - float32 pool| / logit range. Measured 0.0079 (fp8), 0.0030 (int8) on this model
# (argmax equal on every row):
# E4M3 keeps 3 mantissa bits (relative rounding <= 1/16 per element), int8 a uniform step of
# absmax/127 (<= absmax/254); attention averages these errors over keys and heads.
BOUNDS = {"fp8": 0.02, "int8": 0.01}


@pytest.mark.parametrize("kv", POOLS)
def test_logits_close_to_float32_pool(exported, kv):
    loaded, model, _ = _graph(exported, kv)
    _, reference, _ = _graph(exported, "auto")
    gen = torch.Generator().manual_seed(1)
    seqs = [torch.randint(0, loaded.info.vocab_size, (n,), generator=gen).tolist() for n in SEQ_LENS]
    ours = stepped_logits(OnnxExecutor(model), loaded.info, seqs, SPLITS, kv_dtype=POOLS[kv])
    ref = stepped_logits(OnnxExecutor(reference), loaded.info, seqs, SPLITS)
    err = ((ours - ref).abs().max() / (ref.max() - ref.min())).item()
    assert 0 < err <= BOUNDS[kv], f"{kv}: {err:.4f}"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """kv dtype -> a built tiny Llama artifact (torch backend, float32 weights)."""
    root = tmp_path_factory.mktemp("kvq")
    out = {}
    for kv in ("fp8", "int8"):
        cfg = dataclasses.replace(_config(kv), build=BuildConfig(output_dir=str(root / kv)),
                                  limits=LimitsConfig(max_num_seqs=4, max_num_tokens=128,
                                                      max_model_len=256))
        build(cfg, log=lambda m: None)
        out[kv] = root / kv
    return out


def _prompts(vocab: int) -> list[list[int]]:
    gen = torch.Generator().manual_seed(7)
    shared = torch.randint(0, vocab, (21,), generator=gen).tolist()
    return [shared + torch.randint(0, vocab, (n,), generator=gen).tolist() for n in (3, 9, 14)]


@pytest.mark.parametrize("kv", POOLS)
def test_artifact_pool_and_prefix_sharing(artifacts, kv):
    from trtcompile.llm import LLM
    from trtcompile.runtime.sampling_params import SamplingParams

    manifest = json.loads((artifacts[kv] / "manifest.json").read_text())
    assert manifest["kv_cache"]["dtype"] == POOL_DTYPES[kv]
    assert manifest["kv_cache"]["scales"]["origin"].startswith("calibrated")
    params = SamplingParams(max_tokens=6, temperature=0.0, ignore_eos=True)
    cold = LLM(artifacts[kv], device="cpu", num_blocks=64, enable_prefix_caching=False)
    prompts = _prompts(manifest["model"]["vocab_size"])
    assert cold.runner.kv_cache.dtype == POOLS[kv]
    expected = [o.token_ids for o in cold.generate(prompts, params)]
    warm = LLM(artifacts[kv], device="cpu", num_blocks=64)   # 5 shared blocks of 4 tokens
    first = warm.generate(prompts[:1], params)[0].token_ids
    outs = [o.token_ids for o in warm.generate(prompts, params)]
    assert first == expected[0] and outs == expected
    assert warm.engine.stats.prefix_cache_hit_tokens > 0


def test_parallel_samples_copy_quantized_blocks(artifacts):
    """n = 2 greedy samples fork the prompt's blocks; the partly filled last block is copied
    (copy-on-write) in the fp8 pool, and both samples equal the single greedy run."""
    from trtcompile.llm import LLM
    from trtcompile.runtime.sampling_params import SamplingParams

    llm = LLM(artifacts["fp8"], device="cpu", num_blocks=64, enable_prefix_caching=False)
    vocab = json.loads((artifacts["fp8"] / "manifest.json").read_text())["model"]["vocab_size"]
    prompt = _prompts(vocab)[1]                                # 30 tokens: 7 blocks + 2
    single = llm.generate([prompt], SamplingParams(max_tokens=6, temperature=0.0,
                                                   ignore_eos=True))[0].token_ids
    llm.add(prompt, SamplingParams(max_tokens=6, temperature=0.0, ignore_eos=True, n=2))
    tokens: dict[int, list[int]] = {}
    for out in llm.run_until_done():
        tokens.setdefault(out.index, []).extend(out.new_token_ids)
    assert len(tokens) == 2 and all(t == single for t in tokens.values())


def test_quantized_pool_holds_twice_the_blocks_of_bf16():
    from trtcompile.runtime.model_runner import KVPoolSpec

    spec = {d: KVPoolSpec(num_layers=30, num_kv_heads=3, head_dim=64, block_size=16, dtype=d)
            for d in ("bfloat16", "float8_e4m3fn", "int8")}
    assert spec["bfloat16"].bytes_per_block == 2 * spec["float8_e4m3fn"].bytes_per_block
    assert spec["float8_e4m3fn"].bytes_per_block == spec["int8"].bytes_per_block
    assert spec["int8"].allocate(3, torch.device("cpu")).dtype == torch.int8
