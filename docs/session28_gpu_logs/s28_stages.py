"""Session 28: quantized decode ring depth. Planner and forced variants, fp8 pool (bf16 pool
reference on the ctx 4096 rows), GQA 32/8 d128. The library is TRTCOMPILE_KERNELS_LIB."""
import os, sys
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import tuning_env
from bench_kv_quant import POOLS, pool_cases, time_cases
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
tag = sys.argv[1]
pools = sys.argv[2].split(",") if len(sys.argv) > 2 else ["fp8"]
rows = [(1, 4096), (16, 4096), (64, 4096), (128, 4096), (16, 2048), (32, 2048), (64, 2048), (128, 1024), (64, 1024)]
variants = [("planner", {})] + [(f"{w} ns{n}", {"TRTC_PA_DECODE_MMA": w, "TRTC_PA_NSPLIT": str(n)})
                                for w in ("4,3", "8,3") for n in (1, 2, 4)]
print(tag, "| " + " ".join(v for v, _ in variants), flush=True)
for pool_name in pools:
    for b, ctx in rows:
        vs = variants if b > 1 else variants[:1] + [(f"{w} ns{n}", {"TRTC_PA_DECODE_MMA": w, "TRTC_PA_NSPLIT": str(n)})
                                                    for w in ("4,3", "8,3") for n in (8, 16, 32)]
        cases = pool_cases([(ctx - 1, 1)] * b, POOLS[pool_name], shape=(32, 8, 128))
        row = []
        for name, env in vs:
            with tuning_env(env):
                row.append(time_cases(lib, cases)[0])
        print(f"{tag:5s} {pool_name:5s} B={b:<4d} ctx={ctx:<5d}", " ".join(f"{x:6.1f}" for x in row),
              "  (B=1 forced: ns 8/16/32)" if b == 1 else "", flush=True)
        del cases
        torch.cuda.empty_cache()
