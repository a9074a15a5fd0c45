"""The kernel library's fp8 GEMM for decode batches (plugins/quant/fp8_gemm.cu, sm_90a) against
a float64 product of the same codes and scales, and against torch._scaled_mm with fast
accumulation (the numerics it stands in for)."""

from __future__ import annotations

import pytest
import torch

from trtcompile.errors import BackendUnavailableError

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

DEV = "cuda"
FP8 = torch.float8_e4m3fn


@pytest.fixture(scope="module")
def lib():
    from trtcompile.ops import cuda_kernels

    try:
        lib = cuda_kernels.load()
    except BackendUnavailableError as e:
        pytest.skip(str(e))
    if not lib.fp8_gemm_on(torch.device(DEV)):
        pytest.skip("the fp8 GEMM needs sm_90a code and an sm_90 GPU (H100)")
    return lib


@pytest.fixture
def kernel(lib, monkeypatch):
    """The library with every batch the kernel takes (<= 256 rows) sent to it."""
    monkeypatch.setattr(lib, "fp8_gemm_max_rows", 256)
    return lib


def operands(m: int, n: int, k: int, seed: int, x_pad: int = 0):
    """e4m3 codes x [m, k] (row stride k + x_pad) and W [k, n] column-major, float32 scales."""
    g = torch.Generator(device=DEV).manual_seed(seed)
    x = torch.randn(m, k + x_pad, device=DEV, generator=g)
    w = torch.randn(n, k, device=DEV, generator=g)
    sx = (0.5 + torch.rand(m, 1, device=DEV, generator=g)) / 448
    ws = (0.5 + torch.rand(1, n, device=DEV, generator=g)) / (448 * k ** 0.5)
    q = (x * 448 / x.abs().amax(1, keepdim=True)).to(FP8)[:, :k]
    wq = (w * 448 / w.abs().amax()).to(FP8).t()                   # [k, n], column-major
    return q, sx, wq, ws


def reference(q, sx, wq, ws) -> torch.Tensor:
    return (q.double() * sx.double()) @ (wq.double() * ws.double())


def rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    return ((y.double() - ref).norm() / ref.norm()).item()


# (m, n, k): one token; odd n (a partial channel tile); k not a multiple of 128; each token
# tile (64, 128, 256) at its edges; the shapes of an 8B model's o and down projections
SHAPES = [(1, 4096, 4096), (3, 1000, 2064), (64, 384, 512), (65, 640, 1024), (128, 4096, 14336),
          (129, 520, 4096), (200, 256, 2064), (256, 4096, 4096)]


@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("splits", [None, "1", "2", "8"])
def test_fp8_gemm_matches_float64(kernel, monkeypatch, m, n, k, splits):
    if splits is not None:
        monkeypatch.setenv("TRTC_FP8_GEMM_SPLITS", splits)
    q, sx, wq, ws = operands(m, n, k, seed=m + n + k)
    y = kernel.fp8_gemm(q, sx, wq, ws)
    assert y is not None and y.shape == (m, n) and y.dtype == torch.bfloat16
    err = rel_err(y, reference(q, sx, wq, ws))
    assert err < 6e-3, err   # bf16 output rounding is ~2e-3 relative; fast accumulation adds a little
    assert torch.isfinite(y).all()
    if n % 16 == 0:          # what torch._scaled_mm takes
        cublas = torch._scaled_mm(q, wq, scale_a=sx, scale_b=ws, out_dtype=torch.bfloat16,
                                  use_fast_accum=True)
        err_cublas = rel_err(cublas, reference(q, sx, wq, ws))
        assert err < 2 * err_cublas + 1e-3, (err, err_cublas)


def test_fp8_gemm_strided_rows(kernel, monkeypatch):
    monkeypatch.setenv("TRTC_FP8_GEMM_SPLITS", "4")
    for m, n, k in [(17, 768, 4096), (100, 4096, 1024), (1, 128, 640)]:
        q, sx, wq, ws = operands(m, n, k, seed=k, x_pad=32)
        assert q.stride(0) == k + 32
        y = kernel.fp8_gemm(q, sx, wq, ws)
        assert rel_err(y, reference(q, sx, wq, ws)) < 6e-3


@pytest.mark.parametrize("splits", ["2", "8"])
def test_fp8_gemm_split_sum_is_deterministic(kernel, monkeypatch, splits):
    """The splits' partial sums meet in a fixed order: repeated calls give the same bits."""
    monkeypatch.setenv("TRTC_FP8_GEMM_SPLITS", splits)
    q, sx, wq, ws = operands(64, 1024, 4096, seed=3)
    first = kernel.fp8_gemm(q, sx, wq, ws)
    for _ in range(5):
        assert torch.equal(kernel.fp8_gemm(q, sx, wq, ws), first)


def test_fp8_gemm_declines_what_it_does_not_run(kernel):
    q, sx, wq, ws = operands(257, 256, 512, seed=1)
    assert kernel.fp8_gemm(q, sx, wq, ws) is None                 # prefill: torch._scaled_mm
    kernel.fp8_gemm_max_rows = 1024                               # above what the kernel takes
    assert kernel.fp8_gemm(q, sx, wq, ws) is None
    q, sx, wq, ws = operands(8, 256, 512, seed=1)
    assert kernel.fp8_gemm(q, sx, wq.t().contiguous().t().contiguous(), ws) is None  # row-major W
    buf = torch.zeros(8 * 512 + 8, dtype=torch.uint8, device=DEV)
    q8 = buf[8:].view(FP8).view(8, 512)                          # codes 8 bytes off alignment
    assert kernel.fp8_gemm(q8, sx, wq, ws) is None
    kernel.fp8_gemm_max_rows = 16                                 # the runtime's batch limit
    q, sx, wq, ws = operands(17, 256, 512, seed=1)
    assert kernel.fp8_gemm(q, sx, wq, ws) is None


def test_lowered_fp8_gemm_uses_it_for_decode_rows(lib):
    """The lowering's GEMM step runs the library kernel for <= 256 rows with fast accumulation
    (same result as calling it), and torch._scaled_mm without."""
    from trtcompile.executor.lowering import quantized_gemm_codes

    q, sx, wq, ws = operands(48, 1024, 2048, seed=7)
    direct = lib.fp8_gemm(q, sx, wq, ws)
    fast = quantized_gemm_codes(q, sx, wq, ws, target="fp8", fast_accum=True, out_dtype=torch.bfloat16)
    exact = quantized_gemm_codes(q, sx, wq, ws, target="fp8", fast_accum=False, out_dtype=torch.bfloat16)
    cublas_exact = torch._scaled_mm(q, wq, scale_a=sx, scale_b=ws, out_dtype=torch.bfloat16)
    assert torch.equal(fast, direct)
    assert torch.equal(exact, cublas_exact)


def test_fp8_gemm_unaligned_scale_view(kernel):
    """Channel scales that are a view 4 bytes into another tensor are copied, not refused."""
    q, sx, wq, ws = operands(5, 256, 512, seed=2)
    host = torch.cat([torch.zeros(1, 1, device=DEV), ws], dim=1)
    view = host[:, 1:]
    assert view.data_ptr() % 16 and torch.equal(view, ws)
    assert torch.equal(kernel.fp8_gemm(q, sx, wq, view), kernel.fp8_gemm(q, sx, wq, ws))
