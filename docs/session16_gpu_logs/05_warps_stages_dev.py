"""Session 16 call 4: decode warps x stages variants incl. 2-warp CTAs (TRTC_PA_DECODE_MMA) vs SDPA."""
import os, sys
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import paged_case, sdpa_decode_us, gpu_time_us
from bench_kv_quant import pool_cases, time_cases
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
VARS = ["planner", "4,3", "8,3", "2,3", "2,4", "2,6", "4,4"]

def setv(v):
    os.environ.pop("TRTC_PA_DECODE_MMA", None)
    if v != "planner":
        os.environ["TRTC_PA_DECODE_MMA"] = v

for s in ((64, 2048), (5, 777), (256, 512)):
    case = paged_case([(s[1] - 1, 1)] * s[0], seed=5)
    setv("planner")
    ref = lib.paged_attention(**dict(case, kv_cache=case["kv_cache"].clone())).float()
    errs = []
    for v in VARS[1:]:
        setv(v)
        out = lib.paged_attention(**dict(case, kv_cache=case["kv_cache"].clone())).float()
        errs.append(f"{v}: {(out - ref).abs().max().item():.2g}")
    print(f"check B={s[0]} ctx={s[1]} max |variant - planner|: " + ", ".join(errs), flush=True)

shapes = [(64, 2048), (256, 1024), (256, 512), (128, 512), (1, 4096), (16, 4096)]
cases = {s: paged_case([(s[1] - 1, 1)] * s[0]) for s in shapes}
res = {}
for rnd in range(2):
    for s in shapes:
        res.setdefault((s, "sdpa"), []).append(sdpa_decode_us(*s)[0])
        for v in VARS:
            setv(v)
            res.setdefault((s, v), []).append(gpu_time_us(lambda: lib.paged_attention(**cases[s])))
print("decode bf16 (us, two rounds; ratio vs SDPA of the same round)")
for s in shapes:
    r = res[(s, "sdpa")]
    print(f"B={s[0]} ctx={s[1]} SDPA {r[0]:.1f}/{r[1]:.1f}")
    for v in VARS:
        t = res[(s, v)]
        print(f"   {v:8} {t[0]:7.1f} {t[1]:7.1f}  ratio {t[0]/r[0]:.3f} {t[1]/r[1]:.3f}", flush=True)

print("ctx 4096 pools (us): bf16 pool with the planner, fp8 by variant")
for b in (16, 64):
    seqs = [(4095, 1)] * b
    setv("planner")
    bf, _ = time_cases(lib, pool_cases(seqs, torch.bfloat16))
    fc = pool_cases(seqs, torch.float8_e4m3fn)
    cells = []
    for v in ["planner", "4,3", "8,3", "2,3", "2,4", "2,6", "4,4"]:
        setv(v)
        t, _ = time_cases(lib, fc)
        cells.append(f"{v} {t:.1f} ({bf / t:.2f}x)")
    print(f"B={b}: bf16 {bf:.1f} | fp8 " + "  ".join(cells), flush=True)
