"""Micro-benchmark: how copies of 512 contiguous bytes per warp reach shared memory (GPU, cupy).

Streams a 512 MiB buffer into a 4-stage ring per warp and prints time and bandwidth per variant
and grid size. Modes (arguments; default 0 4 5 6):
  0  cp.async.cg, 16 bytes a lane, rows contiguous and 32-byte aligned in shared memory
  1  ld.global.nc.v4 then st.shared
  2  cp.async.bulk of 256 bytes by lanes 0 and 1, completion on an mbarrier
  3  cp.async.ca, 16 bytes a lane
  4  as 0, the 16-byte chunks of each 256-byte row XOR-swizzled by the row (the decode tile)
  5  as 0, the two 256-byte rows 272 bytes apart (the second one 16 bytes off a 32-byte granule)
  6  as 0, 32-byte pairs swizzled
Under Nsight Compute, e.g.
    ncu --kernel-name copy_k --launch-skip 3 --launch-count 1 \
        --metrics lts__t_sectors_srcunit_tex_op_read.sum python3 benchmarks/cp_async_micro.py 5
shows the L2 sectors read: 16.8M (the buffer's) for modes 0, 4 and 6, 25.2M for mode 5, whose
misaligned rows have each sector read twice (H100, session 8; docs/benchmarks.md).
"""
import sys

import cupy as cp

SRC = r'''
extern "C" __global__ void __launch_bounds__(128) copy_k(const char* __restrict__ src, long long nbytes, int* out, int mode) {
  constexpr int STAGES = 4, WARP_BYTES = 512;
  __shared__ __align__(128) char ring[4][STAGES][WARP_BYTES + 32];
  __shared__ __align__(8) unsigned long long bar[4][STAGES];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const long long per_warp = WARP_BYTES;
  const long long nwarps = (long long)gridDim.x * 4;
  const long long gw = (long long)blockIdx.x * 4 + warp;
  const long long nchunks = nbytes / per_warp;
  unsigned bar_addr[STAGES];
  for (int s = 0; s < STAGES; ++s) bar_addr[s] = (unsigned)__cvta_generic_to_shared(&bar[warp][s]);
  if (mode == 2 && lane == 0) {
    for (int s = 0; s < STAGES; ++s) asm volatile("mbarrier.init.shared.b64 [%0], 1;" :: "r"(bar_addr[s]));
    asm volatile("fence.mbarrier_init.release.cluster;");
  }
  __syncwarp();
  unsigned phase[STAGES] = {0, 0, 0, 0};
  int acc = 0;
  long long it = 0;
  for (long long c = gw; c < nchunks; c += nwarps, ++it) {
    const int s = it % STAGES;
    char* dst = ring[warp][s];
    const char* g = src + c * per_warp;
    if (mode == 0) {        // cp.async.cg 16 B a lane
      unsigned d = (unsigned)__cvta_generic_to_shared(dst + lane * 16);
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(d), "l"(g + lane * 16));
      asm volatile("cp.async.commit_group;");
      asm volatile("cp.async.wait_group 3;");
    } else if (mode == 1) { // ld.global.nc.v4 + st.shared (register path)
      int4 v = __ldg(reinterpret_cast<const int4*>(g) + lane);
      reinterpret_cast<int4*>(dst)[lane] = v;
    } else if (mode == 2) { // cp.async.bulk of 256 B by lanes 0, 1, completion on an mbarrier
      if (it >= STAGES) {   // wait for this stage's previous fill
        unsigned done = 0;
        while (!done) asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                                   : "=r"(done) : "r"(bar_addr[s]), "r"(phase[s]));
        phase[s] ^= 1;
        acc += dst[lane];
      }
      __syncwarp();
      if (lane == 0) asm volatile("mbarrier.arrive.expect_tx.shared.b64 _, [%0], 512;" :: "r"(bar_addr[s]));
      __syncwarp();
      if (lane < 2) {
        unsigned d = (unsigned)__cvta_generic_to_shared(dst + lane * 256);
        asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], 256, [%2];"
                     :: "r"(d), "l"(g + lane * 256), "r"(bar_addr[s]) : "memory");
      }
    } else if (mode >= 4) { // cp.async.cg 16 B a lane, rows of 256 B placed as in a swizzled tile
      const int row = 2 * (int)(it % 4) + (lane >> 4), ch = lane & 15;
      int pos;
      if (mode == 4) pos = (lane >> 4) * 256 + ((ch ^ (row & 7)) << 4);         // 16-byte xor swizzle
      else if (mode == 5) pos = (lane >> 4) * 272 + (ch << 4);                  // rows 272 B apart
      else pos = (lane >> 4) * 256 + ((ch ^ ((row & 3) << 1)) << 4);            // 32-byte-pair swizzle
      unsigned d = (unsigned)__cvta_generic_to_shared(dst + pos);
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(d), "l"(g + lane * 16));
      asm volatile("cp.async.commit_group;");
      asm volatile("cp.async.wait_group 3;");
    } else if (mode == 3) { // cp.async.ca 16 B a lane
      unsigned d = (unsigned)__cvta_generic_to_shared(dst + lane * 16);
      asm volatile("cp.async.ca.shared.global [%0], [%1], 16;" :: "r"(d), "l"(g + lane * 16));
      asm volatile("cp.async.commit_group;");
      asm volatile("cp.async.wait_group 3;");
    }
  }
  if (mode != 1 && mode != 2) asm volatile("cp.async.wait_group 0;");
  if (mode == 2) {  // drain: every stage filled and not yet waited for
    for (int s = 0; s < STAGES; ++s) {
      if (s >= it) continue;  // never filled
      unsigned done = 0;
      while (!done) asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                                 : "=r"(done) : "r"(bar_addr[s]), "r"(phase[s]));
    }
  }
  __syncwarp();
  acc += ring[warp][0][lane];
  if (acc == 0x7fffffff) out[0] = acc;
}
'''
mod = cp.RawModule(code=SRC, options=("-arch=sm_90a", "-std=c++17"))
k = mod.get_function("copy_k")
nbytes = 512 << 20
src = cp.random.randint(0, 255, nbytes, dtype=cp.uint8)
out = cp.zeros(1, dtype=cp.int32)
modes = [int(m) for m in sys.argv[1:]] or [0, 4, 5, 6]
names = {0: "cp.async.cg 16B/lane", 1: "ld.global.nc.v4 + st.shared", 2: "cp.async.bulk 256B x2",
         3: "cp.async.ca 16B/lane", 4: "cp.async.cg, 16B xor swizzle", 5: "cp.async.cg, rows 272B apart",
         6: "cp.async.cg, 32B-pair swizzle"}
for m in modes:
    for blocks in (132 * 4, 132 * 8, 132 * 16):
        args = (src, cp.int64(nbytes), out, cp.int32(m))
        for _ in range(3):
            k((blocks,), (128,), args)
        cp.cuda.Device().synchronize()
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record()
        reps = 10
        for _ in range(reps):
            k((blocks,), (128,), args)
        b.record()
        b.synchronize()
        us = cp.cuda.get_elapsed_time(a, b) * 1000 / reps
        print(f"{names[m]:32s} blocks {blocks:5d}: {us:8.1f} us  {nbytes / us / 1e6:7.2f} TB/s")
