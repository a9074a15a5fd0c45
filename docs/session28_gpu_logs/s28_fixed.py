"""Session 28: the decode's fixed cost. B=16 (and B=64) over contexts, bf16 and fp8 pools
(graph-timed, pools interleaved), and kernel durations from the profiler (eager calls)."""
import sys
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import gpu_times_us
from bench_kv_quant import POOLS, pool_cases, cycled_call
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
for b in (16, 64, 1):
    for ctx in ((16, 256, 1024, 2048, 4096) if b > 1 else (1024, 4096)):
        cases = {p: pool_cases([(ctx - 1, 1)] * b, POOLS[p], shape=(32, 8, 128)) for p in ("bf16", "fp8")}
        t = {p: gpu_times_us({p: cycled_call(lib, c)}, inner=len(c))[p] for p, c in cases.items()}
        print(f"B={b:<3d} ctx={ctx:<5d} bf16 {t['bf16']:7.1f}  fp8 {t['fp8']:7.1f}  ratio {t['bf16'] / t['fp8']:.3f}", flush=True)
        if (ctx, b) in ((16, 16), (4096, 16), (4096, 1)):
            from torch.profiler import profile, ProfilerActivity
            for p, c in cases.items():
                call = cycled_call(lib, c)
                for _ in range(5):
                    call()
                torch.cuda.synchronize()
                with profile(activities=[ProfilerActivity.CUDA]) as prof:
                    for _ in range(20):
                        call()
                    torch.cuda.synchronize()
                for ev in prof.key_averages():
                    if ev.device_type.name == "CUDA" and ev.count >= 20:
                        print(f"   {p:5s} {ev.key[:90]:90s} n={ev.count} avg {ev.device_time_total / ev.count:7.2f} us", flush=True)
        del cases
        torch.cuda.empty_cache()
