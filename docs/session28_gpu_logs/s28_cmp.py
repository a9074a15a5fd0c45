"""Session 28: two libraries in one process (argv: new.so base.so), bf16 decode at head_dim 64 and
128 over batches and contexts, replayed in turn (gpu_times_us)."""
import sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import gpu_times_us
from bench_kv_quant import POOLS, pool_cases, cycled_call
from trtcompile.ops import cuda_kernels

libs = {"new": cuda_kernels.KernelLibrary(Path(sys.argv[1])), "base": cuda_kernels.KernelLibrary(Path(sys.argv[2]))}
for pool in ("bf16", "fp8"):
    for d in (64, 128):
        for b in (32, 48, 64, 80, 96):
            for ctx in (256, 512, 1024):
                if pool == "fp8" and (b, d) != (64, 64):
                    continue
                cases = pool_cases([(ctx - 1, 1)] * b, POOLS[pool], shape=(32, 8, d))
                t = gpu_times_us({k: cycled_call(l, cases) for k, l in libs.items()}, inner=len(cases))
                print(f"{pool:5s} d{d:<3d} B={b:<3d} ctx={ctx:<5d} new {t['new']:6.1f}  base {t['base']:6.1f}"
                      f"  new/base {t['new'] / t['base']:.3f}", flush=True)
                del cases
                torch.cuda.empty_cache()
