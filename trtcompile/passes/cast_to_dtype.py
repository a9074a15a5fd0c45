"""Make the compute dtype explicit: weights stored in the target dtype, float casts retargeted
(strongly typed: nothing left for a builder to guess). Logits stay float32, rotary fp32."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from trtcompile.passes.context import PassContext, PassReport
from trtcompile.passes.graph_util import convert_weight

KEEP_FP32_CONSTANTS = ("rope_inv_freq", "kv_scales")
KEEP_FP32_CASTS = ("logits_cast",)
_ONNX_CODE = {"float16": onnx.TensorProto.FLOAT16, "bfloat16": onnx.TensorProto.BFLOAT16}


def _convert(values: np.ndarray, dtype: str) -> np.ndarray:
    """A C-contiguous copy in `dtype` (exported weights may be transposed views)."""
    if dtype == "bfloat16":
        import ml_dtypes
        return convert_weight(values, ml_dtypes.bfloat16)
    return convert_weight(values, np.float16)


def cast_to_dtype(graph: gs.Graph, ctx: PassContext) -> PassReport:
    report = PassReport("cast_to_dtype")
    if ctx.dtype == "float32":
        report.notes.append("float32 graph: nothing to cast")
        return report
    code = _ONNX_CODE[ctx.dtype]
    for tensor in graph.tensors().values():
        if (isinstance(tensor, gs.Constant) and tensor.values.dtype == np.float32
                and not tensor.name.startswith(KEEP_FP32_CONSTANTS)):
            tensor.values = _convert(tensor.values, ctx.dtype)
            report.matched += 1
    for node in graph.nodes:
        if node.op == "Cast" and node.attrs.get("to") == onnx.TensorProto.FLOAT \
                and not node.name.startswith(KEEP_FP32_CASTS):
            node.attrs["to"] = code
            report.matched += 1
    boundary = {id(t) for t in graph.inputs + graph.outputs}
    target = _convert(np.zeros(1, np.float32), ctx.dtype).dtype
    for tensor in graph.tensors().values():
        if isinstance(tensor, gs.Variable) and id(tensor) not in boundary and tensor.dtype == np.float32:
            tensor.dtype = target        # every float activation is now in the compute dtype
    report.changed = True
    report.notes.append(f"compute dtype {ctx.dtype}")
    return report
