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


def _type_custom_outputs(graph) -> None:
    """A trtcompile-domain node's outputs take its first input's element type: the exporter
    cannot infer types of custom ops, and the serializer warns about (and drops) the shape of
    every untyped value, once per layer."""
    for node in graph:
        if node.domain == DOMAIN and node.inputs and node.inputs[0] is not None:
            for out in node.outputs:
                if out.type is None:
                    out.dtype = node.inputs[0].dtype


@contextlib.contextmanager
def _traced(model, max_tokens: int):
    """The torch.onnx program of `model` (attention as trtcompile.CausalAttention)."""
    import torch

    register_attention()
    register_onnx_schemas()
    previous = model.config._attn_implementation
    model.set_attn_implementation(ATTN_IMPLEMENTATION)
    try:
        example = torch.arange(7, dtype=torch.long)[None] % model.config.vocab_size
        tokens = torch.export.Dim("T", min=2, max=max_tokens)
        with _quiet_exporter():
            program = torch.onnx.export(
                _LogitsOnly(model).eval(), (example, torch.arange(7)[None]), dynamo=True, opset_version=23,
                input_names=list(EXPORT_INPUTS), output_names=[EXPORT_OUTPUT],
                dynamic_shapes=({1: tokens}, {1: tokens}), verbose=False,
                custom_translation_table={torch.ops.trtcompile.attention.default: _attention_to_onnx()})
        _type_custom_outputs(program.model.graph)
        yield program
    finally:
        model.set_attn_implementation(previous)


def export_onnx(model, out_path: str | Path, max_tokens: int = 8192, log=print) -> Path:
    """Export `model` to `out_path` (weights as external data when large). Returns the path."""
    from trtcompile.passes.graph_io import EXTERNAL_ABOVE

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with _traced(model, max_tokens) as program:
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        program.save(str(out_path), external_data=weight_bytes > EXTERNAL_ABOVE)
    log(f"exported {out_path.name} in {time.perf_counter() - start:.1f} s")
    return out_path


def export_graph(model, max_tokens: int = 8192, log=print):
    """The exported graph as a gs.Graph whose weights are numpy views of the model's tensors:
    nothing is serialized, so an 8B model costs no more than its graph. The model must stay
    unchanged while the graph uses its weights."""
    import onnx_graphsurgeon as gs

    from trtcompile.passes.graph_io import attach_weights

    start = time.perf_counter()
    with _traced(model, max_tokens) as program:
        initializers = program.model.graph.initializers
        weights = {name: value.const_value.numpy() for name, value in initializers.items()
                   if value.const_value is not None}
        initializers.clear()
        proto = program.model_proto
    graph = gs.import_onnx(proto)
    attached = attach_weights(graph, weights)
    names = {t.name for t in graph.inputs}
    undefined = [t.name for t in graph.tensors().values() if isinstance(t, gs.Variable)
                 and t.name and not t.inputs and t.name not in names]
    if undefined:
        raise RuntimeError(f"exported graph reads undefined tensors: {undefined[:5]}")
    log(f"exported the graph ({len(graph.nodes)} nodes, {attached} weights) in "
        f"{time.perf_counter() - start:.1f} s")
    return graph
