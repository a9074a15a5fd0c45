"""SiluMul and the per-token quantizers against another build of the kernel library (set
TRTC_BASELINE_LIB, e.g. to main's build): a rewrite of their arithmetic must keep every bit.
SiluMul sees every 16-bit gate value (and, in float32, those values and random bit patterns)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available() or not os.environ.get(
    "TRTC_BASELINE_LIB"), reason="needs a CUDA GPU and TRTC_BASELINE_LIB")

DEV = "cuda"


@pytest.fixture(scope="module")
def libs():
    from trtcompile.ops import cuda_kernels

    return cuda_kernels.load(), cuda_kernels.KernelLibrary(
        Path(os.environ["TRTC_BASELINE_LIB"]).resolve())


def every_16bit(dtype: torch.dtype) -> torch.Tensor:
    bits = torch.arange(-2 ** 15, 2 ** 15, device=DEV, dtype=torch.int32).to(torch.int16)
    return bits.view(dtype)


def gate_values() -> torch.Tensor:
    """float32: every bf16 and fp16 value, then random bit patterns and normal values."""
    g = torch.Generator(device=DEV).manual_seed(0)
    rand_bits = torch.randint(-2 ** 31, 2 ** 31 - 1, (1 << 22,), device=DEV, generator=g,
                              dtype=torch.int32).view(torch.float32)
    normal = torch.randn(1 << 22, device=DEV, generator=g) * 30
    return torch.cat([every_16bit(torch.bfloat16).float(), every_16bit(torch.float16).float(),
                      rand_bits, normal])


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and torch.equal(a.view(torch.uint8), b.view(torch.uint8))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_silu_mul_every_gate_value(libs, dtype):
    ours, base = libs
    g = gate_values() if dtype == torch.float32 else every_16bit(dtype)
    n = g.numel() - g.numel() % 64
    for up in (torch.ones(n, device=DEV, dtype=dtype), torch.randn(n, device=DEV).to(dtype)):
        x = torch.cat([g[:n].to(dtype).view(-1, 64), up.view(-1, 64)], dim=1)   # [rows, 2 x 64]
        for rows in (x, x[:, 1:-1]):          # 16-byte kernel, and the odd-width scalar kernel
            rows = rows.contiguous()
            assert same_bits(ours.silu_mul(rows), base.silu_mul(rows))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("target", ["int8", "fp8"])
def test_quantizers_match_the_baseline(libs, dtype, target):
    ours, base = libs
    g = torch.Generator(device=DEV).manual_seed(1)
    x = (torch.randn(512, 2 * 14336, device=DEV, generator=g) * 4).to(dtype)
    x[3] = 0
    x[5, :64] = -0.0
    for a, b in zip(ours.quantize_per_token(x, target), base.quantize_per_token(x, target)):
        assert same_bits(a, b)
    for a, b in zip(ours.silu_mul_quantize(x, target), base.silu_mul_quantize(x, target)):
        assert same_bits(a, b)
