"""W8A8 GEMMs of the torch backend vs bf16 torch.matmul on one GPU, at the llama-3.1-8b
shapes: the library GEMM alone (torch._scaled_mm fp8 with row-wise scales, torch._int_mm
int8) and the whole lowered step (per-token activation quantization + GEMM + scales, as
trtcompile.executor.lowering.quantized_gemm runs it in a model).

    python benchmarks/bench_w8a8.py [--json FILE] [--producers-only] [--rows 256,2048,8192]
        [--baseline-lib PATH] [--silu-variants]

Times: CUDA events around CUDA-graph replays of 10 calls, median of 30 (bench_kernels.py's
gpu_time_us); the GEMMs of one shape and M are timed interleaved, replay by replay, so that the
card's clock drifting during the table (it warms up) does not favour the one timed first
(gpu_times_us). Weights are 29-117 MB, above the 50 MB L2 for the larger shapes only.
Then, at M = 1024, the relative error of bf16, fp8 and fp8 with fast accumulation against a
float64 product of the same operands, to decide whether fast accumulation is usable.
Last (or alone with --producers-only): the per-token fp8 quantization of the GEMM inputs that
the lowering fuses into RMSNorm and SiluMul, fused against the kernels it replaces (RMSNorm or
SiluMul, then quantize_per_token, then the bf16 -> float32 scale copy) and against the bf16
RMSNorm / SiluMul alone (what the bf16 model runs there); with --baseline-lib, also the fused
kernels of another build of the library, in the same process (A/B); with --silu-variants, the
fused SiluMul at each split of its row (the launcher's tuning overrides).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kernels import gpu_time_us, gpu_times_us, print_verdicts  # noqa: E402

from trtcompile.executor.lowering import quantized_gemm  # noqa: E402
from trtcompile.ops import cuda_kernels  # noqa: E402

SHAPES = {"qkv 4096x6144": (4096, 6144), "gate_up 4096x28672": (4096, 28672),
          "down 14336x4096": (14336, 4096)}
ROWS = (1, 16, 128, 1024, 4096, 8192)
# Issue 8: the fp8 W8A8 GEMM at M >= 1024 at least this much faster than bf16 (set on an H100:
# bench_kernels.TARGET_CARD); fast accumulation is the default (quantization.fp8_fast_accumulation).
FP8_TARGET, FP8_TARGET_MIN_M = 1.6, 1024
FP8 = torch.float8_e4m3fn


def operands(m: int, k: int, n: int):
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(m, k, device="cuda", generator=g, dtype=torch.bfloat16)
    w = torch.randn(k, n, device="cuda", generator=g, dtype=torch.bfloat16) / k ** 0.5
    ws = (w.float().abs().amax(0, keepdim=True) / 448).clamp_min(1e-12)
    w8 = (w.float() / ws).to(FP8).t().contiguous().t()                     # column-major
    wsi = (w.float().abs().amax(0, keepdim=True) / 127).clamp_min(1e-12)
    wi = (w.float() / wsi).round().clamp(-127, 127).to(torch.int8).t().contiguous().t()
    sx = (x.float().abs().amax(1, keepdim=True) / 448).clamp_min(1e-12)
    x8 = (x.float() / sx).to(FP8)
    sxi = (x.float().abs().amax(1, keepdim=True) / 127).clamp_min(1e-12)
    xi = (x.float() / sxi).round().clamp(-127, 127).to(torch.int8)
    return dict(x=x, w=w, w8=w8, ws=ws, wi=wi, wsi=wsi, x8=x8, sx=sx, xi=xi, sxi=sxi)


def measure(m: int, k: int, n: int) -> dict:
    o = operands(m, k, n)
    xi_pad = torch.nn.functional.pad(o["xi"], (0, 0, 0, max(0, 17 - m)))
    cases = {
        "bf16": lambda: torch.matmul(o["x"], o["w"]),
        "fp8_gemm": lambda: torch._scaled_mm(o["x8"], o["w8"], scale_a=o["sx"], scale_b=o["ws"],
                                             out_dtype=torch.bfloat16),
        "fp8_gemm_fast_accum": lambda: torch._scaled_mm(
            o["x8"], o["w8"], scale_a=o["sx"], scale_b=o["ws"], out_dtype=torch.bfloat16,
            use_fast_accum=True),
        "int8_gemm": lambda: torch._int_mm(xi_pad, o["wi"]),
        "fp8_step": lambda: quantized_gemm(o["x"], o["w8"], o["ws"], target="fp8"),
        "int8_step": lambda: quantized_gemm(o["x"], o["wi"], o["wsi"], target="int8"),
    }
    out = {"M": m, "K": k, "N": n}
    for name, t in gpu_times_us(cases).items():                 # bf16 and the rest interleaved
        if isinstance(t, Exception):                            # e.g. no CUDA quantizer kernel
            out[name] = None
            out[f"{name}_error"] = str(t).splitlines()[0][:120]
        else:
            out[name] = t
    return out


def accuracy(m: int, k: int, n: int) -> dict:
    """Relative error (Frobenius norm) of each GEMM against a float64 product of the very
    operands it multiplied: what the accumulation and output rounding cost, not quantization."""
    o = operands(m, k, n)

    def rel(out, ref):
        return ((out.double() - ref).norm() / ref.norm()).item()

    fp8_ref = (o["x8"].double() * o["sx"].double()) @ (o["w8"].double() * o["ws"].double())
    out = {"M": m, "K": k, "N": n,
           "bf16": rel(torch.matmul(o["x"], o["w"]), o["x"].double() @ o["w"].double())}
    for name, fast in (("fp8_gemm", False), ("fp8_gemm_fast_accum", True)):
        out[name] = rel(torch._scaled_mm(o["x8"], o["w8"], scale_a=o["sx"], scale_b=o["ws"],
                                         out_dtype=torch.bfloat16, use_fast_accum=fast), fp8_ref)
    return out


def producers(rows_list: tuple[int, ...], base=None) -> list[dict]:
    """RMSNorm(+residual) 4096 and SiluMul 14336 -> fp8 codes: fused vs separate vs bf16 alone
    (and the fused kernel of `base`, another build of the kernel library, when given)."""
    lib = cuda_kernels.load()
    out = []
    print("quantizing producers, times in us (llama-3.1-8b widths); x = fused / bf16 alone")
    print(f"{'producer':<22}{'rows':>6}{'bf16 alone':>12}{'separate':>10}{'fused':>8}{'x':>6}"
          + (f"{'base fused':>12}{'x':>6}{'base bf16':>11}" if base else ""))
    for rows in rows_list:
        g = torch.Generator(device="cuda").manual_seed(rows)
        x = torch.randn(rows, 4096, device="cuda", generator=g, dtype=torch.bfloat16)
        r = torch.randn(rows, 4096, device="cuda", generator=g, dtype=torch.bfloat16)
        w = torch.rand(4096, device="cuda", generator=g, dtype=torch.bfloat16) + 0.5
        gu = torch.randn(rows, 2 * 14336, device="cuda", generator=g, dtype=torch.bfloat16)

        def separate_norm():
            y, _ = lib.rms_norm(x, w, r, 1e-5)
            return lib.quantize_per_token(y, "fp8")[1].float()

        def separate_silu():
            return lib.quantize_per_token(lib.silu_mul(gu), "fp8")[1].float()

        cases = {"rmsnorm+res 4096": (lambda k: k.rms_norm(x, w, r, 1e-5), separate_norm,
                                      lambda k: k.rms_norm_quantize(x, w, r, 1e-5, "fp8")),
                 "silu_mul 14336": (lambda k: k.silu_mul(gu), separate_silu,
                                    lambda k: k.silu_mul_quantize(gu, "fp8"))}
        for name, (alone, sep, fused) in cases.items():
            t = {k: gpu_time_us(f) for k, f in (("bf16", lambda: alone(lib)), ("separate", sep),
                                                ("fused", lambda: fused(lib)))}
            line = (f"{name:<22}{rows:>6}{t['bf16']:12.1f}{t['separate']:10.1f}{t['fused']:8.1f}"
                    f"{t['fused'] / t['bf16']:6.2f}")
            if base:
                t["base_fused"] = gpu_time_us(lambda: fused(base))
                t["base_bf16"] = gpu_time_us(lambda: alone(base))
                line += (f"{t['base_fused']:12.1f}{t['base_fused'] / t['bf16']:6.2f}"
                         f"{t['base_bf16']:11.1f}")
            out.append({"producer": name, "rows": rows, **t})
            print(line, flush=True)
    return out


def silu_variants(rows_list: tuple[int, ...]) -> list[dict]:
    """The fused SiluMul 14336 -> fp8 at each TRTC_SILU_QUANT_CTAS x TRTC_SILU_QUANT_NV
    override (CTAs a row, vectors a thread; 0 = the launcher's choice), against bf16 SiluMul."""
    lib = cuda_kernels.load()
    splits = [(c, v) for c in (0, 1, 2, 4, 8) for v in (0, 1, 2, 4)]
    print("fused SiluMul 14336 -> fp8 by CTAs a row x vectors a thread, us (0 = default)")
    names = [f"{c}x{v}" for c, v in splits]
    print(f"{'rows':>6}{'bf16':>8}" + "".join(f"{n:>7}" for n in names))
    out = []
    for rows in rows_list:
        gu = torch.randn(rows, 2 * 14336, device="cuda", dtype=torch.bfloat16)
        times = {"bf16": gpu_time_us(lambda: lib.silu_mul(gu))}
        for (c, v), name in zip(splits, names):
            os.environ["TRTC_SILU_QUANT_CTAS"], os.environ["TRTC_SILU_QUANT_NV"] = str(c), str(v)
            times[name] = gpu_time_us(lambda: lib.silu_mul_quantize(gu, "fp8"))
        del os.environ["TRTC_SILU_QUANT_CTAS"], os.environ["TRTC_SILU_QUANT_NV"]
        out.append({"rows": rows, **times})
        print(f"{rows:>6}{times['bf16']:8.1f}" + "".join(f"{times[n]:7.1f}" for n in names),
              flush=True)
    return out


def fp8_target_lines(rows: list[dict]) -> list[str]:
    """The fp8 GEMM target's verdict with and without fast accumulation: the lowest ratio over
    the shapes at M >= FP8_TARGET_MIN_M."""
    lines = []
    for col, label in (("fp8_gemm_fast_accum", "fast accumulation (default)"),
                       ("fp8_gemm", "without fast accumulation")):
        cells = [(r["bf16"] / r[col], r["shape"], r["M"]) for r in rows
                 if r["M"] >= FP8_TARGET_MIN_M and r.get(col)]
        if cells:
            worst, shape, m = min(cells)
            lines.append(f"target fp8 GEMM >= {FP8_TARGET}x bf16 at M >= {FP8_TARGET_MIN_M}, "
                         f"{label}: lowest {worst:.2f}x ({shape}, M = {m}): "
                         f"{'met' if worst >= FP8_TARGET else 'missed'}")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", type=Path)
    ap.add_argument("--producers-only", action="store_true",
                    help="only the fused quantizing RMSNorm / SiluMul against the separate kernels")
    ap.add_argument("--rows", default="256,2048,8192",
                    help="row counts of the producer benchmarks (comma-separated)")
    ap.add_argument("--baseline-lib", type=Path,
                    help="another build of the kernel library: its fused producers timed too")
    ap.add_argument("--silu-variants", action="store_true",
                    help="also the fused SiluMul at each CTAs-a-row x vectors-a-thread override")
    args = ap.parse_args()
    rows_list = tuple(int(r) for r in args.rows.split(","))
    base = cuda_kernels.KernelLibrary(args.baseline_lib.resolve()) if args.baseline_lib else None
    from trtcompile.ops.cuda_kernels import register_cuda_impls
    register_cuda_impls()
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    if args.producers_only:
        result = {"device": torch.cuda.get_device_name(), "producers": producers(rows_list, base)}
        if args.silu_variants:
            result["silu_variants"] = silu_variants(rows_list)
        if args.json:
            args.json.write_text(json.dumps(result, indent=1))
        return
    rows = []
    cols = ("fp8_gemm", "fp8_gemm_fast_accum", "fp8_step", "int8_gemm", "int8_step")
    print("times in us; x = bf16 time / this time")
    print(f"{'shape':<20}{'M':>6}{'bf16':>9}" + "".join(f"{c:>{max(len(c), 9) + 1}}{'x':>6}"
                                                     for c in cols))
    for label, (k, n) in SHAPES.items():
        for m in ROWS:
            r = measure(m, k, n)
            r["shape"] = label
            rows.append(r)
            cells = []
            for name in cols:
                t, w = r[name], max(len(name), 9) + 1
                cells += [f"{t:{w}.1f}" if t else f"{'n/a':>{w}}",
                          f"{r['bf16'] / t:6.2f}" if t else f"{'':>6}"]
            print(f"{label:<20}{m:>6}{r['bf16']:9.1f}" + "".join(cells), flush=True)
    print_verdicts(fp8_target_lines(rows), torch.cuda.get_device_name())
    errors = {r[k] for r in rows for k in r if k.endswith("_error")}
    for e in errors:
        print("n/a:", e)
    print("relative error vs a float64 product of the same operands (accumulation + output "
          "rounding)")
    print(f"{'shape':<20}{'M':>6}{'bf16':>10}{'fp8_gemm':>10}{'fast_accum':>12}")
    accuracy_rows = []
    for label, (k, n) in SHAPES.items():
        r = accuracy(1024, k, n)
        r["shape"] = label
        accuracy_rows.append(r)
        print(f"{label:<20}{r['M']:>6}{r['bf16']:10.2e}{r['fp8_gemm']:10.2e}"
              f"{r['fp8_gemm_fast_accum']:12.2e}", flush=True)
    producer_rows = producers(rows_list, base)
    if args.json:
        args.json.write_text(json.dumps({"device": torch.cuda.get_device_name(), "rows": rows,
                                         "accuracy": accuracy_rows, "producers": producer_rows},
                                        indent=1))


if __name__ == "__main__":
    main()
