"""Micro-benchmark: the streaming floor of the paged decode kernels' copies (GPU, cupy).

The pool layout is DESIGN.md's [N, b, kv_heads, head_dim]: one token's row of one kv head is
head_dim x (1 or 2) bytes and the next token's row of that head sits kv_heads rows further, so
a decode CTA of one kv head reads 128-byte pieces 1 KB apart from an fp8 pool (256 bytes 2 KB
apart from a bf16 one). This kernel streams K and V the way the tensor-core decode kernel does
(one CTA of 8 warps per (sequence, kv head); each warp takes every 8th tile of 2 KB of K and
2 KB of V through a 3- or 6-stage cp.async ring, 16 bytes a lane; blocks of 16 slots in a random
order), computes nothing, and times it for CTAs of 1, 2, 4 or 8 adjacent kv heads (h x 128
contiguous bytes of fp8 a token; the keys of a sequence are then split over h CTAs, so the grid
stays B x kv_heads CTAs). The launches cycle through pools of >= 256 MiB, as bench_kv_quant.py
does, so every byte comes from DRAM; --dirty-flush writes 256 MiB before each series instead of
relying on that alone (the dirty lines then compete with the reads). --hints times the copies
with each named L2 hint of HINTS (a prefetch size, an evict-first policy, or both); --pools,
--heads-per-cta and --stages narrow the table.

    python3 benchmarks/kv_stride_micro.py [--batch 16] [--ctx 4096] [--dirty-flush]
        [--pools fp8,bf16] [--heads-per-cta 1,2,4,8] [--stages 3,6] [--hints none,128B,...]
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np

# The copy's L2 hint, by the number HINT the source is compiled with (see HINTS).
HINTS = {"none": 0, "128B": 1, "256B": 2, "evict_first": 3, "256B+evict_first": 4}
SRC = r'''
__device__ __forceinline__ void copy16(unsigned dst, const char* src, unsigned long long policy) {
#if HINT == 0
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(dst), "l"(src));
#elif HINT == 1
  asm volatile("cp.async.cg.shared.global.L2::128B [%0], [%1], 16;" :: "r"(dst), "l"(src));
#elif HINT == 2
  asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16;" :: "r"(dst), "l"(src));
#elif HINT == 3
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;" :: "r"(dst), "l"(src), "l"(policy));
#else
  asm volatile("cp.async.cg.shared.global.L2::cache_hint.L2::256B [%0], [%1], 16, %2;" :: "r"(dst), "l"(src), "l"(policy));
#endif
}
extern "C" __global__ void __launch_bounds__(256) stream_kv(
    const char* __restrict__ kpool, const char* __restrict__ vpool, const int* __restrict__ tables,
    int blocks_per_seq, int kv_heads, int row_bytes, int heads_per_cta, int keys_per_cta,
    int stages, int* out) {
  extern __shared__ __align__(128) char ring[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int groups = kv_heads / heads_per_cta, splits = heads_per_cta;
  const int seq = blockIdx.x / (groups * splits);
  const int rest = blockIdx.x % (groups * splits);
  const int group = rest % groups, split = rest / groups;
  const int piece = row_bytes * heads_per_cta;            // contiguous bytes per token
  const int tile_keys = 2048 / piece;                     // 2 KB of K (and of V) per tile
  const int chunks_per_row = piece / 16;
  const long long slot_bytes = (long long)kv_heads * row_bytes;
  constexpr int kStage = 4096;                            // K and V of one tile
  char* my = ring + warp * stages * kStage;
  const int key0 = split * keys_per_cta, tiles = keys_per_cta / tile_keys;
  const int* bt = tables + (long long)seq * blocks_per_seq;
  int acc = 0, issued = 0;
  unsigned long long policy = 0;
#if HINT >= 3
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
#endif
  for (int tile = warp; tile < tiles + 8 * stages; tile += 8) {
    if (tile < tiles) {
      const int key = key0 + tile * tile_keys;
      const long long base = ((long long)bt[key / 16] * 16 + key % 16) * slot_bytes + group * piece;
      char* st = my + (issued % stages) * kStage;
      for (int c = lane; c < 128; c += 32) {
        const int r = c / chunks_per_row, col = (c % chunks_per_row) * 16;
        unsigned dk = (unsigned)__cvta_generic_to_shared(st + c * 16);
        unsigned dv = (unsigned)__cvta_generic_to_shared(st + 2048 + c * 16);
        copy16(dk, kpool + base + r * slot_bytes + col, policy);
        copy16(dv, vpool + base + r * slot_bytes + col, policy);
      }
    }
    asm volatile("cp.async.commit_group;");
    ++issued;
    if (issued >= stages) {  // the oldest group has landed
      if (stages == 3) asm volatile("cp.async.wait_group 2;");
      else asm volatile("cp.async.wait_group 5;");
      __syncwarp();
      acc += my[((issued - stages) % stages) * kStage + lane * 4];
    }
  }
  if (acc == 12345) out[0] = acc;
}
'''


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--dirty-flush", action="store_true",
                    help="also write 256 MiB before each timed series (dirty L2 lines to write back)")
    ap.add_argument("--pools", default="fp8,bf16", help="pool types to stream: fp8, bf16")
    ap.add_argument("--heads-per-cta", default="1,2,4,8",
                    help="adjacent kv heads a CTA reads (bf16: 1 and 2 only)")
    ap.add_argument("--stages", default="3,6", help="cp.async ring stages per warp: 3, 6")
    ap.add_argument("--hints", default="none", help=f"the copies' L2 hints, of {', '.join(HINTS)}")
    args = ap.parse_args()
    hints = args.hints.split(",")
    for name in hints:
        if name not in HINTS:
            ap.error(f"unknown hint {name!r}; choose from {', '.join(HINTS)}")
    pool_names = args.pools.split(",")
    for name in pool_names:
        if name not in ("fp8", "bf16"):
            ap.error(f"unknown pool {name!r}; choose from fp8, bf16")
    try:
        heads = [int(x) for x in args.heads_per_cta.split(",")]
        stage_counts = [int(x) for x in args.stages.split(",")]
    except ValueError as e:
        ap.error(str(e))
    if any(hc not in (1, 2, 4, 8) or args.kv_heads % hc for hc in heads):
        ap.error(f"--heads-per-cta: each of 1, 2, 4 or 8, dividing --kv-heads {args.kv_heads}")
    if any(st not in (3, 6) for st in stage_counts):
        ap.error("--stages: 3 or 6 (the kernel's cp.async waits are written for those)")
    import cupy as cp  # here, so that --help and argument errors need no GPU

    kernels = {}
    for name in hints:
        kernels[name] = cp.RawKernel(f"#define HINT {HINTS[name]}\n" + SRC, "stream_kv")
        kernels[name].max_dynamic_shared_size_bytes = 200 * 1024
    b, ctx, h = args.batch, args.ctx, args.kv_heads
    nblocks = b * ctx // 16
    tables = cp.asarray(np.random.default_rng(0).permutation(nblocks).astype(np.int32))
    flush = cp.empty(256 << 20, dtype=cp.uint8)
    out = cp.zeros(1, dtype=cp.int32)
    print(f"B={b} ctx={ctx} kv_heads={h}, blocks of 16 slots in random order, launches cycling through "
          f"pools of >= 256 MiB{' after a 256 MiB write' if args.dirty_flush else ''}")
    print(f"{'pool':>5} {'row B':>6} {'heads/CTA':>9} {'contig B':>8} {'stages':>6} {'hint':>16} "
          f"{'CTAs':>5} {'MB':>6} {'us':>7} {'TB/s':>6}")
    for elem in [{"fp8": 1, "bf16": 2}[x] for x in pool_names]:
        row = 128 * elem
        pool_bytes = nblocks * 16 * h * row
        copies = max(4, -(-(256 << 20) // (2 * pool_bytes)))  # K and V pools cycled: L2 stays cold
        pools = [cp.ones(pool_bytes, dtype=cp.uint8) for _ in range(2 * copies)]
        for hc, stages, hint in [(hc, st, hint) for hc in heads for st in stage_counts
                                 for hint in hints]:
            if elem == 2 and hc > 2:
                continue
            kern = kernels[hint]
            keys = ctx // hc                   # a sequence's keys split over hc CTAs
            smem = 8 * stages * 4096
            grid = (b * h,)

            def launch(i):
                kern(grid, (256,), (pools[2 * i], pools[2 * i + 1], tables, cp.int32(ctx // 16),
                                    cp.int32(h), cp.int32(row), cp.int32(hc), cp.int32(keys),
                                    cp.int32(stages), out), shared_mem=smem)

            for i in range(copies):
                launch(i)
            times = []
            for _ in range(args.repeats):
                if args.dirty_flush:
                    flush.fill(0)
                e0, e1 = cp.cuda.Event(), cp.cuda.Event()
                e0.record()
                for i in range(copies):
                    launch(i)
                e1.record()
                e1.synchronize()
                times.append(cp.cuda.get_elapsed_time(e0, e1) * 1000 / copies)
            us = statistics.median(times)
            nbytes = 2 * b * ctx * h * row
            print(f"{'fp8' if elem == 1 else 'bf16':>5} {row:6d} {hc:9d} {row * hc:8d} {stages:6d} "
                  f"{hint:>16} {grid[0]:5d} {nbytes / 1e6:6.1f} {us:7.1f} {nbytes / us / 1e6:6.2f}", flush=True)
        del pools
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
