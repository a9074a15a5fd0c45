"""DEV (session 25): quantized-pool decode rings of other warps x stages, forced, against the
planner's kernel and bf16 KV: outputs compared, then all timed interleaved."""
import sys
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import gpu_times_us, tuning_env
from bench_kv_quant import POOLS, pool_cases, cycled_call, kv_bytes
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
kernels = sys.argv[1].split() if len(sys.argv) > 1 else ["4,3", "8,3", "4,4", "4,5", "4,6", "8,4", "8,6", "2,6", "2,8"]
rows = [(16, 4096, (1, 2, 3, 4)), (64, 4096, (1, 2)), (256, 512, (1,))]
print(torch.cuda.get_device_name())
for b, ctx, splits in rows:
    for pool_name in ("fp8", "int8"):
        cases = pool_cases([(ctx - 1, 1)] * b, POOLS[pool_name])
        bf = pool_cases([(ctx - 1, 1)] * b, POOLS["bf16"]) if pool_name == "fp8" else None
        variants = {"planner": {}}
        for w in kernels:
            variants[w] = {"TRTC_PA_DECODE_MMA": w}
            for n in splits:
                variants[f"{w} n{n}"] = {"TRTC_PA_DECODE_MMA": w, "TRTC_PA_NSPLIT": str(n)}
        ref = lib.paged_attention(**cases[0]).float()
        worst = 0.0
        for name, env in variants.items():
            with tuning_env(env):
                out = lib.paged_attention(**cases[0]).float()
            d = (out - ref).abs().max().item()
            worst = max(worst, d)
            if not d < 2e-2:
                print(f"  MISMATCH {pool_name} B={b} {name}: {d}")
        fns = {name: cycled_call(lib, cases, env) for name, env in variants.items()}
        if bf is not None:
            fns["bf16 KV"] = cycled_call(lib, bf, {})
        t = gpu_times_us(fns, inner=len(cases), repeats=20)
        base = t.get("bf16 KV")
        best = sorted((v, k) for k, v in t.items() if k != "bf16 KV" and not isinstance(v, Exception))
        print(f"B={b} ctx={ctx} {pool_name}: worst diff {worst:.2e}; planner {t['planner']:.1f} us"
              + (f"; bf16 KV {base:.1f} us (planner {base / t['planner']:.2f}x)" if base else ""))
        print("   " + "  ".join(f"{k}:{v:.1f}" for v, k in best[:8]))
        print("   all: " + "  ".join(f"{k}:{(v if isinstance(v, Exception) else round(v, 1))}" for k, v in t.items()))
        del cases, bf
        torch.cuda.empty_cache()
