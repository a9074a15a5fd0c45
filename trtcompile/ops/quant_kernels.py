"""Host side of the quantized CUDA kernels: argument checks, the per-weight packing of group
scales into (scale, -zero * scale) pairs and the repacking of weight codes for the Hopper
prefill kernel, each cached so that it runs once per weight, before graph capture."""

from __future__ import annotations

import functools
from collections.abc import Callable

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


def _key(t: torch.Tensor | None) -> tuple:
    if t is None:
        return (None,)
    return (t.data_ptr(), _version(t), tuple(t.shape), t.stride(), t.dtype, t.device)


class DerivedCache:
    """Tensors derived once from weight tensors (packed, converted), per (sources, tag).
    Entries hold their source tensors, so a key's data_ptr cannot be reused by another tensor
    while it is cached; the version counter catches in-place updates."""

    def __init__(self, limit: int = _CACHE_LIMIT):
        self._entries: dict[tuple, tuple[tuple, torch.Tensor]] = {}
        self._limit = limit

    def __len__(self) -> int:
        return len(self._entries)

    def derive(self, sources: tuple[torch.Tensor | None, ...], tag,
               make: Callable[[], torch.Tensor]) -> torch.Tensor:
        key = tuple(_key(t) for t in sources) + (tag,)
        hit = self._entries.get(key)
        if hit is not None:
            return hit[1]
        if len(self._entries) >= self._limit:
            self._entries.pop(next(iter(self._entries)))
        derived = make()
        self._entries[key] = (sources, derived)
        return derived

    def float32(self, t: torch.Tensor) -> torch.Tensor:
        """t as contiguous float32: t itself when it already is, else a cached conversion (a
        graph may hold bf16/fp16 scales; converting them on every call costs a launch)."""
        if t.dtype == torch.float32 and t.is_contiguous():
            return t
        return self.derive((t,), torch.float32, lambda: t.float().contiguous())


class GroupPairCache(DerivedCache):
    """Packed (scale, -zero * scale) pairs per (scales, zeros, dtype)."""

    def get(self, scales: torch.Tensor, zeros: torch.Tensor | None,
            dtype: torch.dtype) -> torch.Tensor:
        return self.derive((scales, zeros), dtype, lambda: pack_group_pairs(scales, zeros, dtype))


# The Hopper prefill kernel (plugins/quant/weight_only_wgmma.cu) reads the codes of each
# 16-row x 64-k block as 32 lanes' wgmma A fragments. Lane (g = lane // 4, t = lane % 4) holds,
# for each k16 step s, a0 = row g, k 16s + 2t + {0, 1}; a1 = row g + 8, same k; a2 = row g,
# k 16s + 8 + 2t + {0, 1}; a3 = row g + 8, same k.
WGMMA_ROWS, WGMMA_K = 128, 64       # rows padded to the kernel's block, k to its step


@functools.cache
def wgmma_fragment_order(bits: int) -> torch.Tensor:
    """[1024] int64: for each code of a repacked 16 x 64 block, in storage order (int8: bytes,
    lane's steps 0-1 at 16 * lane, steps 2-3 at 512 + 16 * lane; int4: nibbles, lane's step s
    in word 4 * lane + s, nibble slot + 4 * half), its source index row * 64 + k."""
    order = [0] * 1024
    for lane in range(32):
        g, t = divmod(lane, 4)
        for s in range(4):
            for slot in range(4):
                for half in range(2):
                    src = (g + 8 * (slot & 1)) * 64 + 16 * s + 8 * (slot >> 1) + 2 * t + half
                    if bits == 8:
                        dst = 512 * (s >> 1) + 16 * lane + 8 * (s & 1) + 2 * slot + half
                    else:
                        dst = 32 * lane + 8 * s + slot + 4 * half
                    order[dst] = src
    return torch.tensor(order, dtype=torch.int64)


def repack_for_wgmma(qweight: torch.Tensor, bits: int) -> torch.Tensor:
    """qweight int8 [N, K] or uint8 [N, K/2] (ops/spec.py) -> uint8 [N'/16, K'/64, 1024 | 512]
    (N' = N rounded up to 128, K' = K to 64, zero codes in the padding): the codes of each
    16 x 64 block in wgmma_fragment_order, the same raw bits (two's complement bytes, nibbles
    low = even k)."""
    n = qweight.shape[0]
    raw = qweight.view(torch.uint8)
    codes = torch.stack((raw & 0xF, raw >> 4), dim=-1).reshape(n, -1) if bits == 4 else raw
    k = codes.shape[1]
    n_pad = -(-n // WGMMA_ROWS) * WGMMA_ROWS
    k_pad = -(-k // WGMMA_K) * WGMMA_K
    full = torch.zeros(n_pad, k_pad, dtype=torch.uint8, device=qweight.device)
    full[:n, :k] = codes
    blocks = full.view(n_pad // 16, 16, k_pad // WGMMA_K, WGMMA_K).permute(0, 2, 1, 3)
    blocks = blocks.reshape(n_pad // 16, k_pad // WGMMA_K, 1024)
    frag = blocks[..., wgmma_fragment_order(bits).to(qweight.device)]
    if bits == 4:
        frag = frag[..., 0::2] | (frag[..., 1::2] << 4)
    return frag.contiguous()


def slab_group_pairs(scales: torch.Tensor, zeros: torch.Tensor | None) -> torch.Tensor:
    """scales, zeros [N, G] -> float32 [N'/16, G, 16, 2] (N' = N rounded up to 128 as in
    repack_for_wgmma, zero pairs in the padding): (scale, -zero * scale) of each channel of a
    16-channel slab, group by group, for the tensor-core GEMV's bulk copies."""
    n, groups = scales.shape
    s = scales.float()
    m = -zeros.float() * s if zeros is not None else torch.zeros_like(s)
    n_pad = -(-n // WGMMA_ROWS) * WGMMA_ROWS
    full = torch.zeros(n_pad, groups, 2, dtype=torch.float32, device=scales.device)
    full[:n] = torch.stack((s, m), dim=-1)
    return full.view(n_pad // 16, 16, groups, 2).transpose(1, 2).contiguous()


class SlabPairCache(DerivedCache):
    """slab_group_pairs per (scales, zeros)."""

    def get(self, scales: torch.Tensor, zeros: torch.Tensor | None) -> torch.Tensor:
        return self.derive((scales, zeros), "slabs", lambda: slab_group_pairs(scales, zeros))


class RepackedWeightCache(DerivedCache):
    """repack_for_wgmma per (qweight, bits)."""

    def get(self, qweight: torch.Tensor, bits: int) -> torch.Tensor:
        return self.derive((qweight,), bits, lambda: repack_for_wgmma(qweight, bits))
