"""The build's pass pipeline with quantization: passes before the quant passes, calibration
on that graph when the mode needs it, then the quant passes; for a quantized KV cache, KV
calibration on the graph as it stands before quantize_kv_cache; then the rest."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import onnx

from trtcompile.config import Config, QuantMode
from trtcompile.quant.kv_cache import is_quantized, scales_from_absmax
from trtcompile.quant.modes import (KV_CACHE_PASS, QuantPlan, flags_of, pipeline_for,
                                    quant_passes)


def plan_for(config: Config) -> QuantPlan | None:
    q = config.quantization
    if q.mode == QuantMode.NONE:
        return None
    return QuantPlan(mode=q.mode, flags=flags_of(q.mode), group_size=q.group_size,
                     activation=str(q.activation), smoothquant_alpha=q.smoothquant_alpha)


def _calibrate_gemms(model, config: Config, ctx, tokenizer, log):
    from trtcompile.quant.calibrate import calibrate, calibration_text

    stats, _hit = calibrate(model, model_source=config.model.source, seed=config.model.seed,
                            mode=str(ctx.quant.mode), text=calibration_text(
                                config.quantization.calibration_data),
                            tokenizer=tokenizer, info=ctx.info, block_size=ctx.block_size, log=log,
                            device=str(config.quantization.calibration_device))
    return dataclasses.replace(ctx, quant=dataclasses.replace(ctx.quant, act_absmax=stats))


def _calibrate_kv(model, config: Config, ctx, tokenizer, log):
    from trtcompile.quant.calibrate import calibration_text
    from trtcompile.quant.kv_cache import calibrate_kv

    absmax, _hit = calibrate_kv(model, model_source=config.model.source, seed=config.model.seed,
                                text=calibration_text(config.quantization.calibration_data),
                                tokenizer=tokenizer, info=ctx.info, block_size=ctx.block_size,
                                log=log, device=str(config.quantization.calibration_device))
    return dataclasses.replace(ctx, kv_scales=scales_from_absmax(absmax, ctx.kv_dtype))


def run_pipeline_on_graph(graph, config: Config, ctx, tokenizer=None,
                          dump_dir: Path | None = None, log: Callable[[str], None] = print):
    """-> (reports, ctx): config.build.passes with the quant passes inserted, run on `graph` in
    place, and the context the last passes saw (its kv_scales, when calibrated)."""
    from trtcompile.passes.pipeline import run_passes_on_graph

    plan = plan_for(config)
    flags = plan.flags if plan else flags_of(QuantMode.NONE)
    kv_quantized = is_quantized(ctx.kv_dtype)
    names = pipeline_for(config.build.passes, flags, kv_quantized)
    if plan is not None:
        ctx = dataclasses.replace(ctx, quant=plan)
    # (first pass that needs the statistics, what computes them into the context)
    points = []
    if plan is not None and plan.needs_calibration:
        points.append((quant_passes(plan.flags)[0], _calibrate_gemms))
    if kv_quantized:
        points.append((KV_CACHE_PASS, _calibrate_kv))
    reports, start, dump = [], 0, dump_dir
    for name, calibrate in points:
        at = names.index(name)
        reports += run_passes_on_graph(graph, names[start:at], ctx, dump, log=log)
        ctx = calibrate(graph, config, ctx, tokenizer, log)
        start = at
        dump = None if dump_dir is None else Path(dump_dir) / f"before_{name}"
    reports += run_passes_on_graph(graph, names[start:], ctx, dump, log=log)
    return reports, ctx


def run_pipeline(model: onnx.ModelProto, config: Config, ctx, tokenizer=None,
                 dump_dir: Path | None = None, log: Callable[[str], None] = print):
    """-> (model, reports, ctx): run_pipeline_on_graph on a ModelProto."""
    import onnx_graphsurgeon as gs

    from trtcompile.passes.graph_io import to_model

    graph = gs.import_onnx(model)
    reports, ctx = run_pipeline_on_graph(graph, config, ctx, tokenizer, dump_dir, log)
    return to_model(graph), reports, ctx
