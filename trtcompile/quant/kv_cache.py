"""KV cache quantization: the pool dtype of each kv_cache.dtype, and per-layer (k, v) scales
from the absmax of K (after rotary) and V as written to the pool over the calibration text."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx

from trtcompile.config import KVCacheDType

# kv_cache.dtype -> pool dtype name (torch / numpy style, as in the engine I/O spec)
POOL_DTYPES = {KVCacheDType.FP8: "float8_e4m3fn", KVCacheDType.INT8: "int8"}
QMAX = {"float8_e4m3fn": 448.0, "int8": 127.0}
MIN_ABSMAX = 1e-6           # a layer whose K or V is all zero still gets a usable scale


def pool_dtype(kv: KVCacheDType, model_dtype: str) -> str:
    return model_dtype if kv == KVCacheDType.AUTO else POOL_DTYPES[KVCacheDType(kv)]


def is_quantized(pool: str) -> bool:
    return pool in QMAX


def scales_from_absmax(absmax: np.ndarray, pool: str) -> np.ndarray:
    """float32 [L, 2] (k, v) scales: stored = round(x / scale) fits the pool's range."""
    return (np.maximum(absmax, MIN_ABSMAX) / QMAX[pool]).astype(np.float32)


def collect_kv_absmax(graph, tokens, info, block_size: int, log: Callable[[str], None] = print,
                      device: str = "cpu") -> np.ndarray:
    """float32 [L, 2]: absmax of the pool contents (K after rotary, V) per layer, run in a
    float32 pool over the calibration chunks."""
    import torch

    from trtcompile import io_names as io
    from trtcompile.quant.calibrate import run_chunks

    absmax = torch.zeros(info.num_layers, 2, device=device)

    def on_chunk(_out, feeds):
        pool = feeds[io.KV_CACHE].float()                    # [L, 2, N, b, Hkv, D]
        absmax.copy_(torch.maximum(absmax, pool.abs().flatten(2).amax(dim=2)))

    run_chunks(graph, (), tokens, info, block_size, on_chunk, log, device)
    return absmax.cpu().numpy().astype(np.float32)


def calibrate_kv(model, *, model_source: str, seed: int, text: str, tokenizer, info,
                 block_size: int, log: Callable[[str], None] = print, device: str = "auto"
                 ) -> tuple[np.ndarray, bool]:
    """(absmax [L, 2], cache_hit) of the graph `model` (gs.Graph or ModelProto; PagedAttention
    inserted, float32); `device`: quantization.calibration_device."""
    from trtcompile.quant.calibrate import (as_graph, cached, graph_weights, resolve_device,
                                            tokenize)

    graph = as_graph(model)
    tokens = tokenize(text, tokenizer, info.vocab_size)

    def compute() -> dict[str, np.ndarray]:
        where = resolve_device(device, log)
        log(f"calibration (kv cache): {len(tokens)} tokens, {info.num_layers} layers, on {where}")
        return {"kv_absmax": collect_kv_absmax(graph, tokens, info, block_size, log, where)}

    stats, hit = cached(model_source, seed, tokens, "kv_cache", graph_weights(graph),
                        {"kv_absmax"}, compute, log)
    return stats["kv_absmax"], hit
