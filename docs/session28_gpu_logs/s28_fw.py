"""Session 28: 16-bit all-decode grids of more CTAs than one wave of the fused 4-warp kernel holds:
fused anyway (TRTC_DEV_FUSEWAVES=k: up to k waves) against the planner (k = 1), in turn."""
import sys
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import gpu_times_us
from bench_kv_quant import POOLS, pool_cases, cycled_call
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
V = {"planner": {}, "fuse<=2w": {"TRTC_DEV_FUSEWAVES": "2"}, "fuse<=100w": {"TRTC_DEV_FUSEWAVES": "100"},
     "unfused": {"TRTC_PA_DECODE_FUSED": "0"}}
for shape in ((32, 8, 64), (32, 8, 128)):
    for b in (48, 64, 96, 128, 256):
        for ctx in (256, 512, 1024):
            cases = pool_cases([(ctx - 1, 1)] * b, POOLS["bf16"], shape=shape)
            t = gpu_times_us({k: cycled_call(lib, cases, e) for k, e in V.items()}, inner=len(cases))
            best = min(t, key=t.get)
            print(f"d{shape[2]:<3d} B={b:<4d} ctx={ctx:<5d}", "  ".join(f"{k} {v:6.1f}" for k, v in t.items()),
                  f"  best {best}", flush=True)
            del cases
            torch.cuda.empty_cache()
