"""Session 16 call 1: decode L2 hints (TRTC_DEV_KV_HINT) vs SDPA; int8 GEMV variants (TRTC_DEV_GEMV) vs bf16."""
import os, sys, statistics
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import paged_case, sdpa_decode_us, gpu_time_us
from bench_quant import Timer, quantized_weight
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
what = sys.argv[1] if len(sys.argv) > 1 else "both"

if what in ("both", "decode"):
    shapes = [(64, 2048), (256, 1024), (256, 512), (1, 4096)]
    cases = {s: paged_case([(s[1] - 1, 1)] * s[0]) for s in shapes}
    res = {}
    for rnd in range(2):
        for s in shapes:
            ref, _ = sdpa_decode_us(*s)
            res.setdefault((s, "sdpa"), []).append(ref)
            for h in range(5):
                os.environ["TRTC_DEV_KV_HINT"] = str(h)
                t = gpu_time_us(lambda: lib.paged_attention(**cases[s]))
                res.setdefault((s, h), []).append(t)
            del os.environ["TRTC_DEV_KV_HINT"]
    print("decode (us, two rounds; ratio vs SDPA of the same round)")
    names = ["none", "128B", "256B", "evict_first", "256B+ef"]
    for s in shapes:
        r = res[(s, "sdpa")]
        print(f"B={s[0]} ctx={s[1]} SDPA {r[0]:.1f}/{r[1]:.1f}")
        for h in range(5):
            t = res[(s, h)]
            print(f"   {names[h]:12} {t[0]:7.1f} {t[1]:7.1f}  ratio {t[0]/r[0]:.3f} {t[1]/r[1]:.3f}")

if what in ("both", "gemv"):
    timer = Timer(50)
    k, n = 4096, 14336
    q, s, z = quantized_weight(k, n, 8, 0, False)
    print("int8 GEMV 4096x14336 (us) by TRTC_DEV_GEMV variant; bf16 timed first in each M")
    w = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
    for m in (1, 2, 4, 8, 16):
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        bf = timer.us(lambda: x @ w)
        cells = []
        for v in range(7):
            os.environ["TRTC_DEV_GEMV"] = str(v)
            t = timer.us(lambda: lib.weight_only_gemm(x, q, s, z, 8, 0))
            cells.append(f"v{v} {t:5.1f} ({bf / t:.2f}x)")
        del os.environ["TRTC_DEV_GEMV"]
        print(f"M={m:2d} bf16 {bf:5.1f} | " + "  ".join(cells), flush=True)
        # correctness of every variant against the default
        ref = lib.weight_only_gemm(x, q, s, z, 8, 0).float()
        for v in range(1, 7):
            os.environ["TRTC_DEV_GEMV"] = str(v)
            out = lib.weight_only_gemm(x, q, s, z, 8, 0).float()
            err = (out - ref).abs().max().item() / ref.abs().max().item()
            if err > 1e-2:
                print(f"  variant {v} M={m}: relative error {err:.3g} against the default")
        del os.environ["TRTC_DEV_GEMV"]
