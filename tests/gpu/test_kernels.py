"""CUDA kernels (build/libtrtcompile_kernels.so) against the plain-torch reference."""

from __future__ import annotations

import math
import zlib

import pytest
import torch

from trtcompile.ops import reference

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

DEV = "cuda"
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# max |out - ref| allowed; attention outputs are averages of N(0, 1) values
ATOL = {torch.float32: 2e-4, torch.float16: 4e-3, torch.bfloat16: 3e-2}
POOL_ATOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}  # k/v as stored


@pytest.fixture(scope="module")
def lib():
    from trtcompile.ops import cuda_kernels

    return cuda_kernels.load()


def _close(out, ref, atol, rtol=0.0):
    assert out.shape == ref.shape
    assert torch.isfinite(out).all()
    excess = (out.float() - ref.float()).abs() - rtol * ref.float().abs()
    err = excess.max().item()
    assert err <= atol, f"max error beyond rtol*|ref| {err} > {atol}"


# ---------------------------------------------------------------- rmsnorm / silu_mul

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,hidden", [(1, 64), (7, 576), (33, 4096), (5, 8192), (3, 1000),
                                         (2, 20480)])
@pytest.mark.parametrize("residual", [False, True])
def test_rms_norm(lib, dtype, rows, hidden, residual):
    g = torch.Generator(device=DEV).manual_seed(rows * hidden)
    x = torch.randn(rows, hidden, device=DEV, generator=g).to(dtype)
    w = (1 + 0.1 * torch.randn(hidden, device=DEV, generator=g)).to(dtype)
    r = torch.randn(rows, hidden, device=DEV, generator=g).to(dtype) if residual else None
    y, ro = lib.rms_norm(x, w, r, 1e-5)
    y_ref, ro_ref = reference.rms_norm(x, w, r, epsilon=1e-5)
    tol = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}[dtype]
    _close(y, y_ref, tol * 4)
    if residual:
        assert torch.equal(ro, ro_ref)
    else:
        assert ro is None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,inter", [(1, 8), (17, 1536), (64, 4096), (5, 1001)])
def test_silu_mul(lib, dtype, rows, inter):
    x = (2 * torch.randn(rows, 2 * inter, device=DEV)).to(dtype)
    rtol = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 8e-3}[dtype]
    _close(lib.silu_mul(x), reference.silu_mul(x), 1e-5, rtol)


def test_silu_mul_strided_view(lib):
    x = torch.randn(3, 10, 256, device=DEV, dtype=torch.bfloat16)[:, ::2]
    _close(lib.silu_mul(x), reference.silu_mul(x), 1e-5, 8e-3)


# ---------------------------------------------------------------- paged attention

def _make_case(seqs, hq, hkv, d, block, dtype, *, layers=2, layer_idx=1, rotary_dim=None,
               fused=False, seed=0, extra_blocks=7):
    """seqs: [(cached, new)]. Returns kwargs for reference.paged_attention (with its own pool)."""
    g = torch.Generator(device=DEV).manual_seed(seed)
    lens = [c + n for c, n in seqs]
    nblk = [math.ceil(x / block) for x in lens]
    num_blocks = sum(nblk) + extra_blocks
    perm = torch.randperm(num_blocks, generator=torch.Generator().manual_seed(seed)).tolist()
    max_blocks = max(nblk) + 1
    tables = torch.zeros(len(seqs), max_blocks, dtype=torch.int32)
    i = 0
    for s, nb in enumerate(nblk):
        tables[s, :nb] = torch.tensor(perm[i:i + nb])
        i += nb
    positions, slots, qsl = [], [], [0]
    for s, (c, n) in enumerate(seqs):
        for p in range(c, c + n):
            positions.append(p)
            slots.append(int(tables[s, p // block]) * block + p % block)
        qsl.append(qsl[-1] + n)
    t = qsl[-1]
    kv = torch.randn(layers, 2, num_blocks, block, hkv, d, device=DEV, generator=g).to(dtype)
    width = (hq + 2 * hkv) * d
    qkv = torch.randn(t, width + (8 if not fused else 0), device=DEV, generator=g).to(dtype)
    if fused:
        q, k, v = qkv, None, None
    else:  # strided views into one buffer (row stride != width)
        q, k, v = qkv[:, :hq * d], qkv[:, hq * d:(hq + hkv) * d], qkv[:, (hq + hkv) * d:width]
    rot = d if rotary_dim is None else rotary_dim
    inv_freq = (1.0 / (10000 ** (torch.arange(0, rot, 2, device=DEV).float() / rot))) if rot else None
    i32 = dict(dtype=torch.int32, device=DEV)
    return dict(q=q, k=k, v=v, positions=torch.tensor(positions, **i32),
                query_start_loc=torch.tensor(qsl, **i32), seq_lens=torch.tensor(lens, **i32),
                block_tables=tables.to(DEV), slot_mapping=torch.tensor(slots, **i32),
                kv_cache=kv, inv_freq=inv_freq, kv_scales=None, layer_idx=layer_idx,
                num_heads=hq, num_kv_heads=hkv, head_dim=d, scale=d ** -0.5,
                sliding_window=0, rotary_dim=rot, rotary_scaling=1.0, fused_qkv=int(fused))


def _run_both(lib, case):
    kv_ref = case["kv_cache"].clone()
    ref_args = dict(case, kv_cache=kv_ref)
    ref = reference.paged_attention(**{k: ref_args[k] for k in (
        "q", "k", "v", "positions", "query_start_loc", "seq_lens", "block_tables",
        "slot_mapping", "kv_cache", "inv_freq", "kv_scales")},
        **{k: ref_args[k] for k in ("layer_idx", "num_heads", "num_kv_heads", "head_dim",
                                    "scale", "sliding_window", "rotary_dim", "rotary_scaling",
                                    "fused_qkv")})
    out = lib.paged_attention(**case)
    torch.cuda.synchronize()
    return out, ref, case["kv_cache"], kv_ref


def _check_output_and_pool(lib, case, dtype):
    """The kernels' output and pool against the reference's."""
    out, ref, kv, kv_ref = _run_both(lib, case)
    _close(out, ref, ATOL[dtype])
    _close(kv, kv_ref, POOL_ATOL[dtype])


MIXED = [(0, 37), (100, 1), (50, 64), (17, 1), (0, 1), (200, 130), (3, 2), (64, 1)]
DECODE = [(c, 1) for c in (1, 15, 16, 17, 255, 1000, 63, 2047)]
SHAPES = {  # name: (hq, hkv, d, block)
    "gqa32_8_d128": (32, 8, 128, 16),
    "smollm_9_3_d64": (9, 3, 64, 16),
    "mqa8_1_d128_b32": (8, 1, 128, 32),
    "mha4_d64_b8": (4, 4, 64, 8),
    "gqa12_2_d128_b64": (12, 2, 128, 64),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("batch", ["mixed", "decode", "prefill_only"])
def test_paged_attention(lib, dtype, shape, batch):
    hq, hkv, d, block = SHAPES[shape]
    seqs = {"mixed": MIXED, "decode": DECODE, "prefill_only": [(0, 65), (40, 200)]}[batch]
    case = _make_case(seqs, hq, hkv, d, block, dtype, seed=zlib.crc32(f"{shape}{batch}".encode()) % 1000)
    _check_output_and_pool(lib, case, dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("window", [1, 24, 100])
def test_paged_attention_sliding_window(lib, dtype, window):
    case = _make_case(MIXED + [(300, 1), (90, 70)], 16, 4, 128, 16, dtype, seed=window)
    case["sliding_window"] = window
    out, ref, _, _ = _run_both(lib, case)
    _close(out, ref, ATOL[dtype])


# Prefill chunks around the fast kernels' edges: 64-row tiles and 64-key tiles (lengths of
# 63/64/65/128/129), chunks starting mid-block and mid-tile over a cached prefix, many tiles,
# short chunks (2, 3 rows) and a long cached prefix.
PREFILL_EDGES = [(0, 63), (0, 64), (0, 65), (64, 64), (7, 129), (61, 67), (130, 2), (1000, 190),
                 (0, 513), (0, 2), (5, 3), (1536, 77)]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", ["gqa32_8_d128", "smollm_9_3_d64", "mqa8_1_d128_b32"])
@pytest.mark.parametrize("window", [0, 70])
@pytest.mark.parametrize("kernel", ["default", "wg", "wg_cp", "wg2", "mma"])
def test_paged_attention_prefill_tile_edges(lib, dtype, shape, window, kernel, monkeypatch):
    """default: the kernel the device gets for this span (on sm_90a, head_dim 128: the
    warp-specialized kernel, the block tables span >= 1024 keys); wg / wg2: the one-warpgroup /
    warp-specialized wgmma kernel (head_dim 128 on sm_90a); wg_cp: the one-warpgroup kernel
    with 16-byte copies instead of tensor copies; mma: the mma.sync kernel."""
    _pick_prefill_kernel(kernel, monkeypatch)
    hq, hkv, d, block = SHAPES[shape]
    case = _make_case(PREFILL_EDGES, hq, hkv, d, block, dtype, seed=window + d)
    case["sliding_window"] = window
    _check_output_and_pool(lib, case, dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("block", [4, 8, 16, 128])
@pytest.mark.parametrize("kernel", ["wg", "wg_cp", "wg2", "mma"])
def test_paged_attention_prefill_stale_pool(lib, dtype, block, kernel, monkeypatch):
    """Every pool slot but the cached keys' holds NaN before the call (never written, or stale
    from another sequence): no prefill kernel may let the keys past a sequence's length reach
    the output (a zero probability times NaN is NaN). Block sizes around the tensor copies'
    boxes (8, 16, and 128: longer than a 64-key tile) and one they do not take (4)."""
    _pick_prefill_kernel(kernel, monkeypatch)
    seqs = [(0, 63), (7, 129), (0, 300), (61, 67), (0, 2)]
    case = _make_case(seqs, 16, 4, 128, block, dtype, seed=block)
    _nan_past_cached(case, seqs, block)
    out, ref, _, _ = _run_both(lib, case)
    assert torch.isfinite(out).all()
    _close(out, ref, ATOL[dtype])


def _pick_prefill_kernel(kernel, monkeypatch):
    """Environment overrides that make the launcher take one prefill kernel (where the device
    has it: the wgmma kernels need sm_90a and head_dim 128, else the mma.sync kernel runs)."""
    if kernel == "mma":
        monkeypatch.setenv("TRTC_PA_PREFILL_MMA", "1")
    if kernel in ("wg", "wg_cp", "wg2"):
        monkeypatch.setenv("TRTC_PA_PREFILL_WG", "2" if kernel == "wg2" else "1")
    if kernel == "wg_cp":
        monkeypatch.setenv("TRTC_PA_PREFILL_TMA", "0")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("rotary_dim", [0, 40, 64])
@pytest.mark.parametrize("kernel", ["wg", "wg2"])
def test_paged_attention_prefill_d128_rotary_dims(lib, dtype, rotary_dim, kernel, monkeypatch):
    """head_dim 128 prefill with q not rotated (0), rotated in place after staging (40: not a
    multiple of 16) and rotated as staged (64), fused q/k/v rows, block size 32; both wgmma
    kernels (elsewhere than sm_90a the mma.sync kernel either way)."""
    monkeypatch.setenv("TRTC_PA_PREFILL_WG", "1" if kernel == "wg" else "2")
    case = _make_case([(0, 300), (45, 130), (0, 2), (200, 129)], 16, 4, 128, 32, dtype,
                      rotary_dim=rotary_dim, fused=True, seed=rotary_dim + 3)
    _check_output_and_pool(lib, case, dtype)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("rotary_dim", [0, 32])
def test_paged_attention_fused_qkv_partial_rotary(lib, dtype, rotary_dim):
    case = _make_case(MIXED, 8, 2, 64, 16, dtype, rotary_dim=rotary_dim, fused=True, seed=5)
    case["rotary_scaling"] = 0.9
    out, ref, kv, kv_ref = _run_both(lib, case)
    _close(out, ref, ATOL[dtype])
    _close(kv, kv_ref, 1.6e-2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("seqs", [[(4095, 1)], [(3000, 1), (10, 1)], [(1500, 1), (700, 300)]])
def test_paged_attention_split_k(lib, dtype, seqs):
    """Few sequences, long context: the decode path splits the keys over many CTAs."""
    case = _make_case(seqs, 32, 8, 128, 16, dtype, seed=len(seqs))
    out, ref, _, _ = _run_both(lib, case)
    _close(out, ref, ATOL[dtype])


@pytest.mark.parametrize("fused", ["1", "0"])
def test_paged_attention_split_counters_left_zero(lib, monkeypatch, fused):
    """Split-K decode counts finished splits in a buffer the library keeps across calls (no
    launch zeroes it): the split that merges zeroes its counter again, so repeated calls of
    other shapes (one sequence, two, one beside a prefill) stay exact and leave it all zero."""
    monkeypatch.setenv("TRTC_PA_DECODE_FUSED", fused)
    for rep in range(3):
        for seqs in ([(4095, 1)], [(3000, 1), (10, 1)], [(1500, 1), (700, 300)]):
            case = _make_case(seqs, 32, 8, 128, 16, torch.bfloat16, seed=rep)
            out, ref, _, _ = _run_both(lib, case)
            _close(out, ref, ATOL[torch.bfloat16])
            counters = lib._counters[torch.cuda.current_device()]
            assert not counters.any(), f"split counters left non-zero after {seqs}"


@pytest.mark.parametrize("fused", ["1", "0"])
@pytest.mark.parametrize("seqs", [[(4095, 1)], [(2047, 1)] * 8, [(1500, 1), (700, 300)]])
def test_paged_attention_new_keys_after_write(lib, monkeypatch, fused, seqs):
    """On sm_90+ the decode kernel starts while kv_write runs (fused: it stores the new keys
    itself). The slots of this step's tokens hold NaN before each call: a key read from the pool
    before it was stored makes the output NaN."""
    monkeypatch.setenv("TRTC_PA_DECODE_FUSED", fused)
    for rep in range(20):
        case = _make_case(seqs, 32, 8, 128, 16, torch.bfloat16, seed=rep)
        layer = case["kv_cache"][case["layer_idx"]]  # [2, N, b, Hkv, D]
        slots = case["slot_mapping"].long()
        layer[:, slots // layer.shape[2], slots % layer.shape[2]] = float("nan")
        out, ref, _, _ = _run_both(lib, case)
        _close(out, ref, ATOL[torch.bfloat16])


# Decode kernels of 16-bit pools: tensor cores (the planner's pick for 4 or 8 heads per CTA: 8
# warps for these one-wave grids; variants of warps x ring stages) and the CUDA-core kernel
# (tuning overrides read at each call).
DECODE_VARIANTS = {"mma": {}, "mma_4x2": {"TRTC_PA_DECODE_MMA": "4,2"},
                   "mma_4x3": {"TRTC_PA_DECODE_MMA": "4,3"},
                   "mma_8x3": {"TRTC_PA_DECODE_MMA": "8,3"},
                   "cuda_cores": {"TRTC_PA_DECODE_LEGACY": "1"}}


@pytest.mark.parametrize("variant", list(DECODE_VARIANTS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", ["gqa32_8_d128", "smollm_9_3_d64", "mqa8_1_d128_b32",
                                   "gqa12_2_d128_b64"])
@pytest.mark.parametrize("nsplit", [1, 3, 32])
@pytest.mark.parametrize("window", [0, 100])
def test_paged_attention_decode_variants(lib, monkeypatch, variant, dtype, shape, nsplit, window):
    """4 heads per CTA (group 4; group 3: a padded one), 8 (group 8; group 6 padded), head_dim
    64 and 128, forced split counts (32: splits with no keys for the short sequences)."""
    for k, v in dict(DECODE_VARIANTS[variant], TRTC_PA_NSPLIT=str(nsplit)).items():
        monkeypatch.setenv(k, v)
    hq, hkv, d, block = SHAPES[shape]
    case = _make_case(DECODE + [(4000, 1), (130, 1)], hq, hkv, d, block, dtype,
                      seed=nsplit + window + d)
    case["sliding_window"] = window
    out, ref, _, _ = _run_both(lib, case)
    _close(out, ref, ATOL[dtype])


# New keys at the edges of the fused decode's key ranges (multiples of 64 or 128 keys): the only
# key (0 cached), the first key of a split (64, 128 cached), the last key of one (63, 127).
FUSED_EDGES = [(0, 1), (64, 1), (63, 1), (128, 1), (127, 1), (4000, 1), (16, 1), (1000, 1)]


@pytest.mark.parametrize("fused", ["1", "0"])
@pytest.mark.parametrize("warps", ["4,3", "8,3"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", ["gqa32_8_d128", "smollm_9_3_d64", "gqa12_2_d128_b64"])
@pytest.mark.parametrize("nsplit", [1, 2, 16])
@pytest.mark.parametrize("window", [0, 100])
def test_paged_attention_fused_decode(lib, monkeypatch, fused, warps, dtype, shape, nsplit,
                                      window):
    """All-decode batches on tensor cores: the decode kernel stores the step's k/v itself
    (fused), or runs after kv_write (TRTC_PA_DECODE_FUSED=0); output and pool against the
    reference, with the new key alone in its split, first or last in it."""
    monkeypatch.setenv("TRTC_PA_DECODE_FUSED", fused)
    monkeypatch.setenv("TRTC_PA_DECODE_MMA", warps)
    monkeypatch.setenv("TRTC_PA_NSPLIT", str(nsplit))
    hq, hkv, d, block = SHAPES[shape]
    case = _make_case(FUSED_EDGES, hq, hkv, d, block, dtype, seed=nsplit + window)
    case["sliding_window"] = window
    _check_output_and_pool(lib, case, dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape,batch", [("gqa32_8_d128", 40), ("gqa32_8_d128", 64),
                                         ("llama1b_32_8_d64", 40), ("llama1b_32_8_d64", 64)])
def test_paged_attention_decode_planned_grids(lib, monkeypatch, dtype, shape, batch):
    """All-decode batches of more CTAs than SMs, as planned by default (16-bit pools: the 4-warp
    kernel runs it fused where one wave of it holds the grid, at head_dim 64 one and a half):
    output and pool against the reference, and the fused output against the kernels after
    kv_write (TRTC_PA_DECODE_FUSED=0), with the same pool. The two may differ by one rounding of
    the output (the fused kernel weighs the step's own key in fp32, the other after rounding its
    probability to the 16-bit type): bf16, B=64 at head_dim 64, 0.0078 apart, each within 0.0078
    of the reference."""
    hq, hkv, d, block = (32, 8, 64, 16) if shape == "llama1b_32_8_d64" else SHAPES[shape]
    seqs = [((37 * i) % 700 + (i % 3) * 16, 1) for i in range(batch)]
    case = _make_case(seqs, hq, hkv, d, block, dtype, seed=batch + d)
    _check_output_and_pool(lib, dict(case, kv_cache=case["kv_cache"].clone()), dtype)
    outs, pools = _run_under(lib, monkeypatch, case, "TRTC_PA_DECODE_FUSED", ("1", "0"))
    assert torch.equal(pools[0], pools[1])
    _close(outs[0], outs[1], ATOL[dtype] / 4, rtol=torch.finfo(dtype).eps)


def _nan_past_cached(case, seqs, block):
    """Sets every pool slot but the sequences' cached keys to NaN (never written, or stale from
    another sequence); the new keys' slots are written by the call."""
    tables = case["block_tables"].cpu()
    cached = torch.zeros(case["kv_cache"].shape[2] * block, dtype=torch.bool)
    for s, (c, _) in enumerate(seqs):
        for pos in range(c):
            cached[int(tables[s, pos // block]) * block + pos % block] = True
    kv = case["kv_cache"]
    slots = kv.view(kv.shape[0], 2, -1, *kv.shape[4:])  # [layers, 2, slots, hkv, d]
    if kv.dtype in (torch.float8_e4m3fn, torch.int8):  # no NaN code in int8: its largest one
        slots.view(torch.uint8)[:, :, ~cached.to(DEV)] = 0x7F
    else:
        slots[:, :, ~cached.to(DEV)] = float("nan")


def _run_under(lib, monkeypatch, case, var, values):
    """The kernels' outputs and pools for case (each run on a copy of its pool) with the
    environment variable var set to each of values in turn (the last stays set)."""
    outs, pools = [], []
    for value in values:
        monkeypatch.setenv(var, value)
        run = dict(case, kv_cache=case["kv_cache"].clone())
        outs.append(lib.paged_attention(**run))
        pools.append(run["kv_cache"])
    torch.cuda.synchronize()
    return outs, pools


# Sequences whose lengths end inside a tile of 16 keys and on its edges.
TMA_DECODE = [(0, 1), (14, 1), (15, 1), (16, 1), (30, 1), (1000, 1), (4000, 1), (130, 1)]


@pytest.mark.parametrize("pool", ["16bit", "fp8", "int8"])
@pytest.mark.parametrize("fused", ["1", "0"])
@pytest.mark.parametrize("warps", ["4,2", "4,3", "8,3"])
@pytest.mark.parametrize("shape", ["gqa32_8_d128", "smollm_9_3_d64", "mqa8_1_d128_b32",
                                   "gqa12_2_d128_b64", "mha4_d64_b8"])
@pytest.mark.parametrize("nsplit", [1, 3, 16])
def test_paged_attention_decode_tensor_copies(lib, monkeypatch, pool, fused, warps, shape, nsplit):
    """The tensor-core decode kernel with its tiles copied by tensor copies (sm_90a: the default
    where blocks hold >= 16 slots, but for the 16-bit 8-warp kernel and blocks of 8, which keep
    16-byte copies) gives the 16-byte-copy kernel's outputs bit for bit, over a pool whose
    slots past each sequence's keys hold NaN (the copies read whole 16-slot boxes)."""
    hq, hkv, d, block = SHAPES[shape]
    monkeypatch.setenv("TRTC_PA_DECODE_FUSED", fused)
    monkeypatch.setenv("TRTC_PA_DECODE_MMA", warps)
    monkeypatch.setenv("TRTC_PA_NSPLIT", str(nsplit))
    seqs = TMA_DECODE
    case = _make_case(seqs, hq, hkv, d, block, torch.bfloat16, seed=nsplit + d + block)
    if pool != "16bit":
        case = _quantized(case, POOLS[pool])
    _nan_past_cached(case, seqs, block)
    outs, pools = _run_under(lib, monkeypatch, case, "TRTC_PA_DECODE_TMA", ("1", "0"))
    assert torch.isfinite(outs[0]).all()
    assert torch.equal(outs[0], outs[1])
    assert torch.equal(pools[0].view(torch.uint8), pools[1].view(torch.uint8))
    ref = _run_both(lib, dict(case, kv_cache=case["kv_cache"].clone()))[1]
    _close(outs[0], ref, QATOL if pool != "16bit" else ATOL[torch.bfloat16])


@pytest.mark.parametrize("ctx", [256, 1000])
def test_paged_attention_decode_many_waves(lib, ctx):
    """All-decode batches of many waves of short key ranges, as the planner plans them (on sm_90:
    three CTAs per SM with two-stage rings), against the reference."""
    g = torch.Generator().manual_seed(ctx)
    seqs = [(int(c), 1) for c in torch.randint(0, ctx, (256,), generator=g)] + [(ctx - 1, 1)]
    case = _make_case(seqs, 32, 8, 128, 16, torch.bfloat16, seed=ctx)
    _check_output_and_pool(lib, case, torch.bfloat16)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("rotary_dim", [128, 32])
def test_paged_attention_decode_unaligned_q(lib, dtype, rotary_dim):
    """q rows not 16-byte aligned: kv_write rotates q into the workspace, the decode kernel
    waits for it before reading q."""
    case = _make_case(DECODE, 32, 8, 128, 16, dtype, rotary_dim=rotary_dim, seed=21)
    q = case["q"]
    buf = torch.empty(q.shape[0], q.shape[1] + 1, device=DEV, dtype=dtype)
    buf[:, 1:] = q
    case["q"] = buf[:, 1:]
    case["rotary_scaling"] = 1.1
    out, ref, _, _ = _run_both(lib, case)
    _close(out, ref, ATOL[dtype])


def test_paged_attention_torch_op(lib):
    from trtcompile.ops import cuda_kernels, torch_ops  # noqa: F401

    cuda_kernels.register_cuda_impls()
    case = _make_case(MIXED, 9, 3, 64, 16, torch.bfloat16, seed=11)
    kv_ref = case["kv_cache"].clone()
    args = [case[k] for k in ("q", "k", "v", "positions", "query_start_loc", "seq_lens",
                              "block_tables", "slot_mapping", "kv_cache", "inv_freq", "kv_scales",
                              "layer_idx", "num_heads", "num_kv_heads", "head_dim", "scale",
                              "sliding_window", "rotary_dim", "rotary_scaling", "fused_qkv")]
    out = torch.ops.trtcompile.paged_attention(*args)
    args[8] = kv_ref
    ref = reference.paged_attention(*args[:11], **dict(zip(
        ("layer_idx", "num_heads", "num_kv_heads", "head_dim", "scale", "sliding_window",
         "rotary_dim", "rotary_scaling", "fused_qkv"), args[11:])))
    _close(out, ref, ATOL[torch.bfloat16])
    y, r = torch.ops.trtcompile.rms_norm(case["q"], torch.ones(case["q"].shape[-1], device=DEV,
                                                                dtype=torch.bfloat16), None, 1e-6)
    assert r is None and y.shape == case["q"].shape


def test_paged_attention_cuda_graph(lib):
    case = _make_case(DECODE, 32, 8, 128, 16, torch.bfloat16, seed=3)
    out0 = lib.paged_attention(**case)  # warm-up sizes the workspace
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = lib.paged_attention(**case)
    graph.replay()
    torch.cuda.synchronize()
    _close(out, out0, 0.0)


# ---------------------------------------------------------------- quantized (fp8 / int8) pool

POOLS = {"fp8": torch.float8_e4m3fn, "int8": torch.int8}


def _quantized(case, pool, absmax=4.0):
    """The case with its pool quantized to `pool` and per-layer scales (absmax / qmax: the
    rotated k of N(0, 1) inputs exceeds 4 at times, so saturation is exercised too)."""
    qmax = 448.0 if pool == torch.float8_e4m3fn else 127.0
    layers = case["kv_cache"].shape[0]
    g = torch.Generator(device=DEV).manual_seed(layers)
    scales = (absmax / qmax) * (0.8 + 0.4 * torch.rand(layers, 2, device=DEV, generator=g))
    kv = case["kv_cache"].float() / scales[:, :, None, None, None, None]
    return dict(case, kv_cache=reference.quantize_pool(kv, pool), kv_scales=scales)


def _close_pool(kv, kv_ref, scales, pool):
    """Pools equal but for rare one-code differences (rotary's cos/sin rounding differently)."""
    s = scales[:, :, None, None, None, None]
    a, b = kv.float() * s, kv_ref.float() * s
    # one code: a scale step (int8); a mantissa step, 1/8 of the larger magnitude (fp8 E4M3)
    step = s.expand_as(a) if pool == torch.int8 else a.abs().maximum(b.abs()) / 8
    assert ((a - b).abs() <= step * 1.001 + 1e-6).all()
    assert (a != b).float().mean().item() < 1e-3


QATOL = 4e-2   # outputs over the same quantized pool; a rare one-code difference moves them


@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("batch", ["mixed", "decode", "prefill_only"])
def test_paged_attention_quantized_pool(lib, pool, dtype, shape, batch):
    hq, hkv, d, block = SHAPES[shape]
    seqs = {"mixed": MIXED, "decode": DECODE, "prefill_only": [(0, 65), (40, 200)]}[batch]
    case = _make_case(seqs, hq, hkv, d, block, dtype,
                      seed=zlib.crc32(f"{shape}{batch}{pool}".encode()) % 1000)
    case = _quantized(case, POOLS[pool])
    out, ref, kv, kv_ref = _run_both(lib, case)
    _close(out, ref, max(QATOL, ATOL[dtype]))
    _close_pool(kv, kv_ref, case["kv_scales"], POOLS[pool])


@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", ["gqa32_8_d128", "smollm_9_3_d64", "gqa12_2_d128_b64"])
@pytest.mark.parametrize("nsplit", [1, 2, 16])
def test_paged_attention_quantized_fused_decode(lib, monkeypatch, pool, dtype, shape, nsplit):
    """Quantized pools, all-decode batches of one wave: the fused decode kernel stores the step's
    k/v codes itself. They equal kv_write's bit for bit (TRTC_PA_DECODE_FUSED=0), and the output
    equals the unfused kernels' and the reference's, with the new key alone in its split, first
    or last in it."""
    monkeypatch.setenv("TRTC_PA_NSPLIT", str(nsplit))
    hq, hkv, d, block = SHAPES[shape]
    case = _quantized(_make_case(FUSED_EDGES, hq, hkv, d, block, dtype, seed=nsplit + d), POOLS[pool])
    outs, pools = _run_under(lib, monkeypatch, case, "TRTC_PA_DECODE_FUSED", ("1", "0"))
    assert torch.equal(pools[0].view(torch.uint8), pools[1].view(torch.uint8))
    _close(outs[0], outs[1], QATOL)
    ref = _run_both(lib, dict(case, kv_cache=case["kv_cache"].clone()))[1]
    _close(outs[0], ref, max(QATOL, ATOL[dtype]))


@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize("seqs", [[(4095, 1)], [(3000, 1), (10, 1)], [(1500, 1), (700, 300)]])
def test_paged_attention_quantized_split_k(lib, pool, seqs):
    case = _quantized(_make_case(seqs, 32, 8, 128, 16, torch.bfloat16, seed=len(seqs)), POOLS[pool])
    out, ref, _, _ = _run_both(lib, case)
    _close(out, ref, QATOL)


@pytest.mark.parametrize("pool", list(POOLS))
def test_paged_attention_quantized_fused_partial_rotary_window(lib, pool):
    case = _make_case(MIXED + [(300, 1)], 8, 2, 64, 16, torch.bfloat16, rotary_dim=32,
                      fused=True, seed=9)
    case = dict(_quantized(case, POOLS[pool]), sliding_window=24)
    out, ref, kv, kv_ref = _run_both(lib, case)
    _close(out, ref, QATOL)
    _close_pool(kv, kv_ref, case["kv_scales"], POOLS[pool])


@pytest.mark.parametrize("variant", ["mma", "mma_8x3", "cuda_cores"])
@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", ["gqa32_8_d128", "smollm_9_3_d64", "gqa12_2_d128_b64"])
@pytest.mark.parametrize("nsplit", [1, 3])
def test_paged_attention_quantized_decode_variants(lib, monkeypatch, variant, pool, dtype, shape,
                                                   nsplit):
    """Decode over an fp8 / int8 pool: the tensor-core kernel (codes widened to an f16 tile, or
    at head_dim 128 made into mma operands in registers; group 3 and 6 give padded head chunks)
    and the CUDA-core one, against the reference."""
    for k, v in dict(DECODE_VARIANTS[variant], TRTC_PA_NSPLIT=str(nsplit)).items():
        monkeypatch.setenv(k, v)
    hq, hkv, d, block = SHAPES[shape]
    case = _make_case(DECODE + [(4000, 1), (130, 1)], hq, hkv, d, block, dtype,
                      seed=nsplit + d + len(pool))
    out, ref, _, _ = _run_both(lib, _quantized(case, POOLS[pool]))
    _close(out, ref, max(QATOL, ATOL[dtype]))


@pytest.mark.parametrize("q_scale", [1e6, 1e-6])
def test_paged_attention_quantized_decode_q_range(lib, q_scale):
    """The tensor-core kernel feeds q to f16 mma divided by a power of two per head: q far
    beyond the f16 range (bf16 q of 1e6) or far below it gives the reference's result."""
    case = _make_case(DECODE, 32, 8, 128, 16, torch.bfloat16, seed=5)
    case["q"] = (case["q"].float() * q_scale).to(torch.bfloat16)
    out, ref, _, _ = _run_both(lib, _quantized(case, POOLS["fp8"]))
    _close(out, ref, QATOL)


@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", ["gqa32_8_d128", "mqa8_1_d128_b32", "gqa12_2_d128_b64"])
@pytest.mark.parametrize("window", [0, 70])
@pytest.mark.parametrize("kernel", ["default", "wg", "wg2", "mma"])
def test_paged_attention_quantized_prefill_kernels(lib, monkeypatch, pool, dtype, shape, window, kernel):
    """Prefill over an fp8 / int8 pool on each kernel (on sm_90a wg: 64-row tiles widened by the
    warpgroup; wg2: 128-row tiles whose producer warpgroup widens the codes; elsewhere the
    mma.sync kernel), around the tiles' edges (PREFILL_EDGES), with and without a window."""
    _pick_prefill_kernel(kernel, monkeypatch)
    hq, hkv, d, block = SHAPES[shape]
    case = _make_case(PREFILL_EDGES, hq, hkv, d, block, dtype, seed=window + block + len(pool))
    case = dict(_quantized(case, POOLS[pool]), sliding_window=window)
    out, ref, kv, kv_ref = _run_both(lib, case)
    _close(out, ref, max(QATOL, ATOL[dtype]))
    _close_pool(kv, kv_ref, case["kv_scales"], POOLS[pool])


@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize("rotary_dim", [0, 40, 64])
@pytest.mark.parametrize("kernel", ["wg", "wg2"])
def test_paged_attention_quantized_prefill_stale_pool_rotary(lib, monkeypatch, pool, rotary_dim, kernel):
    """Prefill over a quantized pool whose slots past the cached keys hold the largest code (NaN
    for fp8): none reaches the output; q not rotated, rotated after staging (40) and as staged
    (64); fused q/k/v rows."""
    _pick_prefill_kernel(kernel, monkeypatch)
    seqs = [(0, 300), (45, 130), (0, 2), (200, 129)]
    case = _make_case(seqs, 16, 4, 128, 16, torch.bfloat16, rotary_dim=rotary_dim, fused=True,
                      seed=rotary_dim + 11)
    case = _quantized(case, POOLS[pool])
    _nan_past_cached(case, seqs, 16)
    out, ref, _, _ = _run_both(lib, case)
    assert torch.isfinite(out).all()
    _close(out, ref, QATOL)


@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize("shape", ["gqa32_8_d128", "smollm_9_3_d64"])
@pytest.mark.parametrize("kernel", ["default", "wg2"])
def test_paged_attention_quantized_prefill_q_range(lib, monkeypatch, pool, shape, kernel):
    """The prefill kernels over a quantized pool (wgmma at head_dim 128 on sm_90a, else
    mma.sync) feed q to f16 MMAs divided by a power of two per row: rows of one tile from 1e-6
    to 1e5 times N(0, 1) (beyond the f16 range both ways) give the reference's result, over new
    and cached keys."""
    _pick_prefill_kernel(kernel, monkeypatch)
    hq, hkv, d, block = SHAPES[shape]
    case = _make_case([(0, 70), (100, 130)], hq, hkv, d, block, torch.bfloat16, seed=6)
    tokens = case["q"].shape[0]
    rows = torch.logspace(-6, 5, tokens, device=DEV)[torch.randperm(tokens, device=DEV)]
    case["q"] = (case["q"].float() * rows.view(-1, *[1] * (case["q"].dim() - 1))).to(torch.bfloat16)
    out, ref, _, _ = _run_both(lib, _quantized(case, POOLS[pool]))
    _close(out, ref, QATOL)


def test_paged_attention_quantized_saturates(lib):
    """k / scale far beyond 448 or 127 stores the largest code, as the reference does."""
    for pool in POOLS.values():
        case = _quantized(_make_case([(0, 3)], 4, 4, 64, 16, torch.bfloat16, seed=2), pool,
                          absmax=0.05)
        out, ref, kv, kv_ref = _run_both(lib, case)
        assert torch.equal(kv.view(torch.uint8), kv_ref.view(torch.uint8))
        _close(out, ref, QATOL)


def test_paged_attention_quantized_pool_needs_scales(lib):
    from trtcompile.errors import UnsupportedOpError

    case = _make_case([(3, 1)], 4, 4, 64, 16, torch.float16, seed=1)
    case["kv_cache"] = case["kv_cache"].to(torch.int8)
    with pytest.raises(UnsupportedOpError):
        lib.paged_attention(**case)
