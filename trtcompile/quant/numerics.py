"""Weight quantization and scale arithmetic on numpy arrays (what the passes write into the
graph). Weights are MatMul right operands W [K, N]: K input channels, N output channels."""

from __future__ import annotations

import numpy as np

INT8_MAX = 127.0
INT4_MAX = 7.0            # symmetric: codes -7..7 (-8 is never produced)
FP8_E4M3_MAX = 448.0
_TINY = np.float32(1e-12)


def _safe(scale: np.ndarray) -> np.ndarray:
    return np.where(scale > 0, scale, np.float32(1.0)).astype(np.float32)


def int8_per_channel(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """W [K, N] -> (q int8 [N, K], scales float32 [N]); W ~ (q * scales[:, None]).T"""
    wt = w.astype(np.float32).T                                     # [N, K]
    scales = _safe(np.abs(wt).max(axis=1) / np.float32(INT8_MAX))
    q = np.clip(np.rint(wt / scales[:, None]), -INT8_MAX, INT8_MAX).astype(np.int8)
    return q, scales


def int4_groupwise(w: np.ndarray, group_size: int) -> tuple[np.ndarray, np.ndarray]:
    """W [K, N] -> (packed uint8 [N, K/2], scales float32 [N, K/group_size])."""
    k, n = w.shape
    if k % group_size:
        raise ValueError(f"K={k} is not a multiple of group_size={group_size}")
    groups = w.astype(np.float32).T.reshape(n, k // group_size, group_size)
    scales = _safe(np.abs(groups).max(axis=2) / np.float32(INT4_MAX))
    q = np.clip(np.rint(groups / scales[..., None]), -INT4_MAX, INT4_MAX).astype(np.int8)
    return pack_int4(q.reshape(n, k)), scales


def int4_groupwise_asym(w: np.ndarray, group_size: int
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W [K, N] -> (packed uint8 [N, K/2] of codes 0..15, scales, zeros float32 [N, K/g]);
    w = (q - zero) * scale with scale = (max - min) / 15, zero = -min / scale per group
    (a min/max grid: GGUF Q4_1-style weights with 32-wide groups are represented exactly)."""
    k, n = w.shape
    if k % group_size:
        raise ValueError(f"K={k} is not a multiple of group_size={group_size}")
    groups = w.astype(np.float32).T.reshape(n, k // group_size, group_size)
    lo, hi = groups.min(axis=2), groups.max(axis=2)
    scales = _safe((hi - lo) / np.float32(15.0))
    zeros = (-lo / scales).astype(np.float32)
    q = np.clip(np.rint(groups / scales[..., None] + zeros[..., None]), 0, 15).astype(np.int8)
    return pack_int4(q.reshape(n, k)), scales, zeros


def pack_int4(q: np.ndarray) -> np.ndarray:
    """int8 codes in [-8, 7], [.., K] (K even) -> uint8 [.., K/2]: low nibble = even k."""
    nib = (q.astype(np.int16) & 0xF).astype(np.uint8)
    return (nib[..., 0::2] | (nib[..., 1::2] << 4)).astype(np.uint8)


def unpack_int4(packed: np.ndarray) -> np.ndarray:
    """Inverse of pack_int4: uint8 [.., K/2] -> int8 [.., K] (sign-extended nibbles)."""
    lo = (packed & 0xF).astype(np.int8)
    hi = (packed >> 4).astype(np.int8)
    out = np.stack([lo, hi], axis=-1).reshape(*packed.shape[:-1], packed.shape[-1] * 2)
    return np.where(out > 7, out - 16, out).astype(np.int8)


def fp8_per_channel(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """W [K, N] -> (q float8_e4m3fn [K, N], scales float32 [N]); W ~ q * scales.
    Computed with torch (threaded; rounds to nearest even as ml_dtypes does): an 8B model's
    weights take seconds, not minutes."""
    import ml_dtypes
    import torch

    wt = torch.from_numpy(np.asarray(w, dtype=np.float32))
    scales = _safe((wt.abs().amax(dim=0) / FP8_E4M3_MAX).numpy())
    q = (wt / torch.from_numpy(scales)).clamp_(-FP8_E4M3_MAX, FP8_E4M3_MAX)
    q = q.to(torch.float8_e4m3fn).contiguous()
    return q.view(torch.uint8).numpy().view(ml_dtypes.float8_e4m3fn), scales


def int8_per_output_column(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """W [K, N] -> (q int8 [K, N], scales float32 [N]) for DequantizeLinear(axis=1)."""
    q, scales = int8_per_channel(w)
    return np.ascontiguousarray(q.T), scales


def smoothing_factors(act_absmax: np.ndarray, w: np.ndarray, alpha: float) -> np.ndarray:
    """SmoothQuant s_k = max|X_k|^alpha / max_n|W_kn|^(1-alpha), [K]; X/s and s*W keep X@W."""
    a = np.maximum(act_absmax.astype(np.float32), _TINY)
    b = np.maximum(np.abs(w.astype(np.float32)).max(axis=1), _TINY)
    s = np.power(a, alpha) / np.power(b, 1.0 - alpha)
    return np.clip(s, 1e-5, 1e5).astype(np.float32)


def activation_scale(absmax: float, qmax: float) -> np.float32:
    return np.float32(absmax / qmax) if absmax > 0 else np.float32(1.0)
