"""Run one kernel case a few times, for a profiler to capture (Nsight Compute on the GPU machine).

Each case warms up, then calls the kernel `--calls` times (default 4) on the same inputs; profile
one of the later launches, e.g.

    ncu --clock-control none --kernel-name regex:gemv --launch-skip 3 --launch-count 1 \\
        --section SpeedOfLight --section WarpStateStats python3 benchmarks/ncu_cases.py int4_m1

Cases: int4_m1, int4_m8, int4_m16 (WeightOnlyGemm int4 g128 with zeros, 4096 -> 14336),
int8_m1, int4_m64_gate_up_8b / int4_m64_down_8b_unsplit / int8_m64_down_8b_unsplit (the Hopper
prefill kernel at 64 tokens on llama-3.1-8b's gate_up, and on its down projection with K
unsplit), decode_bf16_b64 / decode_fp8_b64 / decode_int8_b64 (paged decode, GQA 32/8, head_dim
128, ctx 4096), decode_b64_2048 (bf16, ctx 2048), decode_b512_hkv1 (the same bytes with one kv
head: each block's keys contiguous), sdpa_decode_b64_2048 (torch SDPA over a contiguous cache,
the reference of decode_b64_2048), prefill_8x512 (bf16, 8 new sequences of 512), prefill_32x128
(32 new sequences of 128: one tile each). Times nothing
itself: bench_quant.py and bench_kernels.py / bench_kv_quant.py give the timings.
"""

from __future__ import annotations

import argparse
import sys

import torch

from bench_kernels import paged_case
from bench_kv_quant import with_pool
from bench_quant import quantized_weight
from trtcompile.ops import cuda_kernels

DEV = "cuda"


def gemm_case(lib, m: int, bits: int, group: int, k: int = 4096, n: int = 14336, **settings):
    q, s, z = quantized_weight(k, n, bits, group, zeros=bits == 4)
    x = torch.randn(m, k, device=DEV, dtype=torch.bfloat16)
    for attr, value in settings.items():   # the library's kernel choices, e.g. K splits
        setattr(lib, attr, value)
    return lambda: lib.weight_only_gemm(x, q, s, z, bits, group)


def prefill_case(lib, n: int, new: int):
    case = paged_case([(0, new)] * n)
    return lambda: lib.paged_attention(**case)


def sdpa_decode_case(b: int, ctx: int, hq: int = 32, hkv: int = 8, d: int = 128):
    q = torch.randn(b, hq, 1, d, device=DEV, dtype=torch.bfloat16)
    k = torch.randn(b, hkv, ctx, d, device=DEV, dtype=torch.bfloat16)
    v = torch.randn_like(k)
    return lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)


def decode_case(lib, b: int, ctx: int, pool: torch.dtype, hq: int = 32, hkv: int = 8):
    case = with_pool(paged_case([(ctx - 1, 1)] * b, hq=hq, hkv=hkv), pool)
    return lambda: lib.paged_attention(**case)


CASES = {
    "int4_m1": lambda lib: gemm_case(lib, 1, 4, 128),
    "int4_m8": lambda lib: gemm_case(lib, 8, 4, 128),
    "int4_m16": lambda lib: gemm_case(lib, 16, 4, 128),
    "int8_m1": lambda lib: gemm_case(lib, 1, 8, 0),
    "int4_m64_gate_up_8b": lambda lib: gemm_case(lib, 64, 4, 128, 4096, 28672),
    "int4_g32_m64_gate_up_8b": lambda lib: gemm_case(lib, 64, 4, 32, 4096, 28672),
    "int4_m64_down_8b_unsplit": lambda lib: gemm_case(lib, 64, 4, 128, 14336, 4096,
                                                      packed_k_splits=1),
    "int8_m64_down_8b_unsplit": lambda lib: gemm_case(lib, 64, 8, 0, 14336, 4096,
                                                      packed_k_splits=1),
    "decode_bf16_b64": lambda lib: decode_case(lib, 64, 4096, torch.bfloat16),
    "decode_fp8_b64": lambda lib: decode_case(lib, 64, 4096, torch.float8_e4m3fn),
    "decode_fp8_b16": lambda lib: decode_case(lib, 16, 4096, torch.float8_e4m3fn),
    "decode_bf16_b16": lambda lib: decode_case(lib, 16, 4096, torch.bfloat16),
    "decode_int8_b64": lambda lib: decode_case(lib, 64, 4096, torch.int8),
    "decode_b64_2048": lambda lib: decode_case(lib, 64, 2048, torch.bfloat16),
    "decode_b512_hkv1": lambda lib: decode_case(lib, 512, 2048, torch.bfloat16, hq=4, hkv=1),
    "sdpa_decode_b64_2048": lambda lib: sdpa_decode_case(64, 2048),
    "prefill_8x512": lambda lib: prefill_case(lib, 8, 512),
    "prefill_32x128": lambda lib: prefill_case(lib, 32, 128),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--calls", type=int, default=4)
    args = ap.parse_args()
    fn = CASES[args.case](cuda_kernels.load())
    for _ in range(args.calls):
        fn()
    torch.cuda.synchronize()
    return 0


if __name__ == "__main__":
    sys.exit(main())
