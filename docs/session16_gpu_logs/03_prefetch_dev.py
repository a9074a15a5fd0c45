"""Session 16 call 3: decode with L2 prefetch of tiles ahead (TRTC_DEV_PD) vs SDPA; fp8/bf16 pools at ctx 4096."""
import os, sys
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import paged_case, sdpa_decode_us, gpu_time_us
from bench_kv_quant import pool_cases, time_cases
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
PDS = [0, 1, 2, 3, 4, 6]
# identical outputs with and without prefetch (it moves no data the kernel reads)
for s in ((64, 2048), (3, 777)):
    case = paged_case([(s[1] - 1, 1)] * s[0], seed=5)
    outs = []
    for pd in (0, 2, 6):
        os.environ["TRTC_DEV_PD"] = str(pd)
        c = dict(case, kv_cache=case["kv_cache"].clone())
        outs.append(lib.paged_attention(**c).float())
    print(f"check B={s[0]} ctx={s[1]}: max |pd2 - pd0| {(outs[1]-outs[0]).abs().max().item():.3g}, "
          f"|pd6 - pd0| {(outs[2]-outs[0]).abs().max().item():.3g}")

shapes = [(64, 2048), (256, 1024), (256, 512), (1, 4096)]
cases = {s: paged_case([(s[1] - 1, 1)] * s[0]) for s in shapes}
res = {}
for rnd in range(2):
    for s in shapes:
        res.setdefault((s, "sdpa"), []).append(sdpa_decode_us(*s)[0])
        for pd in PDS:
            os.environ["TRTC_DEV_PD"] = str(pd)
            res.setdefault((s, pd), []).append(gpu_time_us(lambda: lib.paged_attention(**cases[s])))
print("decode bf16 (us, two rounds; ratio vs SDPA of the same round)")
for s in shapes:
    r = res[(s, "sdpa")]
    print(f"B={s[0]} ctx={s[1]} SDPA {r[0]:.1f}/{r[1]:.1f}")
    for pd in PDS:
        t = res[(s, pd)]
        print(f"   pd={pd}  {t[0]:7.1f} {t[1]:7.1f}  ratio {t[0]/r[0]:.3f} {t[1]/r[1]:.3f}", flush=True)

print("ctx 4096 pools (us): bf16 pool pd=0 first, then fp8 by pd")
for b in (16, 64):
    seqs = [(4095, 1)] * b
    os.environ["TRTC_DEV_PD"] = "0"
    bf, _ = time_cases(lib, pool_cases(seqs, torch.bfloat16))
    bfp = {}
    fc = pool_cases(seqs, torch.float8_e4m3fn)
    cells = []
    for pd in PDS:
        os.environ["TRTC_DEV_PD"] = str(pd)
        t, _ = time_cases(lib, fc)
        cells.append(f"pd{pd} {t:.1f} ({bf / t:.2f}x)")
    os.environ["TRTC_DEV_PD"] = "2"
    bf2, _ = time_cases(lib, pool_cases(seqs, torch.bfloat16))
    print(f"B={b}: bf16 pd0 {bf:.1f} pd2 {bf2:.1f} | fp8 " + "  ".join(cells), flush=True)
