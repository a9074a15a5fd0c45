"""Session 20: decode with tensor copies (TRTC_PA_DECODE_TMA=1) against 16-byte copies (=0), same
library, same process, alternating rounds; SDPA beside; fp8 pools at ctx 4096 like bench_kv_quant."""
import os, sys, statistics
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import paged_case, gpu_time_us, sdpa_decode_us
from bench_kv_quant import pool_cases, time_cases
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
rounds = int(os.environ.get("ROUNDS", "3"))
shapes = [(64, 2048), (256, 1024), (1, 4096), (256, 512), (16, 4096)]
fp8_batches = [16, 64]
res = {}
cases = {s: paged_case([(s[1] - 1, 1)] * s[0]) for s in shapes}
fp8 = {b: pool_cases([(4095, 1)] * b, torch.float8_e4m3fn) for b in fp8_batches}
bf = {b: pool_cases([(4095, 1)] * b, torch.bfloat16) for b in fp8_batches}
for r in range(rounds):
    for s in shapes:
        res.setdefault((s, "sdpa"), []).append(sdpa_decode_us(*s)[0])
        for tma in ("1", "0") if r % 2 == 0 else ("0", "1"):
            os.environ["TRTC_PA_DECODE_TMA"] = tma
            res.setdefault((s, tma), []).append(gpu_time_us(lambda: lib.paged_attention(**cases[s])))
    for b in fp8_batches:
        for tma in ("1", "0") if r % 2 == 0 else ("0", "1"):
            os.environ["TRTC_PA_DECODE_TMA"] = tma
            res.setdefault((("fp8", b), tma), []).append(time_cases(lib, fp8[b])[0])
            res.setdefault((("bf16pool", b), tma), []).append(time_cases(lib, bf[b])[0])
print(f"{'case':22s} {'tma us':>18s} {'copies us':>18s} {'sdpa':>8s} {'tma/sdpa':>9s} {'cp/sdpa':>8s}")
for key in list(dict.fromkeys(k[0] for k in res)):
    t1, t0 = res[(key, "1")], res[(key, "0")]
    sd = res.get((key, "sdpa"))
    f = lambda v: f"{min(v):7.1f}-{max(v):7.1f}"
    line = f"{str(key):22s} {f(t1):>18s} {f(t0):>18s}"
    if sd:
        m = statistics.median(sd)
        line += f" {m:8.1f} {statistics.median(t1)/m:9.3f} {statistics.median(t0)/m:8.3f}"
    print(line)
for b in fp8_batches:
    for tma in "10":
        print(f"fp8 vs bf16 pool B={b} tma={tma}: {statistics.median(res[(('bf16pool', b), tma)]) / statistics.median(res[(('fp8', b), tma)]):.3f}x")
