"""Plain-torch references of the quantized trtcompile ops (CPU path and oracle): dequantize,
then compute in float32, so the numbers are those of the quantized arithmetic."""

from __future__ import annotations

import torch

FP8_E4M3_MAX = 448.0


def unpack_int4(packed: torch.Tensor, signed: bool = True) -> torch.Tensor:
    """uint8 [.., K/2] -> [.., K]; low nibble = even k; two's complement nibbles (int8) or
    unsigned 0..15 (int16)."""
    p = packed.to(torch.int16)
    out = torch.stack((p & 0xF, p >> 4), dim=-1).reshape(*packed.shape[:-1], -1)
    return torch.where(out > 7, out - 16, out).to(torch.int8) if signed else out


def dequantize_weight(qweight: torch.Tensor, scales: torch.Tensor, bits: int,
                      group_size: int, zeros: torch.Tensor | None = None) -> torch.Tensor:
    """-> W float32 [K, N] from qweight [N, K] int8 (bits 8) or [N, K/2] uint8 (bits 4)."""
    q = unpack_int4(qweight, signed=zeros is None) if bits == 4 else qweight
    q = q.float()                                                    # [N, K]
    if group_size > 0:
        n, k = q.shape
        g = q.reshape(n, k // group_size, group_size)
        if zeros is not None:
            g = g - zeros.float()[..., None]
        return (g * scales.float()[..., None]).reshape(n, k).t()
    return (q * scales.float()[:, None]).t()


def weight_only_gemm(x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor,
                     zeros: torch.Tensor | None, bits: int, group_size: int) -> torch.Tensor:
    """y = x @ dequant(W); x [.., K] -> [.., N] in x's dtype."""
    w = dequantize_weight(qweight, scales, bits, group_size, zeros)
    return (x.float() @ w).to(x.dtype)


def quantize_per_token(x: torch.Tensor, target: str, float_scale: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """x [.., K] -> (q int8 | float8_e4m3fn [.., K], scale [.., 1] in x's dtype, widened to
    float32 with float_scale); x ~ q * scale."""
    xf = x.float()
    qmax = 127.0 if target == "int8" else FP8_E4M3_MAX
    absmax = xf.abs().amax(dim=-1, keepdim=True)
    # a tensor divisor: torch on CUDA multiplies by the reciprocal of a Python number instead
    scale = torch.where(absmax > 0, absmax / torch.full_like(absmax, qmax), torch.ones_like(absmax))
    y = xf / scale
    scale_out = scale.to(x.dtype)
    if float_scale:
        scale_out = scale_out.float()
    if target == "int8":
        return y.round().clamp(-127, 127).to(torch.int8), scale_out
    return y.clamp(-FP8_E4M3_MAX, FP8_E4M3_MAX).to(torch.float8_e4m3fn), scale_out


def rms_norm_quantize(x, weight, residual, epsilon: float, target: str):
    """RMSNorm, then per-token quantization of its output (the fused kernel's oracle):
    -> (codes, scale float32 [.., 1] = the model-dtype scale widened, residual_out | None)."""
    from trtcompile.ops import reference

    y, res = reference.rms_norm(x, weight, residual, epsilon=epsilon)
    q, scale = quantize_per_token(y, target, float_scale=True)
    return q, scale, res


def silu_mul_quantize(x: torch.Tensor, target: str) -> tuple[torch.Tensor, torch.Tensor]:
    """SiluMul, then per-token quantization of its output: -> (codes, scale float32 [.., 1])."""
    from trtcompile.ops import reference

    return quantize_per_token(reference.silu_mul(x), target, float_scale=True)
