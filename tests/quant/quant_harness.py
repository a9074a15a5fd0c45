"""Build the pass pipeline of a tiny model with a quantization mode; compare with fp32."""

from __future__ import annotations

import onnx
import torch

from paged_harness import compare_paged, make_steps
from trtcompile import io_names as io
from trtcompile.config import Config, ModelConfig, QuantConfig
from trtcompile.executor import OnnxExecutor
from trtcompile.passes.context import PassContext
from trtcompile.quant.pipeline import run_pipeline

SEQS_SEED = 3


def config_for(family: str, **quant) -> Config:
    return Config(model=ModelConfig(source=f"tiny-{family}"), quantization=QuantConfig(**quant))


def quantized_model(loaded, path, **quant) -> onnx.ModelProto:
    ctx = PassContext(info=loaded.info, inv_freq=loaded.inv_freq, block_size=4)
    model, _, _ = run_pipeline(onnx.load(str(path)), config_for("llama", **quant), ctx,
                            loaded.tokenizer, log=lambda m: None)
    return model


def error_vs(model: onnx.ModelProto, reference, loaded, seqs, splits) -> float:
    """Max |logits - reference model| / logit range (reference: an HF-like callable module)."""
    ex = OnnxExecutor(model)
    return compare_paged(lambda f: ex.run(f)["logits"], reference, loaded.info, seqs, splits)


def stepped_logits(executor: OnnxExecutor, info, seqs, splits, device="cpu",
                   kv_dtype=torch.float32) -> torch.Tensor:
    """Logits of the sampled rows of make_steps' two steps, run on `device` (CPU result)."""
    kv = torch.zeros(info.num_layers, 2, 64, 4, info.num_kv_heads, info.head_dim, device=device,
                     dtype=kv_dtype)
    out = []
    for feeds, _rows in make_steps(seqs, splits, block_size=4, num_blocks=64):
        feeds = {k: v.to(device) for k, v in feeds.items()}
        feeds[io.KV_CACHE] = kv
        out.append(executor.run(feeds)["logits"].float().cpu())
    return torch.cat(out)
