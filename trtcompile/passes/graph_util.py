"""Small onnx-graphsurgeon helpers shared by the passes."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from trtcompile.ops.spec import ALL_OPS, DOMAIN


def producer(var: gs.Variable) -> gs.Node | None:
    return var.inputs[0] if len(var.inputs) == 1 else None


def is_op(node: gs.Node | None, op: str) -> bool:
    return node is not None and node.op == op


def const_value(t) -> np.ndarray | None:
    return t.values if isinstance(t, gs.Constant) else None


_TORCH_FLOATS = (np.float32, np.float16)


def _transposed(a: np.ndarray) -> bool:
    """A 2-D transposed view of a C-contiguous array (how the exporter hands MatMul weights)."""
    return a.ndim == 2 and a.T.flags.c_contiguous and not a.flags.c_contiguous


def concat_weights(arrays, axis: int) -> np.ndarray:
    """np.concatenate for weights: transposed views are joined as their contiguous originals
    (and returned transposed), float weights with torch's threaded copy (fusing an 8B model's
    projections copies ~13 GB)."""
    if all(_transposed(a) for a in arrays):
        return concat_weights([a.T for a in arrays], 1 - axis).T
    if all(a.dtype in _TORCH_FLOATS for a in arrays):
        import torch
        return torch.cat([torch.from_numpy(a) for a in arrays], dim=axis).contiguous().numpy()
    return np.concatenate(arrays, axis=axis)


def convert_weight(values: np.ndarray, dtype) -> np.ndarray:
    """`values.astype(dtype)` as a C-contiguous array, with torch's threaded copies for fp32 ->
    bf16/fp16 (round to nearest even, as numpy and ml_dtypes); a transposed view is converted
    first and transposed after, in the narrow type (a converting strided copy is ~3x slower)."""
    import torch

    dtype = np.dtype(dtype)
    target = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype.name)
    if values.dtype != np.float32 or target is None:
        return values.astype(dtype, order="C")
    transposed = _transposed(values)
    src = torch.from_numpy(values.T if transposed else values)
    out = torch.empty(src.shape, dtype=target).copy_(src)
    if transposed:
        out = torch.empty(values.shape, dtype=target).copy_(out.t())
    return out.view(torch.int16).numpy().view(dtype)


def last_dim(var: gs.Tensor) -> int | None:
    shape = getattr(var, "shape", None)
    if shape and isinstance(shape[-1], int):
        return shape[-1]
    return None


def new_var(graph: gs.Graph, stem: str, dtype=None, shape=None) -> gs.Variable:
    return gs.Variable(unique_name(graph, stem), dtype=dtype, shape=shape)


def unique_name(graph: gs.Graph, stem: str) -> str:
    """A tensor/node name not yet used in the graph (names are tracked on the graph)."""
    taken = graph.__dict__.get("_trtc_taken")
    if taken is None:
        taken = set(graph.tensors()) | {n.name for n in graph.nodes}
        graph.__dict__["_trtc_taken"] = taken
    name, n = stem, 0
    while name in taken:
        n += 1
        name = f"{stem}_{n}"
    taken.add(name)
    return name


def add_node(graph: gs.Graph, op: str, inputs, outputs, attrs=None, domain: str | None = None,
             name: str | None = None) -> gs.Node:
    node = gs.Node(op=op, name=unique_name(graph, name or f"trtc_{op}"), attrs=attrs or {},
                   inputs=list(inputs), outputs=list(outputs), domain=domain)
    graph.nodes.append(node)
    return node


def plugin_node(graph: gs.Graph, op: str, inputs, outputs, **attrs) -> gs.Node:
    """A trtcompile-domain node with every attribute of its spec (defaults filled in)."""
    spec = ALL_OPS[op]
    full = spec.attr_defaults()
    unknown = set(attrs) - set(full)
    if unknown:
        raise KeyError(f"{op} has no attribute(s) {sorted(unknown)}")
    full.update(attrs)
    return add_node(graph, op, inputs, outputs, full, domain=DOMAIN, name=f"{op}")


def const(graph: gs.Graph, stem: str, values) -> gs.Constant:
    return gs.Constant(unique_name(graph, stem), np.asarray(values))


def reshape(graph: gs.Graph, x: gs.Tensor, shape: list[int], stem: str = "reshape") -> gs.Variable:
    out = new_var(graph, stem, dtype=x.dtype)
    add_node(graph, "Reshape", [x, const(graph, f"{stem}_shape", np.array(shape, np.int64))], [out])
    return out


def transpose(graph: gs.Graph, x: gs.Tensor, perm: list[int], stem: str = "transpose") -> gs.Variable:
    out = new_var(graph, stem, dtype=x.dtype)
    add_node(graph, "Transpose", [x], [out], {"perm": perm})
    return out


def flat_heads(graph: gs.Graph, var: gs.Tensor, heads: int, head_dim: int) -> gs.Tensor:
    """A [1, T, heads*head_dim] view of a [1, heads, T, head_dim] tensor, reusing the
    projection output when `var` is Transpose(Reshape(proj)) as the exporter emits it."""
    node = producer(var)
    if is_op(node, "Transpose") and list(node.attrs.get("perm", [])) == [0, 2, 1, 3]:
        x = node.inputs[0]                                   # [1, T, H, D]
        inner = producer(x)
        if is_op(inner, "Reshape") and last_dim(inner.inputs[0]) == heads * head_dim:
            return inner.inputs[0]
        return reshape(graph, x, [1, -1, heads * head_dim], "heads_flat")
    return reshape(graph, transpose(graph, var, [0, 2, 1, 3]), [1, -1, heads * head_dim], "heads_flat")


def matmul_with_const(var: gs.Tensor):
    """(x, W, bias | None) when var = MatMul(x, W) [+ bias] with constant W (and bias)."""
    node = producer(var)
    bias = None
    if is_op(node, "Add"):
        a, b = node.inputs
        if isinstance(b, gs.Constant) and is_op(producer(a), "MatMul"):
            node, bias = producer(a), b.values
        elif isinstance(a, gs.Constant) and is_op(producer(b), "MatMul"):
            node, bias = producer(b), a.values
        else:
            return None
    if not is_op(node, "MatMul") or not isinstance(node.inputs[1], gs.Constant):
        return None
    w = node.inputs[1].values
    if w.ndim != 2:
        return None
    return node.inputs[0], w, bias


def count_nodes(graph: gs.Graph) -> int:
    return len(graph.nodes)


def numpy_dtype(name: str):
    """numpy dtype (or onnx enum for bfloat16) for graphsurgeon variables."""
    if name == "bfloat16":
        return onnx.TensorProto.BFLOAT16
    if name == "float8_e4m3fn":
        return onnx.TensorProto.FLOAT8E4M3FN
    return np.dtype(name)
