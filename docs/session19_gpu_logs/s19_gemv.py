"""Dev sweep: weight-only GEMV at 1-32 tokens, several libraries in one process, bf16 matmul beside.
python3 docs/session19_gpu_logs/s19_gemv.py label=LIB ...
A label ending in "cc" runs its library with the tensor-core int4 GEMV off (mma_gemv "never").
Env: S19_SHAPES=K:N,..., S19_M=1,2,..., S19_CH=1 (adds int4 per channel), REPEATS, and for the
development form of 01_bulk_gemv_dev.diff TRTC_WOQ_BULK (block shape) / TRTC_WOQ_BULK_SKIP."""
import os, sys, statistics
from pathlib import Path
import torch
ROOT = next(d for d in Path(__file__).resolve().parents if (d / "benchmarks").is_dir())
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_quant import Timer, quantized_weight
from trtcompile.ops import cuda_kernels

libs = [(a.split("=")[0], cuda_kernels.KernelLibrary(Path(a.split("=")[1]))) for a in sys.argv[1:]]
timer = Timer(int(os.environ.get("REPEATS", "30")))
shapes = [("up 4096x14336", 4096, 14336), ("gate_up 4096x28672", 4096, 28672), ("down 14336x4096", 14336, 4096)]
if os.environ.get("S19_QUICK"):
    shapes = shapes[:1]
if os.environ.get("S19_SHAPES"):  # K:N,K:N
    shapes = [(f"{kk}x{nn}", int(kk), int(nn)) for kk, nn in (c.split(":") for c in os.environ["S19_SHAPES"].split(","))]
ms = [int(v) for v in os.environ.get("S19_M", "1,2,4,8,16").split(",")]
variants = [("int8", 8, 0, False), ("int4 g128", 4, 128, True), ("int4 g32", 4, 32, True)]
if os.environ.get("S19_CH"):
    variants.append(("int4 ch", 4, 0, False))
print("TRTC_WOQ_BULK=", os.environ.get("TRTC_WOQ_BULK"), flush=True)
for name, k, n in shapes:
    w16 = torch.randn(k, n, device="cuda", dtype=torch.bfloat16) / 64
    for m in ms:
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        ref = timer.us(lambda: torch.matmul(x, w16))
        line = f"{name:20s} M={m:2d} bf16 {ref:6.1f} |"
        for vname, bits, group, zeros in variants:
            if bits == 4 and group == 0:  # int4 per channel (bench_quant has no such variant)
                q = torch.randint(0, 256, (n, k // 2), device="cuda", dtype=torch.uint8)
                s, z = torch.rand(n, device="cuda") / 8 + 1e-3, None
            else:
                q, s, z = quantized_weight(k, n, bits, group, zeros)
            outs = []
            for label, lib in libs:
                lib.pack_group_scales = True
                lib.mma_gemv = "never" if label.endswith("cc") else "auto"  # cc: CUDA-core GEMV
                t = timer.us(lambda: lib.weight_only_gemm(x, q, s, z, bits, group))
                outs.append(lib.weight_only_gemm(x, q, s, z, bits, group).float())
                line += f" {vname} {label} {t:6.1f} ({ref / t:4.2f}x)"
            if len(outs) > 1:
                d = (outs[0] - outs[1]).abs().max().item() / (outs[1].abs().max().item() + 1e-9)
                line += f" d={d:.1e}"
            line += " |"
        print(line, flush=True)
