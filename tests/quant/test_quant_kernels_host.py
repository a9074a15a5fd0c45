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
