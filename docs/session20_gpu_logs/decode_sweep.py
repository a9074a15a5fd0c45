"""Session 20: decode variants with tensor copies: warps x stages and forced split counts."""
import os, sys, statistics
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import paged_case, gpu_time_us, sdpa_decode_us
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
shapes = [(64, 2048), (256, 1024), (256, 512), (16, 4096)]
variants = {"planner": {}, "4,2": {"TRTC_PA_DECODE_MMA": "4,2"}, "4,3": {"TRTC_PA_DECODE_MMA": "4,3"},
            "8,3": {"TRTC_PA_DECODE_MMA": "8,3"}}
for n in (1, 2, 3, 4, 6):
    variants[f"split{n}"] = {"TRTC_PA_NSPLIT": str(n)}
    variants[f"4,2 split{n}"] = {"TRTC_PA_NSPLIT": str(n), "TRTC_PA_DECODE_MMA": "4,2"}
for s in shapes:
    case = paged_case([(s[1] - 1, 1)] * s[0])
    sd = sdpa_decode_us(*s)[0]
    out = []
    for name, env in variants.items():
        for tma in "10":
            os.environ.update(env, TRTC_PA_DECODE_TMA=tma)
            t = gpu_time_us(lambda: lib.paged_attention(**case))
            for k in env:
                del os.environ[k]
            out.append((t, name, tma))
    sd2 = sdpa_decode_us(*s)[0]
    print(f"== B={s[0]} ctx={s[1]}  sdpa {sd:.1f} / {sd2:.1f}")
    for t, name, tma in sorted(out)[:8] + [o for o in out if o[1] == "planner"]:
        print(f"  {name:14s} tma={tma} {t:7.1f}  {t / min(sd, sd2):.3f}")
