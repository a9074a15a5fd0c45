"""Host side of the quantized CUDA kernels: argument checks and the per-weight packing of group
scales into (scale, -zero * scale) pairs, cached so that it runs once, before graph capture."""

from __future__ import annotations

import torch

from trtcompile.errors import UnsupportedOpError

QUANT_TARGETS = {"int8": torch.int8, "fp8": torch.float8_e4m3fn}
_CACHE_LIMIT = 4096           # packed weights kept; a model holds a few hundred


def check_weight_only_args(k: int, qweight: torch.Tensor, scales: torch.Tensor,
                           zeros: torch.Tensor | None, bits: int, group_size: int) -> int:
    """Validates the WeightOnlyGemm operands for the CUDA kernels (layouts of ops/spec.py);
    returns N. UnsupportedOpError names what was expected and what was found."""
    def fail(what: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"weight_only_gemm (CUDA): {what}")

    if bits not in (4, 8):
        raise fail(f"bits must be 8 or 4, got {bits}")
    if k <= 0 or k % 8:
        raise fail(f"K must be a positive multiple of 8, got {k}")
    want = (torch.int8, k) if bits == 8 else (torch.uint8, k // 2)
    if qweight.dim() != 2 or qweight.dtype != want[0] or qweight.shape[1] != want[1]:
        raise fail(f"qweight must be {want[0]} [N, {want[1]}] for bits {bits} and K {k}, got "
                   f"{qweight.dtype} {list(qweight.shape)}")
    n = qweight.shape[0]
    if group_size < 0 or (group_size and (group_size % 16 or k % group_size)):
        raise fail(f"group_size must be 0 or a multiple of 16 dividing K={k}, got {group_size}")
    scale_shape = [n, k // group_size] if group_size else [n]
    if list(scales.shape) != scale_shape:
        raise fail(f"scales must be {scale_shape}, got {list(scales.shape)}")
    if zeros is not None and (not group_size or list(zeros.shape) != scale_shape):
        raise fail(f"zeros need group_size > 0 and shape {scale_shape}, got group_size "
                   f"{group_size} and {list(zeros.shape)}")
    return n


def pack_group_pairs(scales: torch.Tensor, zeros: torch.Tensor | None,
                     dtype: torch.dtype) -> torch.Tensor:
    """scales, zeros float32 [N, G] -> [N, G, 2] in dtype: (scale, -zero * scale), so that
    w = q * scale + min is one fused multiply-add on the codes q."""
    s = scales.float()
    m = -zeros.float() * s if zeros is not None else torch.zeros_like(s)
    return torch.stack((s, m), dim=-1).to(dtype).contiguous()


def _version(t: torch.Tensor) -> int:
    try:
        return t._version
    except RuntimeError:          # inference tensors have no version counter
        return 0


class GroupPairCache:
    """Packed pairs per (scales, zeros, dtype). Entries hold their source tensors, so a key's
    data_ptr cannot be reused by another tensor while it is cached; the version counter
    catches in-place updates."""

    def __init__(self, limit: int = _CACHE_LIMIT):
        self._entries: dict[tuple, tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]] = {}
        self._limit = limit

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, scales: torch.Tensor, zeros: torch.Tensor | None,
            dtype: torch.dtype) -> torch.Tensor:
        key = (scales.data_ptr(), _version(scales), tuple(scales.shape), scales.device,
               zeros.data_ptr() if zeros is not None else 0,
               _version(zeros) if zeros is not None else 0, dtype)
        hit = self._entries.get(key)
        if hit is not None:
            return hit[2]
        if len(self._entries) >= self._limit:
            self._entries.pop(next(iter(self._entries)))
        packed = pack_group_pairs(scales, zeros, dtype)
        self._entries[key] = (scales, zeros, packed)
        return packed
