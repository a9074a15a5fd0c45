"""WeightOnlyGemm vs bf16 at M = 1..16 on 4096 x 14336 by three timing methods:
write: 256 MB written before each replay (bench_quant.Timer), read: 256 MB read before each
replay, cycled: graphs cycling through distinct weight copies (>= 256 MiB), the three kinds
of GEMM replayed in turn (gpu_times_us)."""
import statistics
import sys

import torch

sys.path.insert(0, "benchmarks")
from bench_kernels import gpu_times_us  # noqa: E402
from bench_quant import Timer, quantized_weight  # noqa: E402
from trtcompile.ops import cuda_kernels  # noqa: E402

DEV = "cuda"
K, N = 4096, 14336
lib = cuda_kernels.load()


class ReadTimer(Timer):
    def us(self, fn):
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        graph.replay()
        times = []
        for _ in range(self.repeats):
            self.flush.sum(dtype=torch.int32)
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            graph.replay()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) * 1000)
        return statistics.median(times)


def copies(nbytes):
    return max(3, -(-(256 << 20) // nbytes))


w16s = [torch.randn(K, N, device=DEV, dtype=torch.bfloat16) / 64 for _ in range(copies(K * N * 2))]
kinds = {"int8": (8, 0, False), "int4 g128": (4, 128, True)}
qw = {}
for name, (bits, group, zeros) in kinds.items():
    first = quantized_weight(K, N, bits, group, zeros)
    nbytes = first[0].numel() + first[1].numel() * 4 * (2 if zeros else 1)
    qw[name] = [first] + [tuple(t.clone() if t is not None else None for t in first)
                          for _ in range(copies(nbytes) - 1)]
print(torch.cuda.get_device_name(), "copies:", len(w16s), {k: len(v) for k, v in qw.items()})
wt, rt = Timer(30), ReadTimer(30)
rt.flush.fill_(1)
print(f"{'M':>3} {'method':8} {'bf16':>7} " + " ".join(f"{k:>9} {'x':>5}" for k in kinds))
for m in (1, 2, 4, 8, 16):
    x = torch.randn(m, K, device=DEV, dtype=torch.bfloat16)
    for method, timer in (("write", wt), ("read", rt)):
        ref = timer.us(lambda: torch.matmul(x, w16s[0]))
        cells = []
        for name, (bits, group, _) in kinds.items():
            q, s, z = qw[name][0]
            t = timer.us(lambda: lib.weight_only_gemm(x, q, s, z, bits, group))
            cells.append(f"{t:9.1f} {ref / t:5.2f}")
        print(f"{m:3d} {method:8} {ref:7.1f} " + " ".join(cells), flush=True)
    inner = 18

    def cyc(fn, n):
        st = [0]

        def call():
            fn(st[0] % n)
            st[0] += 1
        return call
    fns = {"bf16": cyc(lambda i: torch.matmul(x, w16s[i]), len(w16s))}
    for name, (bits, group, _) in kinds.items():
        fns[name] = cyc(lambda i, name=name, bits=bits, group=group:
                        lib.weight_only_gemm(x, *qw[name][i], bits, group), len(qw[name]))
    t = gpu_times_us(fns, inner=inner)
    print(f"{m:3d} {'cycled':8} {t['bf16']:7.1f} "
          + " ".join(f"{t[k]:9.1f} {t['bf16'] / t[k]:5.2f}" for k in kinds), flush=True)
