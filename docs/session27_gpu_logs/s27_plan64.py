"""Session 27: the decode planner at head_dim 64 (llama-3.2-1b's 32/8) against forced split
counts and kernel shapes, bf16 and fp8 pools, several batches and contexts."""
import sys
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import tuning_env
from bench_kv_quant import POOLS, pool_cases, time_cases
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
shape = tuple(int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "32,8,64").split(","))
variants = [("planner", {})] + [(f"ns{n}", {"TRTC_PA_NSPLIT": str(n)}) for n in (1, 2, 4, 8)] + [
    (f"{w} ns{n}", {"TRTC_PA_DECODE_MMA": w, "TRTC_PA_NSPLIT": str(n)}) for w in ("4,3", "8,3") for n in (1, 2)]
print("shape", shape, "|", " ".join(v for v, _ in variants))
for pool_name in ("bf16", "fp8"):
    for b in (4, 16, 32, 64, 128):
        for ctx in (512, 1024, 2048):
            cases = pool_cases([(ctx - 1, 1)] * b, POOLS[pool_name], shape=shape)
            row = []
            for name, env in variants:
                with tuning_env(env):
                    row.append(time_cases(lib, cases)[0])
            best = min(row[1:])
            flag = "  <-- planner +%.0f%%" % (100 * (row[0] / best - 1)) if row[0] > best * 1.05 else ""
            print(f"{pool_name:5s} B={b:<4d} ctx={ctx:<5d}", " ".join(f"{x:6.1f}" for x in row), flag, flush=True)
            del cases
            torch.cuda.empty_cache()
