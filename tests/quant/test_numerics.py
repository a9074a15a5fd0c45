"""Exact scales on hand-made weights; int4 packing round trips exactly."""

import ml_dtypes
import numpy as np
import torch

from trtcompile.ops import quant_reference
from trtcompile.quant import numerics


def test_int8_per_channel_scales_and_codes():
    w = np.array([[1.0, -0.5], [-2.54, 0.25], [0.0, 0.127]], np.float32)     # [K=3, N=2]
    q, s = numerics.int8_per_channel(w)
    np.testing.assert_array_equal(s, np.float32([2.54, 0.5]) / np.float32(127))
    np.testing.assert_array_equal(q, [[50, -127, 0], [-127, 64, 32]])
    assert q.dtype == np.int8


def test_zero_channel_gets_unit_scale():
    q, s = numerics.int8_per_channel(np.zeros((4, 2), np.float32))
    assert s.tolist() == [1.0, 1.0] and not q.any()


def test_int4_groupwise_scales_and_codes():
    w = np.zeros((64, 1), np.float32)
    w[:32, 0] = np.linspace(-0.7, 0.35, 32)
    w[32:, 0] = 1.4
    w[33, 0] = -0.2
    packed, s = numerics.int4_groupwise(w, 32)
    np.testing.assert_array_equal(s, [[np.float32(0.7) / np.float32(7), np.float32(1.4) / np.float32(7)]])
    q = numerics.unpack_int4(packed)
    assert q[0, 0] == -7 and q[0, 32] == 7 and q[0, 33] == -1
    assert packed.shape == (1, 32) and packed.dtype == np.uint8


def test_int4_pack_unpack_round_trip_exact():
    codes = np.arange(-8, 8, dtype=np.int8)
    q = np.random.default_rng(0).choice(codes, size=(7, 64)).astype(np.int8)
    packed = numerics.pack_int4(q)
    assert packed.shape == (7, 32)
    np.testing.assert_array_equal(numerics.unpack_int4(packed), q)
    np.testing.assert_array_equal(quant_reference.unpack_int4(torch.from_numpy(packed)).numpy(), q)
    assert numerics.pack_int4(np.array([[-1, 3]], np.int8)).tolist() == [[0x3F]]


def test_weight_only_reference_is_dequantize_then_matmul():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((64, 8)).astype(np.float32)
    x = torch.from_numpy(rng.standard_normal((3, 64)).astype(np.float32))
    packed, s = numerics.int4_groupwise(w, 32)
    deq = numerics.unpack_int4(packed).astype(np.float32).reshape(8, 2, 32) * s[..., None]
    want = x @ torch.from_numpy(deq.reshape(8, 64).T.copy())
    got = quant_reference.weight_only_gemm(x, torch.from_numpy(packed), torch.from_numpy(s), None,
                                           4, 32)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_int4_asymmetric_represents_a_min_max_grid_exactly():
    rng = np.random.default_rng(2)
    lo = rng.uniform(-1, 0, (2, 3)).astype(np.float32)                 # [G, N], Q4_1-style
    d = rng.uniform(0.01, 0.1, (2, 3)).astype(np.float32)
    codes = rng.integers(0, 16, (2, 32, 3))
    codes[:, 0], codes[:, 1] = 0, 15                                   # both ends used
    w = (lo[:, None] + codes * d[:, None]).reshape(64, 3).astype(np.float32)
    packed, s, z = numerics.int4_groupwise_asym(w, 32)
    np.testing.assert_array_equal(s, ((w.reshape(2, 32, 3).max(1) - lo) / np.float32(15)).T)
    deq = quant_reference.dequantize_weight(torch.from_numpy(packed), torch.from_numpy(s), 4, 32,
                                            torch.from_numpy(z))
    torch.testing.assert_close(deq, torch.from_numpy(w), rtol=0, atol=1e-6)
    unsigned = quant_reference.unpack_int4(torch.from_numpy(packed), signed=False)
    assert unsigned.min() == 0 and unsigned.max() == 15


def test_fp8_per_channel():
    w = np.array([[448.0, 1.0], [-224.0, -0.5]], np.float32)
    q, s = numerics.fp8_per_channel(w)
    np.testing.assert_array_equal(s, [1.0, np.float32(1.0) / np.float32(448)])
    assert q.dtype == ml_dtypes.float8_e4m3fn
    np.testing.assert_array_equal(q.astype(np.float32), [[448.0, 448.0], [-224.0, -224.0]])


def test_smoothing_factors():
    act = np.array([16.0, 1.0], np.float32)
    w = np.array([[1.0, -4.0], [0.25, 0.0]], np.float32)                       # row max 4, 0.25
    s = numerics.smoothing_factors(act, w, 0.5)
    np.testing.assert_allclose(s, [4.0 / 2.0, 1.0 / 0.5], rtol=1e-6)


def test_per_token_quantize_int8_and_fp8():
    x = torch.tensor([[1.0, -2.54, 0.01], [0.0, 0.0, 0.0]])
    q, s = quant_reference.quantize_per_token(x, "int8")
    assert q.tolist() == [[50, -127, 0], [0, 0, 0]]
    torch.testing.assert_close(s, torch.tensor([[2.54 / 127], [1.0]]))
    q8, s8 = quant_reference.quantize_per_token(x, "fp8")
    assert q8.dtype == torch.float8_e4m3fn and q8.float().abs().max() == 448
