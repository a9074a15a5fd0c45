"""CUDA kernels of the quantized ops (WeightOnlyGemm, QuantizeInt8/Fp8) against the CPU
references of trtcompile/ops/quant_reference.py."""

from __future__ import annotations

import pytest
import torch

from trtcompile.errors import BackendUnavailableError, UnsupportedOpError
from trtcompile.ops import cuda_kernels, quant_kernels, quant_reference
from trtcompile.ops.cuda_kernels import _DTYPES

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

DEV = "cuda"
HALF = [torch.float16, torch.bfloat16]
# (bits, group_size, zeros): per-channel int8, group-wise int8, int4 asymmetric (what the int4
# pass emits), int4 signed group-wise and per-channel
LAYOUTS = [(8, 0, False), (8, 32, False), (4, 32, True), (4, 64, True), (4, 128, True),
           (4, 32, False), (4, 128, False), (4, 0, False)]


@pytest.fixture(scope="module")
def lib():
    try:
        return cuda_kernels.load()
    except BackendUnavailableError as e:
        pytest.skip(str(e))


def make_weight(n: int, k: int, bits: int, group: int, zeros: bool, seed: int):
    """Random codes and scales in the layouts of ops/spec.py WeightOnlyGemm (on the GPU)."""
    g = torch.Generator(device=DEV).manual_seed(seed)
    cols = k // group if group else 1
    scales = (0.2 + 1.8 * torch.rand(n, cols, device=DEV, generator=g)) / (8 if bits == 4 else 100)
    scales = scales if group else scales.reshape(n)
    if bits == 8:
        q = torch.randint(-127, 128, (n, k), device=DEV, generator=g, dtype=torch.int8)
        return q, scales, None
    lo, hi = (0, 16) if zeros else (-8, 8)
    codes = torch.randint(lo, hi, (n, k), device=DEV, generator=g, dtype=torch.int16) & 0xF
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).to(torch.uint8)
    # zeros are fractional, as the int4 pass writes them
    z = 15 * torch.rand(n, cols, device=DEV, generator=g) if zeros else None
    return packed, scales, z


def kernel_weight(qweight, scales, zeros, bits, group, dtype, rounded=True):
    """W [K, N] float64 exactly as the kernels multiply it: integer codes (per-channel scales
    are applied to the fp32 sums), or q * scale + min rounded once to fp16/bf16 (group-wise), or
    not rounded (rounded=False: the tensor-core GEMV scales its float32 sums per group)."""
    if group == 0:
        return quant_reference.dequantize_weight(qweight, scales, bits, 0).double()
    q = quant_reference.unpack_int4(qweight, signed=zeros is None) if bits == 4 else qweight
    if not rounded:
        s = scales.double().repeat_interleave(group, dim=1)
        m = -zeros.double().repeat_interleave(group, dim=1) * s if zeros is not None else 0.0
        return (q.double() * s + m).t()
    pairs = quant_kernels.pack_group_pairs(scales, zeros, dtype).double()    # [N, G, 2]
    s, m = (pairs[..., i].repeat_interleave(group, dim=1) for i in (0, 1))
    return (q.double() * s + m).to(dtype).double().t()


def runs_tensor_core_gemv(x, qweight, bits, group) -> bool:
    """Whether the library's dispatch sends this product to the tensor-core GEMV."""
    k = x.shape[-1]
    return (x.dtype in HALF and cuda_kernels.load().mma_gemv_fits(
        x.device, x.numel() // k, qweight.shape[0], k, bits, group))


def gemm_references(x, qweight, scales, zeros, bits, group, rounded=None):
    """(the product with the weights the kernels use in float64, the float32 reference);
    rounded: kernel_weight's, by default that of the kernel the dispatch picks for x."""
    if rounded is None:
        rounded = not runs_tensor_core_gemv(x, qweight, bits, group)
    args = [t.cpu() if t is not None else None for t in (qweight, scales, zeros)]
    xf = x.cpu().double().reshape(-1, x.shape[-1])
    exact = (xf @ kernel_weight(*args, bits, group, x.dtype, rounded)).reshape(*x.shape[:-1], -1)
    ref = (xf.float() @ quant_reference.dequantize_weight(*args[:2], bits, group, args[2]))
    return exact, ref.reshape(*x.shape[:-1], -1)


def check_gemm(y, x, qweight, scales, zeros, bits, group, refs=None):
    """y against (a) the same product with the weights the kernels use, tightly (a wrong nibble,
    group or token fails it), (b) the float32 reference, as loosely as fp16/bf16 weights need.
    refs: gemm_references of x computed before (or of more rows, the first taken)."""
    exact, ref = refs or gemm_references(x, qweight, scales, zeros, bits, group)
    rows = y.shape[0]
    exact, ref = exact[:rows], ref[:rows]
    assert y.shape == ref.shape and y.dtype == x.dtype
    out = y.cpu().double()
    assert torch.isfinite(out).all()
    ulp = 2.0 ** (-8 if x.dtype == torch.bfloat16 else -11)
    rms = ref.pow(2).mean().sqrt().item()
    loose = 1e-3 if group == 0 else (0.06 if x.dtype == torch.bfloat16 else 0.01)
    for want, rel in ((exact, 1e-4), (ref.double(), loose)):
        excess = ((out - want).abs() - ulp * want.abs()).max().item()
        assert excess <= rel * rms, f"max error {excess} > {rel} * rms {rms}"


def gemm_random(lib, dtype, bits, group, zeros, n, k, m):
    """The kernels on random weights [N, K] and x [m, K], checked by check_gemm."""
    qweight, scales, z = make_weight(n, k, bits, group, zeros, seed=n + k + bits + group)
    g = torch.Generator(device=DEV).manual_seed(m)
    x = torch.randn(m, k, device=DEV, generator=g).to(dtype)
    check_gemm(lib.weight_only_gemm(x, qweight, scales, z, bits, group), x, qweight, scales, z,
               bits, group)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("bits,group,zeros", LAYOUTS)
@pytest.mark.parametrize("n,k", [(72, 128), (136, 4096), (1024, 256)])
@pytest.mark.parametrize("m", [1, 3, 16, 17, 32, 33, 100, 1024])
def test_weight_only_gemm(lib, dtype, bits, group, zeros, n, k, m):
    gemm_random(lib, dtype, bits, group, zeros, n, k, m)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("bits,group,zeros", LAYOUTS)
@pytest.mark.parametrize("m", [1, 8, 9, 16])
def test_weight_only_gemm_wide_projection(lib, dtype, bits, group, zeros, m):
    """N = 13000 (not a multiple of 16): enough 16-row tiles for the GEMV's 4-warp blocks
    (one or two tiles per warp) on GPUs of up to 135 SMs (H100: 132); the other shapes run
    8-warp ones."""
    gemm_random(lib, dtype, bits, group, zeros, 13000, 512, m)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("bits,group,zeros", LAYOUTS)
@pytest.mark.parametrize("k", [2560, 4096])
@pytest.mark.parametrize("m", [1, 12, 13, 16, 17, 24, 32])
def test_weight_only_gemm_wide_decode_batches(lib, dtype, bits, group, zeros, k, m):
    """N = 8500 (not a multiple of 64; 133 blocks of 64 rows) and K of 5-16 stages: on Hopper
    with up to 133 SMs the GEMV fed by tensor copies runs int8 from 17 tokens and int4 from 13
    (its ring of stages wraps), other kernels the rest (see gemv_bulk_fits)."""
    gemm_random(lib, dtype, bits, group, zeros, 8500, k, m)


def test_weight_only_gemm_bulk_gemv_dispatch(lib):
    """On Hopper (sm_90a code in the library) the GEMV fed by tensor copies takes the wide decode
    batches where it is faster, and the tensor-core int4 GEMV steps aside for it."""
    dev = torch.device(DEV)
    if torch.cuda.get_device_capability() != (9, 0) or not lib.packed_gemm_on(dev):
        pytest.skip("the GEMV fed by tensor copies runs on sm_90a only")
    n, k = 64 * torch.cuda.get_device_properties(0).multi_processor_count, 4096
    fits = lambda m, bits, group: lib.gemv_bulk_fits(dev, m, n, k, bits, group)  # noqa: E731
    assert [fits(m, 8, 0) for m in (1, 16, 17, 32, 33)] == [False, False, True, True, False]
    assert [fits(m, 4, 128) for m in (8, 12, 13, 16, 17)] == [False, False, True, True, False]
    assert fits(24, 4, 32) and fits(24, 4, 0) and not fits(24, 4, 64)
    assert not fits(16, 4, 256)                                # two groups a stage: no
    assert not lib.gemv_bulk_fits(dev, 24, n - 64, k, 8, 0)    # fewer blocks than SMs
    assert not lib.gemv_bulk_fits(dev, 24, n, 4096 + 128, 8, 0)  # K not whole stages
    # 17-32 int4 tokens: the tensor-core GEMV keeps groups of 128, gives up groups of 32
    assert lib.mma_gemv_fits(dev, 24, n, k, 4, 128)
    assert not lib.mma_gemv_fits(dev, 24, n, k, 4, 32)
    assert lib.mma_gemv_fits(dev, 24, n - 64, k, 4, 32)       # where this GEMV does not run


@pytest.mark.parametrize("bits,group,zeros", LAYOUTS)
@pytest.mark.parametrize("n", [72, 13000])
@pytest.mark.parametrize("k", [160, 576])
@pytest.mark.parametrize("m", [1, 9])
def test_weight_only_gemm_gemv_partial_last_chunk(lib, bits, group, zeros, n, k, m):
    """K a multiple of a GEMV lane's k (int4 32, int8 16) but not of a warp's chunk (128, 64):
    in the last chunk the lanes past K read clamped codes against x = 0 (576: SmolLM2's hidden
    size). N 13000 runs the 4-warp blocks, N 72 the 8-warp ones."""
    if group and k % group:
        pytest.skip("group does not divide K")
    gemm_random(lib, torch.bfloat16, bits, group, zeros, n, k, m)


@pytest.fixture
def tensor_core_gemv(lib):
    """The library with the tensor-core int4 GEMV taking every product it can run (policy
    "always"); skips where it does not run."""
    lib.mma_gemv = "always"
    try:
        if not lib.mma_gemv_fits(torch.device(DEV), 1, 64, 64, 4, 32):
            pytest.skip("the tensor-core int4 GEMV runs on Hopper (sm_90a code) only")
        yield lib
    finally:
        lib.mma_gemv = "auto"


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("group", [32, 64, 128, 256])
@pytest.mark.parametrize("zeros", [True, False])
@pytest.mark.parametrize("n,k", [(72, 576), (1000, 2048), (1000, 1024), (4100, 256), (4100, 128)])
def test_weight_only_gemm_int4_tensor_core_gemv(tensor_core_gemv, dtype, group, zeros, n, k):
    """The tensor-core int4 GEMV at 1-32 tokens (the dispatch sends it 17-32 where N > K; it is
    correct for fewer): N off 128 and 256 (padded slabs), a last stage of
    one k block (576: clusters of 2, the second rank with one block), clusters of 1 (x 256,
    x 128), 4 (x 1024) and 8 (x 2048) splits of K; the CUDA-core GEMV agrees on the same inputs."""
    lib = tensor_core_gemv
    if k % group:
        pytest.skip("group does not divide K")
    qweight, scales, z = make_weight(n, k, 4, group, zeros, seed=n + group)
    g = torch.Generator(device=DEV).manual_seed(k)
    x_all = torch.randn(32, k, device=DEV, generator=g).to(dtype)
    refs = gemm_references(x_all, qweight, scales, z, 4, group, rounded=False)
    refs_gemv = gemm_references(x_all, qweight, scales, z, 4, group, rounded=True)
    for m in (1, 2, 7, 8, 9, 15, 16, 17, 24, 31, 32):
        assert lib.mma_gemv_fits(x_all.device, m, n, k, 4, group)
        x = x_all[:m]
        check_gemm(lib.weight_only_gemm(x, qweight, scales, z, 4, group), x, qweight, scales, z,
                   4, group, refs)
        if m in (1, 17, 32):
            lib.mma_gemv = "never"
            try:
                y_gemv = lib.weight_only_gemm(x, qweight, scales, z, 4, group)
                check_gemm(y_gemv, x, qweight, scales, z, 4, group, refs_gemv)
            finally:
                lib.mma_gemv = "always"
    assert not lib.mma_gemv_fits(x_all.device, 33, n, k, 4, group)
    assert not lib.mma_gemv_fits(x_all.device, 1, n, k, 8, group)
    assert not lib.mma_gemv_fits(x_all.device, 1, n, k + 32, 4, group)   # K off 64
    assert not lib.mma_gemv_fits(x_all.device, 1, n, k, 4, 16)           # groups of 16


def test_weight_only_gemm_int4_tensor_core_gemv_policy(tensor_core_gemv):
    """The default policy sends int4 (groups of >= 32, K a multiple of 64) to the tensor-core
    GEMV at 17-32 tokens on projections wider than deep only, and the result is right there."""
    lib = tensor_core_gemv
    dev = torch.device(DEV)
    lib.mma_gemv = "auto"
    assert lib.mma_gemv_fits(dev, 17, 28672, 4096, 4, 128)       # a fused gate/up
    assert lib.mma_gemv_fits(dev, 32, 6144, 4096, 4, 32)         # a fused q/k/v
    assert not lib.mma_gemv_fits(dev, 16, 28672, 4096, 4, 128)   # <= 16 tokens: CUDA cores
    assert not lib.mma_gemv_fits(dev, 24, 4096, 4096, 4, 128)    # o: N = K
    assert not lib.mma_gemv_fits(dev, 24, 4096, 14336, 4, 128)   # down: N < K
    assert not lib.mma_gemv_fits(dev, 33, 28672, 4096, 4, 128)   # prefill kernels
    qweight, scales, z = make_weight(1000, 256, 4, 64, True, seed=12)
    x = torch.randn(24, 256, device=DEV).to(torch.bfloat16)
    assert runs_tensor_core_gemv(x, qweight, 4, 64)
    check_gemm(lib.weight_only_gemm(x, qweight, scales, z, 4, 64), x, qweight, scales, z, 4, 64)


def test_weight_only_gemm_int4_tensor_core_gemv_rejects_bad_input(tensor_core_gemv):
    """The launcher refuses what the dispatch never sends: more than 32 tokens, groups not a
    power of two or of 16, K off 64, missing pairs, a misaligned packed pointer."""
    lib = tensor_core_gemv
    qweight, scales, z = make_weight(64, 256, 4, 32, True, seed=4)
    x = torch.randn(16, 256, device=DEV).to(torch.bfloat16)
    packed = lib.repacked_weights.get(qweight, 4)
    pairs = lib.slab_pairs.get(scales, z)
    y = torch.empty(17, 64, device=DEV, dtype=x.dtype)
    stream = torch.cuda.current_stream().cuda_stream
    x33 = torch.randn(33, 256, device=DEV).to(torch.bfloat16)

    def call(xx, m, group, pairs_ptr, packed_ptr, k=256):
        return lib._woq_gemv_mma(xx.data_ptr(), xx.stride(0), packed_ptr, pairs_ptr, 0,
                                 y.data_ptr(), m, 64, k, group, _DTYPES[x.dtype], stream)

    assert call(x, 16, 32, pairs.data_ptr(), packed.data_ptr()) == 0
    torch.cuda.synchronize()
    check_gemm(y[:16], x, qweight, scales, z, 4, 32)
    assert call(x33, 33, 32, pairs.data_ptr(), packed.data_ptr()) != 0
    assert call(x, 16, 48, pairs.data_ptr(), packed.data_ptr()) != 0
    assert call(x, 16, 16, pairs.data_ptr(), packed.data_ptr()) != 0
    assert call(x, 16, 32, pairs.data_ptr(), packed.data_ptr(), k=224) != 0
    assert call(x, 16, 32, None, packed.data_ptr()) != 0
    assert call(x, 16, 32, pairs.data_ptr(), packed.data_ptr() + 8) != 0


@pytest.mark.parametrize("bits,group,zeros", [(8, 0, False), (4, 0, False), (8, 16, False)])
@pytest.mark.parametrize("m", [1, 40])
def test_weight_only_gemm_k_not_multiple_of_16(lib, bits, group, zeros, m):
    """K % 16 == 8 (and 16-wide groups) is out of the GEMV's reach: the tiled kernel's tails."""
    qweight, scales, z = make_weight(24, 72 if group == 0 else 80, bits, group, zeros, seed=3)
    k = qweight.shape[1] * (8 // bits)
    x = torch.randn(m, k, device=DEV).to(torch.bfloat16)
    check_gemm(lib.weight_only_gemm(x, qweight, scales, z, bits, group), x, qweight, scales, z,
               bits, group)


@pytest.mark.parametrize("tokens,splits", [(0, 0), (64, 1), (64, 8), (128, 2), (128, 4),
                                           (256, 1), (256, 8)])
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("bits,group,zeros", [(8, 0, False), (4, 32, True), (4, 128, True),
                                              (4, 0, False), (8, 16, False)])
@pytest.mark.parametrize("n,k,m", [(300, 200, 257), (128, 4096, 40), (200, 1024, 100)])
def test_weight_only_gemm_prefill_tiles_and_tails(lib, tokens, splits, dtype, bits, group, zeros,
                                                  n, k, m):
    """M > 32 on the Hopper kernel (repacked codes) with each token tile and K split (a cluster
    of 1-8 blocks; the default picks both): N and K off its 128-row and 64-k steps, N % 8 != 0
    (no 16-byte stores), partial token tiles, more splits than K has 64-k steps (blocks with
    nothing to add). Elsewhere (or when the library has no sm_90a code) the generic tiled kernel
    answers the same."""
    if group and k % group:
        pytest.skip("group does not divide K")
    qweight, scales, z = make_weight(n, k, bits, group, zeros, seed=n + k + group)
    x = torch.randn(m, k, device=DEV).to(dtype)
    lib.packed_tile_tokens, lib.packed_k_splits = tokens, splits
    try:
        check_gemm(lib.weight_only_gemm(x, qweight, scales, z, bits, group), x, qweight, scales,
                   z, bits, group)
    finally:
        lib.packed_tile_tokens = lib.packed_k_splits = 0


@pytest.mark.parametrize("pack", [True, False])
@pytest.mark.parametrize("m", [4, 300])
def test_weight_only_gemm_scale_modes_and_cache(lib, pack, m):
    """Packed (scale, min) pairs and raw float32 scales agree; an in-place update of the scales
    is seen (the pair cache is keyed by version)."""
    qweight, scales, z = make_weight(200, 512, 4, 64, True, seed=9)
    x = torch.randn(m, 512, device=DEV).to(torch.float16)
    lib.pack_group_scales = pack
    try:
        check_gemm(lib.weight_only_gemm(x, qweight, scales, z, 4, 64), x, qweight, scales, z, 4, 64)
        scales.mul_(torch.linspace(0.5, 2.0, 8, device=DEV))
        check_gemm(lib.weight_only_gemm(x, qweight, scales, z, 4, 64), x, qweight, scales, z, 4, 64)
    finally:
        lib.pack_group_scales = True


@pytest.mark.parametrize("m", [5, 64])
def test_weight_only_gemm_strided_and_batched_x(lib, m):
    qweight, scales, z = make_weight(96, 256, 4, 32, True, seed=5)
    for pad in (8, 4):   # row stride kept (multiple of 8) or copied (not)
        x = torch.randn(m, 256 + pad, device=DEV).to(torch.bfloat16)[:, :256]
        check_gemm(lib.weight_only_gemm(x, qweight, scales, z, 4, 32), x, qweight, scales, z, 4, 32)
    x3 = torch.randn(2, m, 256, device=DEV).to(torch.bfloat16)
    check_gemm(lib.weight_only_gemm(x3, qweight, scales, z, 4, 32), x3, qweight, scales, z, 4, 32)


def test_weight_only_gemm_via_torch_op_and_cuda_graph(lib):
    cuda_kernels.register_cuda_impls()
    qweight, scales, z = make_weight(512, 1024, 4, 128, True, seed=1)
    x = torch.randn(8, 1024, device=DEV).to(torch.bfloat16)
    op = torch.ops.trtcompile.weight_only_gemm
    eager = op(x, qweight, scales, z, 4, 128)                   # warm-up packs the scales
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = op(x, qweight, scales, z, 4, 128)
    x.copy_(torch.randn_like(x))
    graph.replay()
    torch.cuda.synchronize()
    assert not torch.equal(captured, eager)
    check_gemm(captured, x, qweight, scales, z, 4, 128)


@pytest.mark.parametrize("producer", ["rms_norm", "silu_mul"])
@pytest.mark.parametrize("bits,group,zeros,m", [
    (8, 0, False, 1), (4, 128, True, 8), (8, 0, False, 16),   # the register-fed GEMV
    (8, 0, False, 24), (4, 32, False, 16),                     # on Hopper: fed by tensor copies
    (4, 128, False, 24)])                                      # the tensor-core GEMV
def test_weight_only_gemv_waits_for_the_kernel_before(lib, producer, bits, group, zeros, m):
    """RMSNorm and SiluMul let the next kernel start while they run, and the decode GEMVs are
    launched so that they may (sm_90+: they load weights first, then wait). A graph of the
    producer and the GEMV, replayed with new inputs, must give each replay's product: a GEMV
    that read x before the producer had finished would give the previous replay's."""
    k, n, dtype = 4096, 8500, torch.bfloat16
    qweight, scales, z = make_weight(n, k, bits, group, zeros, seed=7)
    g = torch.Generator(device=DEV).manual_seed(11)
    inp = torch.randn(m, 2 * k if producer == "silu_mul" else k, device=DEV, generator=g).to(dtype)
    w = (1 + 0.1 * torch.randn(k, device=DEV, generator=g)).to(dtype)

    def chain():
        x = lib.rms_norm(inp, w, None, 1e-5)[0] if producer == "rms_norm" else lib.silu_mul(inp)
        return x, lib.weight_only_gemm(x, qweight, scales, z, bits, group)

    chain()                                                     # packs the pairs, makes maps
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        x, y = chain()
    previous = None
    for _ in range(4):
        inp.copy_(torch.randn(inp.shape, device=DEV, generator=g).to(dtype))
        graph.replay()
        torch.cuda.synchronize()
        assert previous is None or not torch.equal(y, previous)
        check_gemm(y, x, qweight, scales, z, bits, group)
        previous = y.clone()


def test_weight_only_gemm_errors(lib):
    qweight, scales, _ = make_weight(16, 64, 8, 0, False, seed=0)
    x = torch.randn(2, 64, device=DEV).to(torch.float16)
    with pytest.raises(UnsupportedOpError, match="bits"):
        lib.weight_only_gemm(x, qweight, scales, None, 5, 0)
    with pytest.raises(UnsupportedOpError, match="qweight"):
        lib.weight_only_gemm(x[:, :32], qweight, scales, None, 8, 0)
    with pytest.raises(UnsupportedOpError, match="scales"):
        lib.weight_only_gemm(x, qweight, scales[:8], None, 8, 0)


def test_weight_only_gemm_fp32_falls_back_to_reference(lib):
    qweight, scales, z = make_weight(40, 64, 4, 32, True, seed=2)
    x = torch.randn(3, 64, device=DEV)
    torch.testing.assert_close(lib.weight_only_gemm(x, qweight, scales, z, 4, 32),
                               quant_reference.weight_only_gemm(x, qweight, scales, z, 4, 32))


# ---------------------------------------------------------------- per-token quantization

@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("target", ["int8", "fp8"])
@pytest.mark.parametrize("rows,k", [(1, 64), (5, 4096), (300, 1000), (7, 1001)])
def test_quantize_per_token(lib, dtype, target, rows, k):
    g = torch.Generator(device=DEV).manual_seed(rows * k)
    x = (3 * torch.randn(rows, k + 16, device=DEV, generator=g)).to(dtype)[:, :k]  # strided rows
    x[0] = 0                                                        # all-zero row: scale 1
    if rows > 2:
        x[1] *= 1000
    q, s = lib.quantize_per_token(x, target)
    q_ref, s_ref = quant_reference.quantize_per_token(x.cpu(), target)
    assert q.dtype == q_ref.dtype and s.dtype == dtype and s.shape == (rows, 1)
    assert torch.equal(s.cpu(), s_ref)
    assert s[0].item() == 1.0
    assert torch.equal(q.cpu().view(torch.int8), q_ref.view(torch.int8))
    q32, s32 = lib.quantize_per_token(x, target, float_scale=True)   # the W8A8 GEMM's input
    assert s32.dtype == torch.float32 and torch.equal(s32.cpu(), s_ref.float())
    assert torch.equal(q32.view(torch.int8), q.view(torch.int8))
    assert lib._quant_f32 is not None                          # the library has the entry point


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("target", ["int8", "fp8"])
def test_quantize_per_token_every_16bit_pair(lib, dtype, target):
    """The kernels divide by the scale through one reciprocal a row and FMA corrections
    (quantize_row.cuh Divider): against torch's division, every (x, absmax) pair of finite
    16-bit values with |x| <= absmax, sign of zero included. Row A holds each finite x with
    |x| <= A (0 elsewhere), so its absmax is A; one row for each positive finite A."""
    bits = torch.arange(-2 ** 15, 2 ** 15, device=DEV, dtype=torch.int32).to(torch.int16)
    every = bits.view(dtype)
    every = every[every.isfinite()]                                          # [K]
    amax = every[every > 0].unique()                                         # [R]
    for chunk in amax.split(1024):
        x = torch.where(every.abs() <= chunk[:, None], every, torch.zeros_like(every))
        q, s = lib.quantize_per_token(x, target)
        q_ref, s_ref = quant_reference.quantize_per_token(x, target)
        assert torch.equal(s, s_ref)
        assert torch.equal(q.view(torch.int8), q_ref.view(torch.int8))


def test_quantize_per_token_batched_and_errors(lib):
    x = torch.randn(2, 3, 256, device=DEV).to(torch.bfloat16)
    q, s = lib.quantize_per_token(x, "int8")
    q_ref, s_ref = quant_reference.quantize_per_token(x.cpu(), "int8")
    assert q.shape == (2, 3, 256) and s.shape == (2, 3, 1)
    assert torch.equal(q.cpu(), q_ref) and torch.equal(s.cpu(), s_ref)
    with pytest.raises(UnsupportedOpError, match="target"):
        lib.quantize_per_token(x, "int4")


# ------------------------------------- quantization fused into RMSNorm and SiluMul (lowering)

def _same_codes(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and torch.equal(a.view(torch.int8), b.view(torch.int8))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("target", ["int8", "fp8"])
@pytest.mark.parametrize("rows,hidden", [(1, 576), (7, 4096), (300, 2048), (3, 16384), (5, 1000)])
@pytest.mark.parametrize("residual", [False, True])
def test_rms_norm_quantize_equals_the_two_kernels(lib, dtype, target, rows, hidden, residual):
    """Bit for bit the codes and scales of RMSNorm then quantize_per_token (hidden 1000: not a
    multiple of 16, so the fused kernel declines and both kernels run)."""
    g = torch.Generator(device=DEV).manual_seed(rows + hidden)
    x = (2 * torch.randn(rows, hidden, device=DEV, generator=g)).to(dtype)
    r = torch.randn(rows, hidden, device=DEV, generator=g).to(dtype) if residual else None
    w = (1 + 0.5 * torch.randn(hidden, device=DEV, generator=g)).to(dtype)
    x[0] = 0                                                   # all-zero row: scale 1
    if residual:
        r[0] = 0
    if rows > 2:
        x[1] *= 300
    q, s, res = lib.rms_norm_quantize(x, w, r, 1e-5, target)
    y, res_ref = lib.rms_norm(x, w, r, 1e-5)
    q_ref, s_ref = lib.quantize_per_token(y, target)
    assert s.dtype == torch.float32 and s.shape == (rows, 1) and s[0].item() == 1.0
    assert torch.equal(s, s_ref.float()) and _same_codes(q, q_ref)
    assert (res is None) == (not residual) and (res is None or torch.equal(res, res_ref))


def _silu_input(rows: int, inter: int, dtype: torch.dtype) -> torch.Tensor:
    """[2, rows, 2 * inter]: random rows, an all-zero one, and rows whose absmax sits in a
    different part of the row each (so in a different CTA of a split row)."""
    g = torch.Generator(device=DEV).manual_seed(rows * inter)
    x = (3 * torch.randn(2, rows, 2 * inter, device=DEV, generator=g)).to(dtype)
    x[0, 0] = 0
    for r in range(1, min(rows, 16)):
        col = (r * inter) // 16 + r
        x[1, r, col], x[1, r, inter + col] = 9, -40
    return x


def _fused_silu_quantize(lib, x: torch.Tensor, target: str):
    """The fused launcher alone (no fallback to the two kernels): -> (codes, scale, status)."""
    inter = x.shape[-1] // 2
    qdtype = quant_kernels.QUANT_TARGETS[target]
    q = torch.empty(*x.shape[:-1], inter, dtype=qdtype, device=DEV)
    s = torch.empty(*x.shape[:-1], 1, dtype=torch.float32, device=DEV)
    err = lib._silu_quant(x.data_ptr(), q.data_ptr(), s.data_ptr(), x.numel() // (2 * inter),
                          inter, _DTYPES[x.dtype], _DTYPES[qdtype],
                          torch.cuda.current_stream().cuda_stream)
    torch.cuda.synchronize()
    return q, s, err


# (rows, inter): 1000 and 1004 are no multiple of 16 (1004 not of 8: the 16-bit types decline,
# float32 takes it); 1001 no type takes; 66560 bf16 is 8320 vectors, over one CTA's 8192
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("target", ["int8", "fp8"])
@pytest.mark.parametrize("rows,inter", [(1, 64), (9, 1536), (256, 14336), (4, 1000), (3, 1004),
                                        (2, 1001), (300, 4096), (3, 66560)])
def test_silu_mul_quantize_equals_the_two_kernels(lib, dtype, target, rows, inter):
    x = _silu_input(rows, inter, dtype)
    q, s = lib.silu_mul_quantize(x, target)
    q_ref, s_ref = lib.quantize_per_token(lib.silu_mul(x), target)
    assert q.shape == (2, rows, inter) and s.shape == (2, rows, 1) and s.dtype == torch.float32
    assert s[0, 0].item() == 1.0
    assert torch.equal(s, s_ref.float()) and _same_codes(q, q_ref)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("target", ["int8", "fp8"])
@pytest.mark.parametrize("rows,inter", [(1, 14336), (37, 14336), (5, 1000), (2, 64), (4, 3072)])
@pytest.mark.parametrize("ctas,nv", [(0, 0), (1, 0), (1, 8), (2, 1), (3, 2), (8, 1), (8, 4)])
def test_silu_mul_quantize_each_split(lib, monkeypatch, dtype, target, rows, inter, ctas, nv):
    """Every split of a row the launcher may pick (CTAs a row x vectors a thread, forced
    through its tuning overrides; 1 CTA is the kernel of GPUs without clusters): the fused
    kernel runs (no fallback) and writes the bits of SiluMul then quantize_per_token."""
    monkeypatch.setenv("TRTC_SILU_QUANT_CTAS", str(ctas))
    monkeypatch.setenv("TRTC_SILU_QUANT_NV", str(nv))
    x = _silu_input(rows, inter, dtype)
    q, s, err = _fused_silu_quantize(lib, x, target)
    q_ref, s_ref = lib.quantize_per_token(lib.silu_mul(x), target)
    assert err == 0
    assert torch.equal(s, s_ref.float()) and _same_codes(q, q_ref)


def test_silu_mul_quantize_wide_rows_need_clusters(lib):
    """Rows over 8192 vectors: split over a cluster on sm_90+, declined (both kernels) before."""
    x = _silu_input(2, 66560, torch.bfloat16)
    _, _, err = _fused_silu_quantize(lib, x, "fp8")
    assert (err == 0) == (torch.cuda.get_device_capability() >= (9, 0))


def test_fused_quantize_ops_errors(lib):
    x = torch.randn(4, 256, device=DEV)
    with pytest.raises(UnsupportedOpError, match="target"):
        lib.rms_norm_quantize(x, torch.ones(256, device=DEV), None, 1e-6, "int4")
    with pytest.raises(UnsupportedOpError, match="float32, float16 or bfloat16"):
        lib.silu_mul_quantize(x.to(torch.float64), "fp8")
