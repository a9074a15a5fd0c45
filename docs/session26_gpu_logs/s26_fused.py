"""Session 26 dev: what the fused decode kernel saves (bf16 pool: fused vs TRTC_PA_DECODE_FUSED=0), next to fp8."""
import sys
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import gpu_times_us
from bench_kv_quant import POOLS, cycled_call, pool_cases
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
print(torch.cuda.get_device_name())
for b, ctx in ((1, 4096), (4, 4096), (16, 4096), (16, 1024)):
    cases = {pn: pool_cases([(ctx - 1, 1)] * b, POOLS[pn]) for pn in ("bf16", "fp8")}
    inner = max(len(c) for c in cases.values())
    runs = {"bf16": cycled_call(lib, cases["bf16"]),
            "bf16 unfused": cycled_call(lib, cases["bf16"], {"TRTC_PA_DECODE_FUSED": "0"}),
            "fp8": cycled_call(lib, cases["fp8"]),
            "fp8 unfused": cycled_call(lib, cases["fp8"], {"TRTC_PA_DECODE_FUSED": "0"})}
    t = gpu_times_us(runs, inner=inner, repeats=30)
    print(f"B={b:<3d} ctx={ctx:<5d} " + "  ".join(f"{k} {v:6.1f}" for k, v in t.items()), flush=True)
