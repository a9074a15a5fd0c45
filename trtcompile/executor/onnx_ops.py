"""Standard ONNX ops as torch functions: handler(inputs..., **attributes) -> output(s)."""

from __future__ import annotations

import torch

ONNX_TO_TORCH_DTYPE = {
    1: torch.float32, 2: torch.uint8, 3: torch.int8, 5: torch.int16, 6: torch.int32,
    7: torch.int64, 9: torch.bool, 10: torch.float16, 11: torch.float64, 16: torch.bfloat16,
    17: torch.float8_e4m3fn,
}


def _same_device(a: torch.Tensor, b: torch.Tensor):
    """Small shape tensors live on the CPU; bring them to the other operand's device."""
    if a.device != b.device:
        if a.device.type == "cpu" and a.dim() > 0:
            a = a.to(b.device)
        elif b.device.type == "cpu" and b.dim() > 0:
            b = b.to(a.device)
    return a, b


def _binary(fn):
    def op(a, b):
        a, b = _same_device(a, b)
        return fn(a, b)
    return op


def _ints(t: torch.Tensor) -> list[int]:
    return [int(v) for v in t.tolist()]


def reshape(x, shape, allowzero=0):
    dims = _ints(shape)
    if not allowzero:
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return x.reshape(dims)


def transpose(x, perm=None):
    return x.permute(*(perm if perm is not None else reversed(range(x.dim()))))


def unsqueeze(x, axes):
    out = x
    for a in sorted(a % (x.dim() + len(_ints(axes))) for a in _ints(axes)):
        out = out.unsqueeze(a)
    return out


def squeeze(x, axes=None):
    if axes is None:
        return x.squeeze()
    out = x
    for a in sorted((a % x.dim() for a in _ints(axes)), reverse=True):
        out = out.squeeze(a)
    return out


def gather(data, indices, axis=0):
    data, indices = _same_device(data, indices)
    idx = indices.long()
    idx = torch.where(idx < 0, idx + data.shape[axis], idx)
    out = data.index_select(axis, idx.reshape(-1))
    return out.reshape(*data.shape[:axis], *idx.shape, *data.shape[axis + 1:])


def concat(*xs, axis):
    dev = next((x.device for x in xs if x.device.type != "cpu"), xs[0].device)
    return torch.cat([x.to(dev) for x in xs], dim=axis)


def slice_(x, starts, ends, axes=None, steps=None):
    starts, ends = _ints(starts), _ints(ends)
    axes = _ints(axes) if axes is not None else list(range(len(starts)))
    steps = _ints(steps) if steps is not None else [1] * len(starts)
    index = [slice(None)] * x.dim()
    for s, e, a, st in zip(starts, ends, axes, steps):
        if st != 1:
            raise NotImplementedError("Slice with step != 1")
        n = x.shape[a]
        index[a] = slice(max(min(s, n), -n), max(min(e, n), -n - 1) if e < 0 else min(e, n))
    return x[tuple(index)]


def split(x, split=None, axis=0, num_outputs=None):
    if split is not None:
        return tuple(torch.split(x, _ints(split), dim=axis))
    return tuple(torch.chunk(x, num_outputs, dim=axis))


def cast(x, to, saturate=1, round_mode=None):
    return x.to(ONNX_TO_TORCH_DTYPE[to])


def shape(x, start=0, end=None):
    return torch.tensor(list(x.shape)[start:end], dtype=torch.int64)


def constant(value=None, value_int=None, value_ints=None, value_float=None, value_floats=None):
    if value is not None:
        return value
    if value_int is not None:
        return torch.tensor(value_int, dtype=torch.int64)
    if value_ints is not None:
        return torch.tensor(value_ints, dtype=torch.int64)
    if value_float is not None:
        return torch.tensor(value_float, dtype=torch.float32)
    return torch.tensor(value_floats, dtype=torch.float32)


def gemm(a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0):
    a = a.t() if transA else a
    b = b.t() if transB else b
    y = a @ b
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return y


def rms_normalization(x, scale, axis=-1, epsilon=1e-5, stash_type=1):
    axes = tuple(range(axis % x.dim(), x.dim()))
    xf = x.float() if stash_type == 1 else x
    y = xf * torch.rsqrt(xf.pow(2).mean(dim=axes, keepdim=True) + epsilon)
    return y.to(x.dtype) * scale


def layer_normalization(x, scale, bias=None, axis=-1, epsilon=1e-5, stash_type=1):
    shape_ = x.shape[axis % x.dim():]
    y = torch.nn.functional.layer_norm(x.float(), shape_, scale.float(),
                                       None if bias is None else bias.float(), epsilon)
    return y.to(x.dtype)


def rotary_embedding(x, cos_cache, sin_cache, position_ids=None, interleaved=0, num_heads=0,
                     rotary_embedding_dim=0):
    if interleaved:
        raise NotImplementedError("interleaved RotaryEmbedding")
    if position_ids is not None:
        cos_cache, sin_cache = cos_cache[position_ids.long()], sin_cache[position_ids.long()]
    four_d = x.dim() == 4                               # [B, H, S, D] else [B, S, H*D]
    if not four_d:
        b, s = x.shape[:2]
        x = x.reshape(b, s, num_heads, -1).transpose(1, 2)
    half = cos_cache.shape[-1]
    rot = 2 * half
    cos, sin = cos_cache.unsqueeze(1), sin_cache.unsqueeze(1)   # [B, 1, S, rot/2]
    x1, x2, rest = x[..., :half], x[..., half:rot], x[..., rot:]
    out = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest), dim=-1)
    if not four_d:
        out = out.transpose(1, 2).reshape(b, s, -1)
    return out


def softmax(x, axis=-1):
    return torch.softmax(x.float(), dim=axis).to(x.dtype)


def where(cond, a, b):
    return torch.where(cond, a, b)


def expand(x, shape_):
    return x.expand(*torch.broadcast_shapes(x.shape, tuple(_ints(shape_))))


def range_(start, limit, delta):
    return torch.arange(start.item(), limit.item(), delta.item(), dtype=start.dtype)


def reduce_(fn):
    def op(x, axes=None, keepdims=1, noop_with_empty_axes=0):
        dims = _ints(axes) if axes is not None else list(range(x.dim()))
        return fn(x, dim=dims, keepdim=bool(keepdims))
    return op


def gelu(x, approximate="none"):
    return torch.nn.functional.gelu(x, approximate=approximate)


def _axis_view(scale: torch.Tensor, x: torch.Tensor, axis: int, block_size: int) -> torch.Tensor:
    """A per-tensor, per-axis or blocked Q/DQ scale (or zero point) broadcast against x."""
    if scale.dim() == 0 or scale.numel() == 1 and block_size == 0:
        return scale.reshape(())
    axis %= x.dim()
    if block_size:
        scale = scale.repeat_interleave(block_size, dim=axis).narrow(axis, 0, x.shape[axis])
        return scale
    return scale.reshape([-1 if i == axis else 1 for i in range(x.dim())])


def quantize_linear(x, y_scale, y_zero_point=None, axis=1, block_size=0, output_dtype=0,
                    precision=0, saturate=1):
    """Round-half-to-even, saturate; int8/uint8 or float8e4m3fn by the zero point's type."""
    s = _axis_view(y_scale.float(), x, axis, block_size)
    target = y_zero_point.dtype if y_zero_point is not None else ONNX_TO_TORCH_DTYPE.get(
        output_dtype, torch.uint8)
    zp = 0.0 if y_zero_point is None else _axis_view(y_zero_point.float(), x, axis, block_size)
    y = x.float() / s
    if target.is_floating_point:
        limit = torch.finfo(target).max
        return (y.clamp(-limit, limit) if saturate else y).to(target)
    info = torch.iinfo(target)
    return (torch.round(y) + zp).clamp(info.min, info.max).to(target)


def dequantize_linear(x, x_scale, x_zero_point=None, axis=1, block_size=0, output_dtype=0):
    s = _axis_view(x_scale, x, axis, block_size)
    zp = 0.0 if x_zero_point is None else _axis_view(x_zero_point.float(), x, axis, block_size)
    return ((x.float() - zp) * s.float()).to(x_scale.dtype)


HANDLERS = {
    "Add": _binary(torch.add), "Sub": _binary(torch.sub), "Mul": _binary(torch.mul),
    "Div": _binary(torch.div), "Pow": _binary(torch.pow), "MatMul": _binary(torch.matmul),
    "Equal": _binary(torch.eq), "Less": _binary(torch.lt), "Greater": _binary(torch.gt),
    "LessOrEqual": _binary(torch.le), "GreaterOrEqual": _binary(torch.ge),
    "And": _binary(torch.logical_and), "Or": _binary(torch.logical_or),
    "Max": _binary(torch.maximum), "Min": _binary(torch.minimum),
    "Not": torch.logical_not, "Neg": torch.neg, "Sqrt": torch.sqrt, "Reciprocal": torch.reciprocal,
    "Exp": torch.exp, "Log": torch.log, "Tanh": torch.tanh, "Sigmoid": torch.sigmoid,
    "Cos": torch.cos, "Sin": torch.sin, "Abs": torch.abs, "Erf": torch.erf, "Relu": torch.relu,
    "Identity": lambda x: x, "Reshape": reshape, "Transpose": transpose, "Unsqueeze": unsqueeze,
    "Squeeze": squeeze, "Gather": gather, "Concat": concat, "Slice": slice_, "Split": split,
    "Cast": cast, "Shape": shape, "Constant": constant, "Gemm": gemm,
    "RMSNormalization": rms_normalization, "LayerNormalization": layer_normalization,
    "RotaryEmbedding": rotary_embedding, "Softmax": softmax, "Where": where, "Expand": expand,
    "Range": range_, "ReduceMean": reduce_(torch.mean), "ReduceSum": reduce_(torch.sum),
    "Gelu": gelu, "Silu": torch.nn.functional.silu,
    "Floor": torch.floor, "Ceil": torch.ceil,
    "QuantizeLinear": quantize_linear, "DequantizeLinear": dequantize_linear,
}
