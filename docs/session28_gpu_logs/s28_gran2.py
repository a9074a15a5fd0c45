"""Session 28: the row-granularity read test (s28_gran.py) with the 8 CTAs of a sequence (its 8
kv heads) as one cluster kept in step by a cluster barrier every iteration."""
import cupy as cp, numpy as np

body = r'''
  const int s = blockIdx.x / 8, hg = blockIdx.x % 8;
  const int chunks = 8, total = 4096 * chunks;
  unsigned acc = 0;
  const int* t = bt + s * 256;
  for (int i0 = threadIdx.x; i0 < total; i0 += U * blockDim.x) {
    uint4 v[U];
    #pragma unroll
    for (int u = 0; u < U; ++u) {
      const int i = i0 + u * blockDim.x;
      const int sl = i / chunks, c = i % chunks;
      const long slot = (long)__ldg(t + (sl >> 4)) * 16 + (sl & 15);
      v[u] = __ldg(pool + slot * 64 + hg * chunks + c);
    }
    SYNC
    #pragma unroll
    for (int u = 0; u < U; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  if (acc == 0x12345678u) out[0] = acc;
}
'''
def make(name, cluster, sync, U):
    head = (f'extern "C" __global__ void {"__cluster_dims__(8, 1, 1)" if cluster else ""} {name}'
            f'(const uint4* __restrict__ pool, const int* __restrict__ bt, unsigned* out) {{\n  constexpr int U = {U};\n')
    s = head + body.replace("SYNC", sync)
    return cp.RawKernel(s, name, options=("-arch=sm_90",))

SYNC = 'asm volatile("barrier.cluster.arrive.relaxed.aligned;\\n" ::: "memory"); asm volatile("barrier.cluster.wait.aligned;\\n" ::: "memory");'
B, nblk, copies = 16, 16 * 256, 4
pools = [cp.random.randint(0, 2**31, size=(nblk * 16 * 64 * 4,), dtype=cp.int32).view(cp.uint32) for _ in range(copies)]
bts = [cp.asarray(np.random.default_rng(i).permutation(nblk).astype(np.int32)) for i in range(copies)]
out = cp.zeros(1, cp.uint32)
nbytes = B * 4096 * 128 * 8
for U in (4, 8):
    for name, cl, sync in (("plain", False, ""), ("cluster_nosync", True, ""), ("cluster_sync", True, SYNC)):
        k = make(name, cl, sync, U)
        for threads in (256, 512, 1024):
            ev0, ev1 = cp.cuda.Event(), cp.cuda.Event()
            for w in range(3):
                k((128,), (threads,), (pools[w % copies], bts[w % copies], out))
            ts = []
            for rep in range(20):
                ev0.record()
                for j in range(copies):
                    k((128,), (threads,), (pools[j], bts[j], out))
                ev1.record(); ev1.synchronize()
                ts.append(cp.cuda.get_elapsed_time(ev0, ev1) * 1000 / copies)
            us = float(np.median(ts))
            print(f"U={U} {name:15s} threads={threads:5d}: {us:7.1f} us  {nbytes / us / 1e6:6.2f} TB/s", flush=True)
