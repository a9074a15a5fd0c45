"""Session 28: does the row granularity of a CTA's reads set the streaming rate? A raw read
kernel (cupy) over a pool laid out as ours ([slot][8 kv heads][row]), blocks of 16 slots
shuffled, 128 CTAs of 256 threads, each reading 1 MiB: G heads' rows of its slot range (G = 1:
128-byte pieces at 1 KiB stride, as an fp8 d128 CTA reads; 2: 256-byte; 8: whole 1 KiB slots)."""
import cupy as cp, numpy as np, sys

src = r'''
extern "C" __global__ void rd(const uint4* __restrict__ pool, const int* __restrict__ bt, int G, int nsplit,
                              int slots_per_cta, int unroll_dummy, unsigned* out) {
  // CTA: (sequence s, head group hg, split k)
  const int per_seq = (8 / G) * nsplit;
  const int s = blockIdx.x / per_seq, r = blockIdx.x % per_seq, hg = r / nsplit, k = r % nsplit;
  const int chunks = G * 8;               // 16-byte chunks of a slot's G rows (128 B a row)
  const int s0 = k * slots_per_cta;
  const int total = slots_per_cta * chunks;
  unsigned acc = 0;
  const int* t = bt + s * 4096 / 16;
  for (int i0 = threadIdx.x; i0 < total; i0 += 8 * blockDim.x) {
    uint4 v[8];
    #pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int i = i0 + u * blockDim.x;
      const int sl = s0 + i / chunks, c = i % chunks;
      const long slot = (long)__ldg(t + (sl >> 4)) * 16 + (sl & 15);
      v[u] = i < total ? __ldg(pool + slot * 64 + hg * chunks + c) : make_uint4(0, 0, 0, 0);
    }
    #pragma unroll
    for (int u = 0; u < 8; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  if (acc == 0x12345678u) out[0] = acc;
}
'''
k = cp.RawKernel(src, "rd")
B = 16
nblk = B * 4096 // 16
copies = 4
pools = [cp.random.randint(0, 2**31, size=(nblk * 16 * 64 * 4,), dtype=cp.int32).view(cp.uint32) for _ in range(copies)]
bts = [cp.asarray(np.random.default_rng(i).permutation(nblk).astype(np.int32)) for i in range(copies)]
out = cp.zeros(1, cp.uint32)
nbytes = B * 4096 * 1024
for G, nsplit in ((1, 1), (2, 2), (8, 8), (1, 2), (2, 4)):
    grid = B * (8 // G) * nsplit
    spc = 4096 * G // 8 // G * 8 // nsplit if False else 4096 // nsplit
    # each CTA: G rows of 128 B over spc slots
    for threads in (256, 512, 1024):
        ev0, ev1 = cp.cuda.Event(), cp.cuda.Event()
        for w in range(3):
            k((grid,), (threads,), (pools[w % copies], bts[w % copies], np.int32(G), np.int32(nsplit), np.int32(spc), np.int32(0), out))
        ts = []
        for rep in range(20):
            ev0.record()
            for j in range(copies):
                k((grid,), (threads,), (pools[j], bts[j], np.int32(G), np.int32(nsplit), np.int32(spc), np.int32(0), out))
            ev1.record(); ev1.synchronize()
            ts.append(cp.cuda.get_elapsed_time(ev0, ev1) * 1000 / copies)
        us = float(np.median(ts))
        print(f"G={G} nsplit={nsplit} CTAs={grid} threads={threads}: {us:7.1f} us  {nbytes / us / 1e6:6.2f} TB/s "
              f"(bytes a CTA {nbytes // grid >> 10} KiB)", flush=True)
