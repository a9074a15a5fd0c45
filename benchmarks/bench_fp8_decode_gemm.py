"""fp8 W8A8 GEMMs at the decode batch sizes of W1 on the llama-3.1-8b shapes: where the time of
the fp8 model's decode steps goes, against the weight bytes each GEMM must read.

    python benchmarks/bench_fp8_decode_gemm.py [--rows 1,16,64,128,256] [--json FILE]
        [--splits 1,2,4,8] [--shape llama-3.1-8b|llama-3.2-1b|smollm2-135m]

For every projection (qkv, o, gate_up, down) and batch M it times, on one GPU:
  - bf16 torch.matmul (the bf16 model's GEMM);
  - torch._scaled_mm with row-wise scales and fast accumulation (what the fp8 model runs);
  - torch._scaled_mm with one scale per tensor (other cuBLASLt kernels; for comparison only);
  - the trtcompile fp8 decode GEMM where the library has one (TRTCOMPILE_KERNELS_LIB).
(with --splits, also at each forced split count of K: TRTC_FP8_GEMM_SPLITS)
and prints each as µs and as weight bandwidth (weight bytes / time). Each timed graph cycles
through enough copies of the weights (>= 256 MiB) that none is read from the 50 MB L2, as in a
model whose layers follow one another. Times: CUDA events around graph replays, median of 30.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kernels import gpu_time_us  # noqa: E402

FP8 = torch.float8_e4m3fn
CYCLE_BYTES = 256 << 20


def projection_shapes(shape_name: str) -> tuple[dict[str, tuple[int, int]], int]:
    """(K, N) of the four fp8 projections of a model shape of the reference workload, and its
    number of layers."""
    from bench_w1 import load_workload

    c = load_workload().MODEL_SHAPES[shape_name]
    hd = c["hidden_size"] // c["num_attention_heads"]
    heads = c["num_attention_heads"] + 2 * c["num_key_value_heads"]
    return {"qkv": (c["hidden_size"], heads * hd), "o": (c["num_attention_heads"] * hd, c["hidden_size"]),
            "gate_up": (c["hidden_size"], 2 * c["intermediate_size"]),
            "down": (c["intermediate_size"], c["hidden_size"])}, c["num_hidden_layers"]


def copies(nbytes: int) -> int:
    return max(2, -(-CYCLE_BYTES // nbytes))


def fp8_library():
    """The library's fp8 GEMM entry point, or None where this build has none."""
    try:
        from trtcompile.ops import cuda_kernels
        lib = cuda_kernels.load()
    except Exception as e:  # noqa: BLE001 - reported, the cuBLAS rows still run
        print(f"(no trtcompile kernels: {e})")
        return None
    if getattr(lib, "fp8_gemm", None) is None:
        return None
    lib.fp8_gemm_max_rows = 256     # time the kernel at every batch it takes
    return lib.fp8_gemm


def measure(name: str, m: int, k: int, n: int, lib_gemm, splits=()) -> dict:
    g = torch.Generator(device="cuda").manual_seed(0)
    nc = copies(k * n)                                        # fp8 bytes; bf16 twice as many
    w16 = [torch.randn(k, n, device="cuda", generator=g, dtype=torch.bfloat16) / k ** 0.5
           for _ in range(max(2, nc // 2))]
    ws = (w16[0].float().abs().amax(0, keepdim=True) / 448).clamp_min(1e-12)
    w8 = [(w16[i % len(w16)].float() / ws).to(FP8).t().contiguous().t() for i in range(nc)]
    x = torch.randn(m, k, device="cuda", generator=g, dtype=torch.bfloat16)
    sx = (x.float().abs().amax(1, keepdim=True) / 448).clamp_min(1e-12)
    x8 = (x.float() / sx).to(FP8)
    one = torch.ones((), device="cuda")

    def cycled(fn, count):
        state = {"i": 0}

        def call():
            fn(state["i"] % count)
            state["i"] += 1
        return call

    row = {"gemm": name, "m": m, "k": k, "n": n}
    row["bf16_us"] = gpu_time_us(cycled(lambda i: x @ w16[i], len(w16)), inner=len(w16))
    row["fp8_rowwise_us"] = gpu_time_us(cycled(
        lambda i: torch._scaled_mm(x8, w8[i], scale_a=sx, scale_b=ws, out_dtype=torch.bfloat16,
                                   use_fast_accum=True), nc), inner=nc)
    row["fp8_tensorwise_us"] = gpu_time_us(cycled(
        lambda i: torch._scaled_mm(x8, w8[i], scale_a=one, scale_b=one, out_dtype=torch.bfloat16,
                                   use_fast_accum=True), nc), inner=nc)
    if lib_gemm is not None:
        row["fp8_library_us"] = gpu_time_us(cycled(lambda i: lib_gemm(x8, sx, w8[i], ws), nc), inner=nc)
        for s in splits:
            os.environ["TRTC_FP8_GEMM_SPLITS"] = str(s)
            row[f"lib_split{s}_us"] = gpu_time_us(cycled(lambda i: lib_gemm(x8, sx, w8[i], ws), nc), inner=nc)
            del os.environ["TRTC_FP8_GEMM_SPLITS"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="1,16,32,64,128,192,256")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--splits", default="", help="forced split counts of K to time the library at")
    ap.add_argument("--shape", default="llama-3.1-8b", help="model shape of the workload (projections)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_fp8_decode_gemm.py needs a CUDA GPU")
    rows = [int(r) for r in args.rows.split(",")]
    lib_gemm = fp8_library()
    splits = [int(s) for s in args.splits.split(",") if s] if lib_gemm else []
    shapes, layers = projection_shapes(args.shape)
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, {args.shape}: "
          + ", ".join(f"{k} {kn[0]}->{kn[1]}" for k, kn in shapes.items()))
    cols = ["bf16_us", "fp8_rowwise_us", "fp8_tensorwise_us"] + (["fp8_library_us"] if lib_gemm else [])
    cols += [f"lib_split{s}_us" for s in splits]
    print(f"{'gemm':8} {'M':>4} " + " ".join(f"{c:>18}" for c in cols) + "   (µs, fp8 weight GB/s)")
    out = []
    for name, (k, n) in shapes.items():
        for m in rows:
            r = measure(name, m, k, n, lib_gemm, splits)
            out.append(r)
            cells = []
            for c in cols:
                wbytes = k * n * (2 if c == "bf16_us" else 1)
                cells.append(f"{r[c]:8.1f} {wbytes / r[c] / 1e3:7.0f}GB/s")
            print(f"{name:8} {m:4d} " + " ".join(f"{c:>18}" for c in cells), flush=True)
    # the decode step of the fp8 model: all four projections of every layer
    print(f"\nper decode step, {layers} layers (ms):")
    for m in rows:
        sel = [r for r in out if r["m"] == m]
        line = " ".join(f"{c}={layers * sum(r[c] for r in sel) / 1e3:.2f}" for c in cols)
        floor = layers * sum(r["k"] * r["n"] for r in sel) / 3.0e12 * 1e3
        print(f"  M={m:4d}: {line}   fp8 bytes at 3.0 TB/s={floor:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"device": torch.cuda.get_device_name(), "shape": args.shape,
                                         "rows": out}, indent=1))


if __name__ == "__main__":
    main()
