"""Every CausalAttention becomes a PagedAttention over the runtime's KV pool; the graph
takes the packed-batch inputs of the engine I/O contract and returns last-token logits."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from trtcompile import io_names as io
from trtcompile.ops.spec import DOMAIN
from trtcompile.passes.context import PassContext, PassReport
from trtcompile.passes.graph_util import (add_node, const, flat_heads, is_op, new_var,
                                          numpy_dtype, plugin_node, producer, reshape)

OLD_INPUTS = ("input_ids", "position_ids")


def insert_paged_attention(graph: gs.Graph, ctx: PassContext) -> PassReport:
    report = PassReport("insert_paged_attention")
    attn = sorted((n for n in graph.nodes if n.op == "CausalAttention" and n.domain == DOMAIN),
                  key=lambda n: n.attrs["layer_idx"])
    inputs = {v.name: v for v in graph.inputs}
    logits = next((v for v in graph.outputs if v.name == "logits"), None)
    lm_head = producer(logits) if logits is not None else None
    if not attn or any(name not in inputs for name in OLD_INPUTS) or not is_op(lm_head, "MatMul"):
        report.notes.append("pattern not found (CausalAttention nodes, input_ids/position_ids "
                            "inputs, MatMul producing logits); graph untouched")
        return report
    info = ctx.info
    new = _contract_inputs(ctx)
    _feed_old_input(graph, inputs["input_ids"], new[io.INPUT_IDS])
    _feed_old_input(graph, inputs["position_ids"], new[io.POSITIONS])

    kv = new[io.KV_CACHE]
    for node in attn:
        q, k, v = node.inputs
        out = node.outputs[0]                                # [1, T, Hq, D]
        node.inputs.clear()
        node.outputs.clear()
        hq, hkv, d = info.num_heads, info.num_kv_heads, info.head_dim
        flat = [flat_heads(graph, q, hq, d), flat_heads(graph, k, hkv, d),
                flat_heads(graph, v, hkv, d)]
        y = new_var(graph, f"paged_attn{node.attrs['layer_idx']}_out", dtype=q.dtype,
                    shape=[1, io.DIM_TOKENS, hq * d])
        kv_next = new_var(graph, f"kv_cache_l{node.attrs['layer_idx']}", dtype=kv.dtype,
                          shape=list(kv.shape))
        plugin_node(graph, "PagedAttention",
                    flat + [new[io.POSITIONS], new[io.QUERY_START_LOC], new[io.SEQ_LENS],
                            new[io.BLOCK_TABLES], new[io.SLOT_MAPPING], kv,
                            gs.Variable.empty(), gs.Variable.empty()],
                    [y, kv_next], layer_idx=int(node.attrs["layer_idx"]), num_heads=hq,
                    num_kv_heads=hkv, head_dim=d, scale=float(node.attrs["scale"]),
                    sliding_window=int(node.attrs["sliding_window"]))
        add_node(graph, "Reshape", [y, const(graph, "attn_out_shape", np.array([1, -1, hq, d], np.int64))],
                 [out])
        kv = kv_next
        report.matched += 1

    _last_token_logits(graph, lm_head, logits, new[io.QUERY_START_LOC])
    graph.inputs = [new[s.name] for s in io.engine_inputs(1, 1, 1, 1, "float32")]
    graph.cleanup().toposort()
    report.changed = True
    return report


def _contract_inputs(ctx: PassContext) -> dict[str, gs.Variable]:
    info = ctx.info
    specs = io.engine_inputs(info.num_layers, info.num_kv_heads, info.head_dim, ctx.block_size,
                             ctx.kv_dtype)
    return {s.name: gs.Variable(s.name, dtype=numpy_dtype(s.dtype), shape=list(s.shape))
            for s in specs}


def _feed_old_input(graph: gs.Graph, old: gs.Variable, packed: gs.Variable) -> None:
    """old [1, T] int64 := Unsqueeze(Cast(packed [T] int32, int64), 0)."""
    wide = new_var(graph, f"{packed.name}_i64", dtype=np.int64)
    add_node(graph, "Cast", [packed], [wide], {"to": 7})
    old.name = f"{old.name}_batched"
    add_node(graph, "Unsqueeze", [wide, const(graph, "axes0", np.array([0], np.int64))], [old])


def _last_token_logits(graph: gs.Graph, lm_head: gs.Node, logits: gs.Variable,
                       qsl: gs.Variable) -> None:
    """logits [S, V] float32 = lm_head(hidden[0, qsl[1:] - 1]): only the rows sampled."""
    hidden, weight = lm_head.inputs                          # [1, T, H], [H, V]
    lm_head.outputs.clear()
    ends = new_var(graph, "seq_ends", dtype=np.int32)
    add_node(graph, "Slice", [qsl, const(graph, "one", np.array([1], np.int64)),
                              const(graph, "big", np.array([2**31 - 1], np.int64))], [ends])
    last = new_var(graph, "last_token_index", dtype=np.int32)
    add_node(graph, "Sub", [ends, const(graph, "one_i32", np.array(1, np.int32))], [last])
    rows = new_var(graph, "last_hidden", dtype=hidden.dtype)
    flat = reshape(graph, hidden, [-1, _hidden_size(weight, hidden)], "hidden_2d")
    add_node(graph, "Gather", [flat, last], [rows], {"axis": 0})
    scores = new_var(graph, "logits_model_dtype", dtype=hidden.dtype)
    transposed = producer(weight)
    if is_op(transposed, "Transpose") and isinstance(transposed.inputs[0], gs.Constant):
        # tied embeddings: use the [V, H] table once, transposed by the GEMM
        add_node(graph, "Gemm", [rows, transposed.inputs[0]], [scores], {"transB": 1})
    else:
        add_node(graph, "MatMul", [rows, weight], [scores])
    logits.shape = [io.DIM_SEQS, logits.shape[-1] if logits.shape else None]
    logits.dtype = np.float32
    add_node(graph, "Cast", [scores], [logits], {"to": 1}, name="logits_cast")


def _hidden_size(weight: gs.Tensor, hidden: gs.Tensor) -> int:
    node = producer(weight)
    if isinstance(weight, gs.Constant):
        return int(weight.shape[0])
    if is_op(node, "Transpose") and isinstance(node.inputs[0], gs.Constant):
        return int(node.inputs[0].shape[1])
    return int(hidden.shape[-1])
