"""Trace a transformers causal LM to ONNX (torch.onnx dynamo exporter, opset 23).

Attention goes through transformers' attention interface into the custom op
`trtcompile::attention`, which the exporter translates into one `trtcompile.CausalAttention`
node per layer (q/k/v after rotary, k/v before GQA repetition). Everything else is
standard ONNX. Graph inputs: input_ids, position_ids (int64 [1, T]); output: logits.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from pathlib import Path

from trtcompile.ops.spec import ATTENTION, DOMAIN, OPSET_VERSION, register_onnx_schemas

ATTN_IMPLEMENTATION = "trtcompile"
EXPORT_INPUTS = ("input_ids", "position_ids")
EXPORT_OUTPUT = "logits"
EXTERNAL_DATA_THRESHOLD = 64 << 20   # bytes of weights above which they go to model.onnx.data


def _attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                       **kwargs):
    import torch

    window = kwargs.get("sliding_window") or getattr(module, "sliding_window", None) or 0
    scale = float(scaling) if scaling is not None else query.shape[-1] ** -0.5
    out = torch.ops.trtcompile.attention(query, key, value, scale, int(window),
                                         int(module.layer_idx))
    return out, None


def register_attention() -> None:
    """Make attn_implementation='trtcompile' available to transformers (idempotent)."""
    import transformers

    import trtcompile.ops.torch_ops  # noqa: F401  (defines torch.ops.trtcompile.*)

    transformers.AttentionInterface.register(ATTN_IMPLEMENTATION, _attention_forward)


def _attention_to_onnx():
    import onnxscript

    opset = onnxscript.values.Opset(DOMAIN, OPSET_VERSION)

    def translate(q, k, v, scale: float, sliding_window: int, layer_idx: int):
        return getattr(opset, ATTENTION.name)(q, k, v, scale=scale, sliding_window=sliding_window,
                                              layer_idx=layer_idx)
    return translate


class _LogitsOnly:
    """Wraps a causal LM as (input_ids, position_ids) -> logits, without a KV cache."""

    def __new__(cls, model):
        import torch

        class Wrapper(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, position_ids):
                return self.inner(input_ids=input_ids, position_ids=position_ids,
                                  use_cache=False).logits

        return Wrapper(model)


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter's own warnings and prints are noise to a user of trtcompile."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "onnx_ir",
                                              "onnx_ir.serde")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_onnx(model, out_path: str | Path, max_tokens: int = 8192, log=print) -> Path:
    """Export `model` to `out_path` (weights as external data when large). Returns the path."""
    import torch

    register_attention()
    register_onnx_schemas()
    previous = model.config._attn_implementation
    model.set_attn_implementation(ATTN_IMPLEMENTATION)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        example = torch.arange(7, dtype=torch.long)[None] % model.config.vocab_size
        tokens = torch.export.Dim("T", min=2, max=max_tokens)
        start = time.perf_counter()
        with _quiet_exporter():
            program = torch.onnx.export(
                _LogitsOnly(model).eval(), (example, torch.arange(7)[None]), dynamo=True, opset_version=23,
            input_names=list(EXPORT_INPUTS), output_names=[EXPORT_OUTPUT],
            dynamic_shapes=({1: tokens}, {1: tokens}), verbose=False,
            custom_translation_table={torch.ops.trtcompile.attention.default: _attention_to_onnx()})
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        program.save(str(out_path), external_data=weight_bytes > EXTERNAL_DATA_THRESHOLD)
        log(f"exported {out_path.name} in {time.perf_counter() - start:.1f} s")
    finally:
        model.set_attn_implementation(previous)
    return out_path
