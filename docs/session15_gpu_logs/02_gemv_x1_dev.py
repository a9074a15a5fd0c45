# dev: timing-only GEMV address-pattern variants (TRTC_DEV_GEMV, build/x1), int4 g128 bf16
import os, sys, torch
sys.path.insert(0, "benchmarks")
from bench_quant import Timer, quantized_weight, DEV, BF16
from trtcompile.ops import cuda_kernels
lib = cuda_kernels.load()
lib.mma_gemv = "never"
timer = Timer(int(os.environ.get("REPS", "30")))
names = {0: "ship", 1: "tiled", 2: "noMMA", 3: "tiled+noMMA", 4: "D4", 5: "D4 tiled", 6: "D4 tiled noMMA", 7: "8w tiled", 8: "xonce", 9: "tiled xonce", 10: "tiled XA mb3", 11: "tiled TM1", 12: "TM1 tiled xonce"}
for name, k, n in [("up", 4096, 14336), ("8b-gu", 4096, 28672)]:
    q, s, z = quantized_weight(k, n, 4, 128, True)
    w16 = torch.randn(k, n, device=DEV, dtype=BF16) / 64
    for m in (1, 8, 16):
        x = torch.randn(m, k, device=DEV, dtype=BF16)
        ref = timer.us(lambda: torch.matmul(x, w16))
        row = [f"{name:6} M={m:2d} bf16 {ref:6.1f}"]
        for v in range(13):
            os.environ["TRTC_DEV_GEMV"] = str(v)
            t = timer.us(lambda: lib.weight_only_gemm(x, q, s, z, 4, 128))
            row.append(f"{names[v]} {t:5.1f}")
        os.environ["TRTC_DEV_GEMV"] = "0"
        print("  ".join(row), flush=True)
