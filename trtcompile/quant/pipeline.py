"""The build's pass pipeline with quantization: passes before the quant passes, calibration
on that graph when the mode needs it, then the quant passes and the rest."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import onnx

from trtcompile.config import Config, QuantMode
from trtcompile.quant.modes import QuantPlan, flags_of, pipeline_for, quant_passes


def plan_for(config: Config) -> QuantPlan | None:
    q = config.quantization
    if q.mode == QuantMode.NONE:
        return None
    return QuantPlan(mode=q.mode, flags=flags_of(q.mode), group_size=q.group_size,
                     activation=str(q.activation), smoothquant_alpha=q.smoothquant_alpha)


def run_pipeline(model: onnx.ModelProto, config: Config, ctx, tokenizer=None,
                 dump_dir: Path | None = None, log: Callable[[str], None] = print):
    """-> (model, reports): config.build.passes with the mode's quant passes inserted."""
    from trtcompile.passes.pipeline import run_passes

    plan = plan_for(config)
    names = pipeline_for(config.build.passes, plan.flags if plan else flags_of(QuantMode.NONE))
    if plan is None:
        return run_passes(model, names, ctx, dump_dir, log=log)
    ctx = dataclasses.replace(ctx, quant=plan)
    if not plan.needs_calibration:
        return run_passes(model, names, ctx, dump_dir, log=log)
    from trtcompile.quant.calibrate import calibrate, calibration_text

    first = names.index(quant_passes(plan.flags)[0])
    model, head = run_passes(model, names[:first], ctx, dump_dir, log=log)
    stats, _hit = calibrate(model, model_source=config.model.source, seed=config.model.seed,
                            mode=str(plan.mode), text=calibration_text(
                                config.quantization.calibration_data),
                            tokenizer=tokenizer, info=ctx.info, block_size=ctx.block_size, log=log)
    ctx = dataclasses.replace(ctx, quant=dataclasses.replace(plan, act_absmax=stats))
    tail_dump = None if dump_dir is None else Path(dump_dir) / "after_calibration"
    model, tail = run_passes(model, names[first:], ctx, tail_dump, log=log)
    return model, head + tail
