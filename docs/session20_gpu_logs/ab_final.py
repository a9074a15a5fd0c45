"""Session 20: decode, this build (tensor copies + 3-CTA rings for many waves) against the
session 19 build (LIB_B), planner's picks, same process, alternating order; SDPA beside."""
import os, sys, statistics
from pathlib import Path
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import paged_case, gpu_time_us, sdpa_decode_us
from bench_kv_quant import pool_cases, time_cases
from trtcompile.ops import cuda_kernels

new = cuda_kernels.load()
base = cuda_kernels.KernelLibrary(Path(os.environ["LIB_B"]))
libs = {"new": new, "s19": base}
shapes = [(64, 2048), (256, 1024), (1, 4096), (256, 512), (256, 256), (128, 1024), (192, 512),
          (64, 1024), (32, 2048), (16, 4096), (128, 4096)]
if os.environ.get("SHAPES"):
    shapes = [tuple(int(x) for x in t.split(":")) for t in os.environ["SHAPES"].split(",")]
rounds = int(os.environ.get("ROUNDS", "3"))
for s in shapes:
    heads = s[2:] or (32, 8, 128)
    case = paged_case([(s[1] - 1, 1)] * s[0], *heads)
    res = {}
    for r in range(rounds):
        res.setdefault("sdpa", []).append(sdpa_decode_us(s[0], s[1], *heads)[0])
        for name in (list(libs) if r % 2 == 0 else list(reversed(libs))):
            res.setdefault(name, []).append(gpu_time_us(lambda: libs[name].paged_attention(**case)))
    sd = statistics.median(res["sdpa"])
    n, b = statistics.median(res["new"]), statistics.median(res["s19"])
    print(f"{heads} B={s[0]:3d} ctx={s[1]:4d} sdpa {min(res['sdpa']):6.1f}-{max(res['sdpa']):6.1f} | new "
          f"{min(res['new']):6.1f}-{max(res['new']):6.1f} ({n / sd:.3f}) | s19 {min(res['s19']):6.1f}-"
          f"{max(res['s19']):6.1f} ({b / sd:.3f}) | new/s19 {n / b:.3f}")
for bsz in ((16, 64) if not os.environ.get("SHAPES") else ()):
    cases = {p: pool_cases([(4095, 1)] * bsz, p) for p in (torch.bfloat16, torch.float8_e4m3fn)}
    res = {}
    for r in range(rounds):
        for name in (list(libs) if r % 2 == 0 else list(reversed(libs))):
            for p, cs in cases.items():
                res.setdefault((name, str(p)), []).append(time_cases(libs[name], cs)[0])
    for name in libs:
        bf, f8 = (statistics.median(res[(name, str(p))]) for p in cases)
        print(f"kv pools B={bsz} ctx 4096 {name:4s}: bf16 pool {bf:6.1f} us, fp8 pool {f8:6.1f} us, fp8 vs bf16 {bf / f8:.3f}x")
