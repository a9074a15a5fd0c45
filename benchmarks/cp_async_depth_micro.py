"""Micro-benchmark: copies in flight per warp (4, 16 or 48 stages of 512 bytes) into a shared-memory
ring, cp.async 16 bytes a lane (kernels k_S_0) against cp.async.bulk of 256 bytes (k_S_1), each
with the ring alone and with shared memory padded to 96 KB a CTA (2 CTAs of 4 warps per SM,
192 KB in flight per SM at 48 stages, as the decode kernel). Arguments: kernel suffixes, e.g.
`python3 benchmarks/cp_async_depth_micro.py 48_0 48_1` (default: all six). H100, session 8:
cp.async keeps 3.0 TB/s and reads each L2 sector once at every depth; the bulk copies of 256 bytes
fall to 2.1 TB/s at 48 stages (docs/benchmarks.md)."""
import sys
import cupy as cp

SRC = r'''
template <int STAGES, int MODE>
__device__ void body(const char* __restrict__ src, long long nbytes, int* out) {
  extern __shared__ __align__(128) char smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  char* ring = smem + warp * STAGES * 512;
  __shared__ __align__(8) unsigned long long bar[4][STAGES];
  const long long nwarps = (long long)gridDim.x * 4, gw = (long long)blockIdx.x * 4 + warp;
  const long long nchunks = nbytes / 512;
  int acc = 0;
  if (MODE == 1 && lane == 0) {
    for (int s = 0; s < STAGES; ++s)
      asm volatile("mbarrier.init.shared.b64 [%0], 1;" :: "r"((unsigned)__cvta_generic_to_shared(&bar[warp][s])));
    asm volatile("fence.mbarrier_init.release.cluster;");
  }
  __syncwarp();
  long long it = 0;
  for (long long c = gw; c < nchunks; c += nwarps, ++it) {
    const int s = it % STAGES;
    char* dst = ring + s * 512;
    const char* g = src + c * 512;
    if (MODE == 0) {
      unsigned d = (unsigned)__cvta_generic_to_shared(dst + lane * 16);
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(d), "l"(g + lane * 16));
      asm volatile("cp.async.commit_group;");
      asm volatile("cp.async.wait_group %0;" :: "n"(STAGES - 1));
    } else {
      const unsigned b = (unsigned)__cvta_generic_to_shared(&bar[warp][s]);
      if (it >= STAGES) {
        const unsigned parity = ((it / STAGES) - 1) & 1;
        unsigned done = 0;
        while (!done) asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                                   : "=r"(done) : "r"(b), "r"(parity));
        acc += dst[lane];
      }
      __syncwarp();
      if (lane == 0) asm volatile("mbarrier.arrive.expect_tx.shared.b64 _, [%0], 512;" :: "r"(b));
      __syncwarp();
      if (lane < 2) {
        unsigned d = (unsigned)__cvta_generic_to_shared(dst + lane * 256);
        asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], 256, [%2];"
                     :: "r"(d), "l"(g + lane * 256), "r"(b) : "memory");
      }
    }
  }
  if (MODE == 0) asm volatile("cp.async.wait_group 0;");
  if (MODE == 1) {
    for (long long j = it - STAGES; j < it; ++j) {
      if (j < 0) continue;
      const int s = j % STAGES;
      const unsigned b = (unsigned)__cvta_generic_to_shared(&bar[warp][s]);
      const unsigned parity = (j / STAGES) & 1;
      unsigned done = 0;
      while (!done) asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                                 : "=r"(done) : "r"(b), "r"(parity));
    }
  }
  __syncwarp();
  acc += ring[lane];
  if (acc == 0x7fffffff) out[0] = acc;
}
#define INST(S, M) extern "C" __global__ void __launch_bounds__(128) k_##S##_##M(const char* s, long long n, int* o) { body<S, M>(s, n, o); }
INST(4, 0) INST(16, 0) INST(48, 0) INST(4, 1) INST(16, 1) INST(48, 1)
'''
mod = cp.RawModule(code=SRC, options=("-arch=sm_90a", "-std=c++17"))
nbytes = 512 << 20
src = cp.random.randint(0, 255, nbytes, dtype=cp.uint8)
out = cp.zeros(1, dtype=cp.int32)
which = sys.argv[1:] or ["4_0", "16_0", "48_0", "4_1", "16_1", "48_1"]
for name in which:
    stages = int(name.split("_")[0])
    k = mod.get_function(f"k_{name}")
    dyn = 4 * stages * 512
    k.max_dynamic_shared_size_bytes = 100 * 1024
    for extra in (0, 96 * 1024 - dyn):  # ring only, or padded to 96 KB a CTA (2 CTAs per SM)
        smem = dyn + max(extra, 0)
        blocks = 264 if extra > 0 else 528
        args = (src, cp.int64(nbytes), out)
        for _ in range(3):
            k((blocks,), (128,), args, shared_mem=smem)
        cp.cuda.Device().synchronize()
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record()
        for _ in range(10):
            k((blocks,), (128,), args, shared_mem=smem)
        b.record()
        b.synchronize()
        us = cp.cuda.get_elapsed_time(a, b) * 100
        mode = "cp.async 16B" if name.endswith("_0") else "bulk 256B"
        print(f"{mode:13s} stages {stages:3d} smem/CTA {smem >> 10:4d} KB blocks {blocks}: {us:7.1f} us {nbytes / us / 1e6:5.2f} TB/s")
