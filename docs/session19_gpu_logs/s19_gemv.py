"""Dev sweep: weight-only GEMV at 1-16 tokens, several libraries in one process, bf16 matmul beside.
python3 docs/session19_gpu_logs/s19_gemv.py label=LIB ... (env TRTC_WOQ_BULK picks the bulk block shape)"""
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
print("TRTC_WOQ_BULK=", os.environ.get("TRTC_WOQ_BULK"), flush=True)
for name, k, n in shapes:
    w16 = torch.randn(k, n, device="cuda", dtype=torch.bfloat16) / 64
    for m in ms:
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        ref = timer.us(lambda: torch.matmul(x, w16))
        line = f"{name:20s} M={m:2d} bf16 {ref:6.1f} |"
        for vname, bits, group, zeros in variants:
            q, s, z = quantized_weight(k, n, bits, group, zeros)
            outs = []
            for label, lib in libs:
                lib.pack_group_scales = True
                t = timer.us(lambda: lib.weight_only_gemm(x, q, s, z, bits, group))
                outs.append(lib.weight_only_gemm(x, q, s, z, bits, group).float())
                line += f" {vname} {label} {t:6.1f} ({ref / t:4.2f}x)"
            if len(outs) > 1:
                d = (outs[0] - outs[1]).abs().max().item() / (outs[1].abs().max().item() + 1e-9)
                line += f" d={d:.1e}"
            line += " |"
        print(line, flush=True)
