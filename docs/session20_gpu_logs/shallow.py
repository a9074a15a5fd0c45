"""Session 20: 4 warps x 2 stages (3 CTAs a SM) against the planner's kernel, tensor copies on,
over grids of 1-16 waves (one split forced, as the planner picks at these sizes)."""
import os, sys, statistics
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import paged_case, gpu_time_us, sdpa_decode_us
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
shapes = [(32, 2048), (64, 1024), (64, 2048), (96, 1024), (128, 1024), (128, 2048), (192, 512),
          (256, 256), (256, 512), (256, 1024), (128, 4096)]
for s in shapes:
    case = paged_case([(s[1] - 1, 1)] * s[0])
    res = {}
    for r in range(3):
        for name, env in ([("planner", {}), ("4,3", {"TRTC_PA_DECODE_MMA": "4,3"}),
                           ("4,2", {"TRTC_PA_DECODE_MMA": "4,2"}),
                           ("4,2 copies", {"TRTC_PA_DECODE_MMA": "4,2", "TRTC_PA_DECODE_TMA": "0"}),
                           ("planner copies", {"TRTC_PA_DECODE_TMA": "0"})]):
            os.environ.update(env)
            res.setdefault(name, []).append(gpu_time_us(lambda: lib.paged_attention(**case)))
            for k in env:
                del os.environ[k]
    sd = sdpa_decode_us(*s)[0]
    print(f"B={s[0]:3d} ctx={s[1]:4d} ctas={s[0]*8:5d} sdpa {sd:7.1f} | " +
          "  ".join(f"{n} {statistics.median(v):7.1f} ({statistics.median(v)/sd:.3f})" for n, v in res.items()))
