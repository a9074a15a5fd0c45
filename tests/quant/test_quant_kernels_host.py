"""Host side of the quantized CUDA kernels (trtcompile/ops/quant_kernels.py), on CPU."""

from __future__ import annotations

import pytest
import torch

from trtcompile.errors import UnsupportedOpError
from trtcompile.ops import quant_kernels, quant_reference


def test_pack_group_pairs_is_the_dequantization():
    g = torch.Generator().manual_seed(0)
    n, k, group = 6, 64, 16
    codes = torch.randint(0, 16, (n, k), generator=g, dtype=torch.int16)
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).to(torch.uint8)
    scales = torch.rand(n, k // group, generator=g) + 0.1
    zeros = 15 * torch.rand(n, k // group, generator=g)
    pairs = quant_kernels.pack_group_pairs(scales, zeros, torch.float32)
    assert pairs.shape == (n, k // group, 2)
    s, m = (pairs[..., i].repeat_interleave(group, dim=1) for i in (0, 1))
    w = quant_reference.dequantize_weight(packed, scales, 4, group, zeros)      # [K, N]
    torch.testing.assert_close((codes.float() * s + m).t(), w, rtol=1e-6, atol=1e-6)
    assert torch.equal(quant_kernels.pack_group_pairs(scales, None, torch.bfloat16)[..., 1],
                       torch.zeros(n, k // group, dtype=torch.bfloat16))


def test_group_pair_cache_hits_and_sees_in_place_updates():
    cache = quant_kernels.GroupPairCache(limit=2)
    scales, zeros = torch.rand(4, 2), torch.rand(4, 2)
    first = cache.get(scales, zeros, torch.float16)
    assert cache.get(scales, zeros, torch.float16) is first
    assert cache.get(scales, zeros, torch.bfloat16) is not first
    scales.mul_(2)
    again = cache.get(scales, zeros, torch.float16)
    assert again is not first and torch.equal(again[..., 0], (2 * first[..., 0].float()).half())
    assert len(cache) == 2                                              # oldest evicted


def test_float32_scales_convert_once_per_tensor():
    cache = quant_kernels.DerivedCache()
    f32 = torch.rand(4, 2)
    assert cache.float32(f32) is f32 and len(cache) == 0             # already fit: no copy
    bf = torch.rand(4, 2).to(torch.bfloat16)
    first = cache.float32(bf)
    assert first.dtype == torch.float32 and torch.equal(first, bf.float())
    assert cache.float32(bf) is first                                  # cached
    bf.add_(1)
    assert torch.equal(cache.float32(bf), bf.float())                  # in-place update seen
    t = torch.rand(2, 4).t()
    assert cache.float32(t).is_contiguous() and torch.equal(cache.float32(t), t)


@pytest.mark.parametrize("k,qshape,qdtype,sshape,zshape,bits,group,match", [
    (64, (8, 64), torch.int8, (8,), None, 3, 0, "bits"),
    (60, (8, 60), torch.int8, (8,), None, 8, 0, "multiple of 8"),
    (64, (8, 64), torch.uint8, (8,), None, 8, 0, "qweight"),
    (64, (8, 64), torch.uint8, (8, 2), None, 4, 32, "qweight"),
    (64, (8, 32), torch.uint8, (8, 8), None, 4, 8, "group_size"),
    (64, (8, 32), torch.uint8, (8, 1), None, 4, 32, "scales"),
    (64, (8, 32), torch.uint8, (8,), (8,), 4, 0, "zeros"),
])
def test_check_weight_only_args_names_the_problem(k, qshape, qdtype, sshape, zshape, bits,
                                                  group, match):
    zeros = torch.zeros(zshape) if zshape else None
    with pytest.raises(UnsupportedOpError, match=match):
        quant_kernels.check_weight_only_args(k, torch.zeros(qshape, dtype=qdtype),
                                             torch.ones(sshape), zeros, bits, group)


def test_check_weight_only_args_accepts_the_spec_layouts():
    q8, q4 = torch.zeros(24, 128, dtype=torch.int8), torch.zeros(24, 64, dtype=torch.uint8)
    assert quant_kernels.check_weight_only_args(128, q8, torch.ones(24), None, 8, 0) == 24
    assert quant_kernels.check_weight_only_args(128, q4, torch.ones(24, 4), torch.ones(24, 4),
                                                4, 32) == 24


@pytest.mark.parametrize("bits", [8, 4])
def test_repack_for_wgmma_gives_each_lane_its_mma_fragments(bits):
    """Reads the repacked codes as the Hopper kernel does (weight_only_wgmma.cu a_fragment) and
    checks them against the m16n8k16 / wgmma A-fragment layout of PTX: lane (g, t), k16 step s:
    a0 = row g, k 16s + 2t + {0, 1}; a1 = row g + 8; a2 = row g, k + 8; a3 = row g + 8, k + 8.
    Rows and k past N and K (padding to 128 and 64) hold zero codes."""
    g = torch.Generator().manual_seed(bits)
    n, k = 150, 200
    if bits == 8:
        qweight = torch.randint(-128, 128, (n, k), generator=g, dtype=torch.int8)
        codes = qweight.view(torch.uint8).long()
    else:
        qweight = torch.randint(0, 256, (n, k // 2), generator=g, dtype=torch.uint8)
        codes = quant_reference.unpack_int4(qweight, signed=False).long()
    packed = quant_kernels.repack_for_wgmma(qweight, bits)
    assert packed.dtype == torch.uint8 and packed.shape == (256 // 16, 256 // 64, 8 * bits * 16)
    full = torch.zeros(256, 256, dtype=torch.long)
    full[:n, :k] = codes
    for rb in (0, 9, 15):           # 9: rows 144..159 cross N = 150
        for kt in range(4):         # 3: k 192..255 cross K = 200
            block = packed[rb, kt].long()
            for lane in range(32):
                gg, t = divmod(lane, 4)
                for s in range(4):
                    if bits == 8:   # words 2s, 2s + 1 of the lane's 32 bytes (two 16-byte chunks)
                        base = 512 * (s // 2) + 16 * lane + 8 * (s % 2)
                        got = [(block[base + 2 * i], block[base + 2 * i + 1]) for i in range(4)]
                    else:           # word s; nibble i (low half) and i + 4 (high half)
                        word = block[16 * lane + 4 * s: 16 * lane + 4 * s + 4]
                        nib = [(word[j // 2] >> (4 * (j % 2))) & 0xF for j in range(8)]
                        got = [(nib[i], nib[i + 4]) for i in range(4)]
                    for i, (lo, hi) in enumerate(got):
                        row = 16 * rb + gg + 8 * (i & 1)
                        col = 64 * kt + 16 * s + 8 * (i >> 1) + 2 * t
                        assert (lo.item(), hi.item()) == (full[row, col].item(),
                                                          full[row, col + 1].item())


def test_repacked_weight_cache_sees_in_place_updates():
    cache = quant_kernels.RepackedWeightCache(limit=2)
    q = torch.randint(-128, 128, (16, 64), dtype=torch.int8)
    first = cache.get(q, 8)
    assert cache.get(q, 8) is first and len(cache) == 1
    q.add_(1)
    assert not torch.equal(cache.get(q, 8), first) and len(cache) == 2


def test_slab_group_pairs_layout():
    """scales, zeros [N, G] -> float32 [N'/16, G, 16, 2]: (slab, group, c) holds channel
    16 slab + c's (scale, -zero * scale) of that group; channels past N are zero."""
    g = torch.Generator().manual_seed(1)
    scales, zeros = torch.rand(300, 3, generator=g), 15 * torch.rand(300, 3, generator=g)
    out = quant_kernels.slab_group_pairs(scales, zeros)
    assert out.shape == (384 // 16, 3, 16, 2) and out.dtype == torch.float32
    for ch, grp in [(0, 0), (17, 2), (299, 1), (150, 0)]:
        s = scales[ch, grp]
        assert torch.equal(out[ch // 16, grp, ch % 16], torch.stack((s, -zeros[ch, grp] * s)))
    assert (out.transpose(1, 2).reshape(384, 3, 2)[300:] == 0).all()
    signed = quant_kernels.slab_group_pairs(scales, None)
    assert (signed[..., 1] == 0).all() and torch.equal(signed[..., 0], out[..., 0])
