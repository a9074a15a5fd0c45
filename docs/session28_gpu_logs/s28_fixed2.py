"""Session 28: fp8 decode's fixed cost: variants timed interleaved (gpu_times_us)."""
import sys
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import gpu_times_us
from bench_kv_quant import POOLS, pool_cases, cycled_call
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
tag = sys.argv[1]
V = {"planner": {}, "tma0": {"TRTC_PA_DECODE_TMA": "0"}, "unfused": {"TRTC_PA_DECODE_FUSED": "0"},
     "4,3 ns1": {"TRTC_PA_DECODE_MMA": "4,3", "TRTC_PA_NSPLIT": "1"}}
rows = [("fp8", 16, 256), ("fp8", 16, 1024), ("fp8", 16, 4096), ("bf16", 16, 4096), ("fp8", 1, 4096),
        ("bf16", 1, 4096), ("fp8", 64, 4096), ("bf16", 64, 4096), ("fp8", 32, 2048)]
for pool, b, ctx in rows:
    cases = pool_cases([(ctx - 1, 1)] * b, POOLS[pool], shape=(32, 8, 128))
    t = gpu_times_us({name: cycled_call(lib, cases, env) for name, env in V.items()}, inner=len(cases))
    print(f"{tag:5s} {pool:5s} B={b:<3d} ctx={ctx:<5d}", "  ".join(f"{k} {v:6.1f}" for k, v in t.items()), flush=True)
    del cases
    torch.cuda.empty_cache()
