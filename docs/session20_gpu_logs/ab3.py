"""Session 20: decode, 16-byte copies vs tensor copies of 128-byte boxes (3D maps, lib B) vs
whole-row boxes (4D maps, lib C), same process, alternating order; SDPA beside."""
import os, sys, statistics
from pathlib import Path
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import paged_case, gpu_time_us, sdpa_decode_us
from bench_kv_quant import pool_cases, time_cases
from trtcompile.ops import cuda_kernels

C = cuda_kernels.load()
B = cuda_kernels.KernelLibrary(Path(os.environ["LIB_B"]))
shapes = [(64, 2048), (256, 1024), (128, 4096), (16, 4096), (256, 512), (32, 2048), (1, 4096)]
variants = {"copies": (C, {"TRTC_PA_DECODE_TMA": "0"}), "tma3d": (B, {}), "tma4d": (C, {})}
rounds = int(os.environ.get("ROUNDS", "3"))
for s in shapes:
    case = paged_case([(s[1] - 1, 1)] * s[0])
    res = {}
    for r in range(rounds):
        res.setdefault("sdpa", []).append(sdpa_decode_us(*s)[0])
        for name in (list(variants) if r % 2 == 0 else list(reversed(variants))):
            lib, env = variants[name]
            os.environ.update(env)
            res.setdefault(name, []).append(gpu_time_us(lambda: lib.paged_attention(**case)))
            for k in env:
                del os.environ[k]
    sd = statistics.median(res["sdpa"])
    print(f"B={s[0]:3d} ctx={s[1]:4d} sdpa {min(res['sdpa']):6.1f}-{max(res['sdpa']):6.1f} | " + "  ".join(
        f"{n} {min(v):6.1f}-{max(v):6.1f} ({statistics.median(v)/sd:.3f})" for n, v in res.items() if n != "sdpa"))
for b in (16, 64):
    cases = {p: pool_cases([(4095, 1)] * b, p) for p in (torch.bfloat16, torch.float8_e4m3fn)}
    res = {}
    for r in range(rounds):
        for name in (list(variants) if r % 2 == 0 else list(reversed(variants))):
            lib, env = variants[name]
            os.environ.update(env)
            for p, cs in cases.items():
                res.setdefault((name, str(p)), []).append(time_cases(lib, cs)[0])
            for k in env:
                del os.environ[k]
    for name in variants:
        bf, f8 = (statistics.median(res[(name, str(p))]) for p in cases)
        print(f"kv pools B={b} ctx 4096 {name:7s}: bf16 {bf:6.1f}  fp8 {f8:6.1f}  ratio {bf / f8:.3f}")
