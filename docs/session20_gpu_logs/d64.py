"""Session 20: head_dim 64 decode variants (new build): 4,3 / 4,2 x tensor copies on / off."""
import os, sys, statistics
sys.path.insert(0, "benchmarks")
from bench_kernels import paged_case, gpu_time_us
from trtcompile.ops import cuda_kernels
lib = cuda_kernels.load()
V = {"planner": {}, "4,3 tma": {"TRTC_PA_DECODE_MMA": "4,3"},
     "4,3 cp": {"TRTC_PA_DECODE_MMA": "4,3", "TRTC_PA_DECODE_TMA": "0"},
     "4,2 tma": {"TRTC_PA_DECODE_MMA": "4,2"}, "4,2 cp": {"TRTC_PA_DECODE_MMA": "4,2", "TRTC_PA_DECODE_TMA": "0"}}
for b, ctx, d in [(256, 128, 64), (256, 256, 64), (256, 512, 64), (128, 512, 64), (192, 768, 64), (256, 1024, 64),
                  (128, 256, 128), (256, 512, 128)]:
    case = paged_case([(ctx - 1, 1)] * b, 32, 8, d)
    res = {}
    for r in range(3):
        for n in (list(V) if r % 2 == 0 else list(reversed(V))):
            os.environ.update(V[n])
            res.setdefault(n, []).append(gpu_time_us(lambda: lib.paged_attention(**case)))
            for k in V[n]:
                del os.environ[k]
    print(f"d{d} B={b} ctx={ctx}: " + "  ".join(f"{n} {statistics.median(v):6.1f}" for n, v in res.items()))
