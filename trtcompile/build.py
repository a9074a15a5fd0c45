"""`trtcompile build`: load → export → passes → backend → artifact, with a summary."""

from __future__ import annotations

import gc
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from trtcompile import io_names as io
from trtcompile.artifact import MODEL_ONNX, TOKENIZER_DIR, staging_dir, tool_versions, write_manifest
from trtcompile.config import ActivationQuant, Backend, Config, KVCacheDType, QuantMode
from trtcompile.errors import BackendUnavailableError, ConfigError


@dataclass
class BuildResult:
    output_dir: Path
    stage_seconds: dict[str, float] = field(default_factory=dict)
    op_histogram: dict[str, int] = field(default_factory=dict)
    bytes: int = 0


def check_supported(config: Config) -> None:
    """Refuse, before any work, what this version cannot build."""
    mode = config.quantization.mode
    if config.build.backend == Backend.TENSORRT and mode != QuantMode.NONE:
        from trtcompile.quant.modes import check_archs
        check_archs(mode, config.build.gpu_archs)
        if mode in (QuantMode.INT8_WEIGHT_ONLY, QuantMode.INT4_WEIGHT_ONLY):
            raise ConfigError(f"quantization.mode '{mode}' needs the WeightOnlyGemm TensorRT "
                              "plugin, which compiles but has never been run on TensorRT; use "
                              "build.backend: torch")
        if mode in (QuantMode.FP8, QuantMode.INT8_SQ) and \
                config.quantization.activation == ActivationQuant.DYNAMIC:
            raise ConfigError(f"quantization.mode '{mode}' with activation 'dynamic' needs the "
                              "per-token QuantizeFp8/QuantizeInt8 TensorRT plugins, which are not "
                              "built yet; use quantization.activation: static (TensorRT's own "
                              "Q/DQ) or build.backend: torch")
    if config.kv_cache.dtype != KVCacheDType.AUTO and config.build.backend == Backend.TENSORRT:
        raise ConfigError(f"kv_cache.dtype '{config.kv_cache.dtype}' is not enabled for "
                          "build.backend: tensorrt: the PagedAttention plugin accepts an fp8/int8 "
                          "pool and its kv_scales input, but an engine with a quantized pool "
                          "(FP8/INT8 network input, sm_89+ check for fp8) has not been built or "
                          "run yet; use build.backend: torch or kv_cache.dtype: auto")
    if config.build.backend == Backend.TENSORRT:
        from trtcompile.backends.tensorrt._trt import INSTALL_HINT, has_tensorrt

        if not has_tensorrt():
            raise BackendUnavailableError(
                f"backend 'tensorrt' was asked for but TensorRT is not installed; {INSTALL_HINT}; "
                "or set build.backend: torch")


def build(config: Config, dump_passes: Path | None = None,
          log: Callable[[str], None] = print) -> BuildResult:
    check_supported(config)
    from trtcompile.export.onnx_export import export_graph
    from trtcompile.models.loading import load_model
    from trtcompile.passes.context import PassContext
    from trtcompile.passes.graph_io import save_graph
    from trtcompile.quant.kv_cache import pool_dtype
    from trtcompile.quant.pipeline import run_pipeline_on_graph

    out = Path(config.build.output_dir)
    result = BuildResult(output_dir=out)
    dtype = str(config.model.dtype)
    kv_dtype = pool_dtype(config.kv_cache.dtype, dtype)

    def stage(name: str, fn):
        log(f"[{name}] ...")
        start = time.perf_counter()
        value = fn()
        result.stage_seconds[name] = time.perf_counter() - start
        log(f"[{name}] done in {result.stage_seconds[name]:.1f} s")
        return value

    with staging_dir(out) as tmp:
        loaded = stage("load", lambda: load_model(config.model.source, "float32", config.model.seed))
        if config.limits.max_model_len > loaded.info.max_position_embeddings:
            raise ConfigError(f"limits.max_model_len {config.limits.max_model_len} exceeds the "
                              f"model's limit of {loaded.info.max_position_embeddings} positions")
        graph = stage("export", lambda: export_graph(
            loaded.model, max_tokens=config.build.export_max_tokens, log=log))
        loaded.model = None   # the graph's weights keep the tensors they view alive, no more
        gc.collect()
        ctx = PassContext(info=loaded.info, inv_freq=loaded.inv_freq, dtype=dtype,
                          block_size=config.kv_cache.block_size, kv_dtype=kv_dtype)
        before = Counter(n.op for n in graph.nodes)
        reports, ctx = stage("passes", lambda: run_pipeline_on_graph(
            graph, config, ctx, loaded.tokenizer, dump_passes, log=log))
        after = Counter(n.op for n in graph.nodes)
        result.op_histogram = dict(after)
        stage("save", lambda: save_graph(graph, tmp / MODEL_ONNX))
        del graph
        if loaded.tokenizer is not None:
            loaded.tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
        engines = {}
        if config.build.backend == Backend.TENSORRT:
            engines = stage("engine", lambda: _build_tensorrt(config, tmp, log))
        kv_spec = io.engine_inputs(loaded.info.num_layers, loaded.info.num_kv_heads,
                                   loaded.info.head_dim, config.kv_cache.block_size, kv_dtype)
        write_manifest(tmp, {
            "backend": str(config.build.backend),
            "gpu_archs": list(config.build.gpu_archs) if engines else [],
            "engines": engines,
            "model": {"source": config.model.source, "dtype": dtype, **loaded.info.to_dict()},
            "build_config": config.to_dict(),
            "kv_cache": _kv_manifest(config, kv_dtype, ctx.kv_scales),
            "io": {"inputs": [s.to_dict() for s in kv_spec],
                   "outputs": [s.to_dict() for s in io.engine_outputs(loaded.info.vocab_size)]},
            "passes": [r.summary() for r in reports],
            "op_histogram": {"exported": dict(before), "final": dict(after)},
            "tool_versions": tool_versions(),
        })
        result.bytes = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    return result


def _kv_manifest(config: Config, kv_dtype: str, scales) -> dict:
    """The pool dtype and, for a quantized pool, where its scales came from (and them)."""
    out = {"block_size": config.kv_cache.block_size, "dtype": kv_dtype}
    if scales is not None:
        out["scales"] = {"origin": "calibrated: absmax of K (after rotary) and V per layer / qmax",
                         "calibration_data": config.quantization.calibration_data or "builtin sample",
                         "values": [[float(k), float(v)] for k, v in scales]}
    return out


def _build_tensorrt(config: Config, staging: Path, log) -> dict:
    """One engine per requested architecture (delegates to the TensorRT backend)."""
    from trtcompile.backends.tensorrt.builder import build_engines_for_config

    return build_engines_for_config(config, staging, log=log)
