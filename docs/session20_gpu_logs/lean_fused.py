"""Session 20: grids of one wave of the 4-warp kernel (133-264 CTAs): the planner (kv_write + the
unfused 4 x 3 kernel) against TRTC_PA_DECODE_MMA=4,3 (the planner then sees one wave and fuses)."""
import os, sys, statistics
sys.path.insert(0, "benchmarks")
from bench_kernels import paged_case, gpu_time_us, sdpa_decode_us
from trtcompile.ops import cuda_kernels
lib = cuda_kernels.load()
for b in (20, 24, 32):
    for ctx in (256, 1024, 2048, 4096):
        case = paged_case([(ctx - 1, 1)] * b)
        res = {}
        for r in range(3):
            for n, env in ([("planner", {}), ("fused 4,3", {"TRTC_PA_DECODE_MMA": "4,3"})] if r % 2 == 0 else
                           [("fused 4,3", {"TRTC_PA_DECODE_MMA": "4,3"}), ("planner", {})]):
                os.environ.update(env)
                res.setdefault(n, []).append(gpu_time_us(lambda: lib.paged_attention(**case)))
                for k in env:
                    del os.environ[k]
        p, f = statistics.median(res["planner"]), statistics.median(res["fused 4,3"])
        print(f"B={b} ctx={ctx}: planner {min(res['planner']):6.1f}-{max(res['planner']):6.1f}  fused 4,3 "
              f"{min(res['fused 4,3']):6.1f}-{max(res['fused 4,3']):6.1f}  ratio {f / p:.3f}")
