"""Session 20: tensor-copy decode, L2 promotion of the pool maps (dev env) and 4,2; alternating rounds."""
import os, sys, statistics
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import paged_case, gpu_time_us, sdpa_decode_us
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
shapes = [(64, 2048), (256, 1024), (256, 512)]
variants = {"copies": {"TRTC_PA_DECODE_TMA": "0"}, "tma": {}, "tma L2 none": {"TRTC_DEV_TMA_L2": "0"},
            "tma L2 64": {"TRTC_DEV_TMA_L2": "64"}, "tma L2 256": {"TRTC_DEV_TMA_L2": "256"},
            "tma 4,2": {"TRTC_PA_DECODE_MMA": "4,2"}, "tma 4,2 L2 256": {"TRTC_PA_DECODE_MMA": "4,2", "TRTC_DEV_TMA_L2": "256"}}
res = {}
for s in shapes:
    case = paged_case([(s[1] - 1, 1)] * s[0])
    for r in range(3):
        res.setdefault((s, "sdpa"), []).append(sdpa_decode_us(*s)[0])
        names = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in names:
            os.environ.update(variants[name])
            res.setdefault((s, name), []).append(gpu_time_us(lambda: lib.paged_attention(**case)))
            for k in variants[name]:
                del os.environ[k]
    sd = statistics.median(res[(s, "sdpa")])
    print(f"== B={s[0]} ctx={s[1]} sdpa {min(res[(s, 'sdpa')]):.1f}-{max(res[(s, 'sdpa')]):.1f}")
    for name in variants:
        v = res[(s, name)]
        print(f"  {name:16s} {min(v):7.1f}-{max(v):7.1f}  {statistics.median(v) / sd:.3f}")
