"""Quantized kernel benchmarks on one GPU: WeightOnlyGemm (int8 per channel, int4 g128 / g32
with zeros, scales pre-packed or read as float32) vs bf16 torch.matmul, and the per-token
int8/fp8 quantizers vs the plain-torch reference and a device copy.

Each number: the median of CUDA-event timings of one CUDA-graph replay of one call, with L2
flushed (a 256 MB buffer rewritten) before every replay, after warm-up (so the weights come
from HBM, as in a model whose weights exceed L2, and host launch overhead is excluded).

  python3 benchmarks/bench_quant.py [--json PATH] [--quick] [--decode] [--prefill-only]
                                   [--compare-tiled] [--tile-tokens 128,256]
                                   [--model-shapes llama-3.1-8b,llama-3.2-1b]
                                   [--split-sweep llama-3.1-8b,llama-3.2-1b]

--decode: only the decode sizes (M <= 32), with the fused gate/up shape of llama-3.1-8b as a
third; --prefill-only: only M > 32. --compare-tiled adds, for M > 32 on Hopper, rows of the
generic tiled kernel (natural code layout) beside the wgmma kernel on repacked codes, and where
the tensor-core int4 GEMV runs (17-32 tokens on wide projections) rows of the CUDA-core GEMV;
--tile-tokens times the wgmma kernel once per token tile (default: its own choice).
--split-sweep: the Hopper prefill kernel on every projection of the named model
shapes at 48-256 tokens, int8 per channel and int4 g128, by token tile x K split: one line per
case with bf16, the kernel's own choice, the unsplit launch of before (256-token tiles for
groups, 128 per channel) and the fastest pair.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

import torch

from bench_kernels import print_verdicts
from trtcompile.ops import cuda_kernels, quant_reference

DEV = "cuda"
BF16 = torch.bfloat16
DECODE_M = [1, 2, 4, 8, 16, 24, 32]
# Issue 8: WeightOnlyGemm at M = 1..16 on 4096 x 14336 at least this much faster than bf16
# torch.matmul (set on an H100: bench_kernels.TARGET_CARD).
GEMV_TARGET_SHAPE = "up/gate 4096->14336"
GEMV_TARGETS = {"int8": 1.7, "int4 g128": 3.0}
PREFILL_M = [256, 1024, 4096]
SHAPES = [("up/gate 4096->14336", 4096, 14336), ("down 14336->4096", 14336, 4096),
          ("gate_up fused 4096->28672", 4096, 28672)]   # --decode only
# name, bits, group_size, zeros, pre-packed pairs
VARIANTS = [("int8", 8, 0, False, True), ("int4 g128", 4, 128, True, True),
            ("int4 g128 f32", 4, 128, True, False), ("int4 g32", 4, 32, True, True),
            ("int4 g32 f32", 4, 32, True, False)]


class Timer:
    """Median time of fn() (one CUDA-graph replay) with L2 flushed before each replay."""

    def __init__(self, repeats: int):
        self.repeats = repeats
        self.flush = torch.empty(256 << 20, dtype=torch.uint8, device=DEV)

    def us(self, fn) -> float:
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        graph.replay()
        times = []
        for _ in range(self.repeats):
            self.flush.zero_()
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            graph.replay()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) * 1000)
        return statistics.median(times)


def quantized_weight(k: int, n: int, bits: int, group: int, zeros: bool):
    """Random codes (never zeros: they can time faster) and scales in the spec layout."""
    g = torch.Generator(device=DEV).manual_seed(n + k + bits)
    if bits == 8:
        q = torch.randint(-127, 128, (n, k), device=DEV, dtype=torch.int8, generator=g)
        return q, torch.rand(n, device=DEV, generator=g) / 100 + 1e-3, None
    q = torch.randint(0, 256, (n, k // 2), device=DEV, dtype=torch.uint8, generator=g)
    s = torch.rand(n, k // group, device=DEV, generator=g) / 8 + 1e-3
    z = 15 * torch.rand(n, k // group, device=DEV, generator=g) if zeros else None
    return q, s, z


def weight_bytes(qweight, scales, zeros, packed: bool, group: int) -> int:
    b = qweight.numel()
    if group and packed:
        return b + scales.numel() * 4                              # one (scale, min) T2 pair
    return b + scales.numel() * 4 + (zeros.numel() * 4 if zeros is not None else 0)


DEFAULTS = dict(use_packed_gemm=True, packed_tile_tokens=0, mma_gemv="auto")


def kernel_settings(lib, m, n, k, bits, group, compare, tiles):
    """(row label, library attributes) to time at M = m: the default kernel, and with compare
    the kernel it replaced (M > 32: the generic tiled one; where the tensor-core int4 GEMV runs:
    the CUDA-core GEMV)."""
    if m <= 32 or not lib.packed_gemm_on(torch.device(DEV)):
        out = [("", DEFAULTS)]
        if compare and lib.mma_gemv_fits(torch.device(DEV), m, n, k, bits, group):
            out.append((" cuda-core gemv", dict(DEFAULTS, mma_gemv="never")))
        return out
    out = [(f" wgmma t{t}" if t else "", dict(DEFAULTS, packed_tile_tokens=t)) for t in tiles]
    return out + [(" generic tiled", dict(DEFAULTS, use_packed_gemm=False))] if compare else out


def bench_gemm(lib, timer, ms, rows, quick, compare=False, tiles=(0,), shapes=SHAPES[:2]):
    for shape_name, k, n in shapes[:1] if quick else shapes:
        w16 = torch.randn(k, n, device=DEV, dtype=BF16) / 64
        weights = {v[0]: quantized_weight(k, n, v[1], v[2], v[3]) for v in VARIANTS}
        for m in ms:
            x = torch.randn(m, k, device=DEV, dtype=BF16)
            io = (m * k + m * n) * 2
            flops = 2 * m * n * k
            t_ref = timer.us(lambda: torch.matmul(x, w16))
            rows.append(dict(shape=shape_name, m=m, variant="bf16 matmul", us=t_ref,
                             gbps=(k * n * 2 + io) / t_ref / 1e3, tflops=flops / t_ref / 1e6,
                             speedup=1.0))
            for name, bits, group, _, packed in VARIANTS:
                q, s, z = weights[name]
                lib.pack_group_scales = packed
                for label, setting in kernel_settings(lib, m, n, k, bits, group, compare, tiles):
                    for attr, value in setting.items():
                        setattr(lib, attr, value)
                    t = timer.us(lambda: lib.weight_only_gemm(x, q, s, z, bits, group))
                    rows.append(dict(shape=shape_name, m=m, variant=name + label, us=t,
                                     gbps=(weight_bytes(q, s, z, packed, group) + io) / t / 1e3,
                                     tflops=flops / t / 1e6, speedup=t_ref / t))
                for attr, value in DEFAULTS.items():
                    setattr(lib, attr, value)
        lib.pack_group_scales = True
        del w16, weights


def bench_model_shapes(lib, timer, rows, shape_names, groups=(128, 32)):
    """--model-shapes: int4 (with zeros) on every projection of the named model shapes of the
    reference workload, beside bf16. At decode sizes (M <= 32) by the CUDA-core GEMV (policy
    "never"), the tensor-core GEMV ("always", where it runs) and the default dispatch ("auto");
    at 48-256 tokens by the default (the Hopper prefill kernel's own token tile and K split) and
    by that kernel as it launched before K splits ("unsplit t256")."""
    from bench_fp8_decode_gemm import projection_shapes

    settings = {m: [(p, dict(mma_gemv=p)) for p in ("never", "always", "auto")] for m in DECODE_M}
    for m in SPLIT_M:
        settings[m] = [("auto", {}),
                       ("unsplit t256", dict(packed_k_splits=1, packed_tile_tokens=256))]
    for shape_name in shape_names:
        for proj, (k, n) in projection_shapes(shape_name)[0].items():
            w16 = torch.randn(k, n, device=DEV, dtype=BF16) / 64
            for group in groups:
                q, s, z = quantized_weight(k, n, 4, group, True)
                for m, variants in settings.items():
                    x = torch.randn(m, k, device=DEV, dtype=BF16)
                    t_ref = timer.us(lambda: torch.matmul(x, w16))
                    name = f"{shape_name} {proj} {k}x{n}"
                    flops = 2 * m * n * k
                    rows.append(dict(shape=name, m=m, variant="bf16 matmul", us=t_ref,
                                     gbps=k * n * 2 / t_ref / 1e3, tflops=flops / t_ref / 1e6,
                                     speedup=1.0))
                    for label, attrs in variants:
                        defaults = {a: getattr(lib, a) for a in attrs}
                        for a, v in attrs.items():
                            setattr(lib, a, v)
                        try:
                            runs = label != "always" or lib.mma_gemv_fits(x.device, m, n, k, 4,
                                                                          group)
                            t = timer.us(lambda: lib.weight_only_gemm(x, q, s, z, 4, group)) \
                                if runs else None
                        finally:
                            for a, v in defaults.items():
                                setattr(lib, a, v)
                        if t is None:
                            continue
                        rows.append(dict(shape=name, m=m, variant=f"int4 g{group} {label}", us=t,
                                         gbps=weight_bytes(q, s, z, True, group) / t / 1e3,
                                         tflops=flops / t / 1e6, speedup=t_ref / t))
            del w16


SPLIT_M = (48, 64, 128, 256)


def bench_split_sweep(lib, timer, rows, shape_names):
    """--split-sweep: the wgmma prefill kernel at SPLIT_M tokens by token tile x K split."""
    from bench_fp8_decode_gemm import projection_shapes

    combos = [(t, sp) for t in (64, 128, 256) for sp in (1, 2, 4, 8)]
    print(f"{'shape':28} {'variant':9} {'M':>4} {'bf16':>7} {'auto':>7} {'before':>7} "
          f"{'best':>7} {'(tile, splits)':>15}")
    for shape_name in shape_names:
        for proj, (k, n) in projection_shapes(shape_name)[0].items():
            w16 = torch.randn(k, n, device=DEV, dtype=BF16) / 64
            for variant, bits, group in (("int8", 8, 0), ("int4 g128", 4, 128)):
                q, s, z = quantized_weight(k, n, bits, group, bits == 4)
                for m in SPLIT_M:
                    x = torch.randn(m, k, device=DEV, dtype=BF16)
                    t_ref = timer.us(lambda: torch.matmul(x, w16))
                    times = {}
                    for tile, splits in [(0, 0)] + combos:
                        lib.packed_tile_tokens, lib.packed_k_splits = tile, splits
                        try:
                            times[tile, splits] = timer.us(
                                lambda: lib.weight_only_gemm(x, q, s, z, bits, group))
                        finally:
                            lib.packed_tile_tokens = lib.packed_k_splits = 0
                    best = min(combos, key=times.get)
                    before = times[256 if group else 128, 1]
                    name = f"{shape_name} {proj} {k}x{n}"
                    print(f"{name:28} {variant:9} {m:4d} {t_ref:7.1f} {times[0, 0]:7.1f} "
                          f"{before:7.1f} {times[best]:7.1f} {str(best):>15}")
                    rows.append(dict(shape=name, m=m, variant=variant, bf16_us=t_ref,
                                     times={f"{t},{sp}": v for (t, sp), v in times.items()}))
            del w16


def bench_quantize(lib, timer, rows):
    r, k = 8192, 4096
    x = torch.randn(r, k, device=DEV, dtype=BF16)
    nbytes = r * k * 2 + r * k + r * 2
    t_copy = timer.us(lambda: x.clone())
    rows.append(dict(shape=f"{r}x{k} bf16", m=r, variant="device copy", us=t_copy,
                     gbps=2 * r * k * 2 / t_copy / 1e3, tflops=0.0, speedup=1.0))
    for target in ("int8", "fp8"):
        t_ref = timer.us(lambda: quant_reference.quantize_per_token(x, target))
        t = timer.us(lambda: lib.quantize_per_token(x, target))
        rows.append(dict(shape=f"{r}x{k} bf16", m=r, variant=f"torch reference {target}",
                         us=t_ref, gbps=nbytes / t_ref / 1e3, tflops=0.0, speedup=1.0))
        rows.append(dict(shape=f"{r}x{k} bf16", m=r, variant=f"kernel {target}", us=t,
                         gbps=nbytes / t / 1e3, tflops=0.0, speedup=t_ref / t))


def gemv_target_lines(rows: list[dict]) -> list[str]:
    """One verdict per GEMV target, from its lowest ratio over M = 1..16 (none without rows)."""
    lines = []
    for variant, target in GEMV_TARGETS.items():
        cells = [(r["speedup"], r["m"]) for r in rows if r["shape"] == GEMV_TARGET_SHAPE
                 and r["variant"] == variant and 1 <= r["m"] <= 16]
        if cells:
            worst, m = min(cells)
            lines.append(f"target {variant} >= {target}x bf16 at M = 1..16 on 4096 x 14336: "
                         f"lowest {worst:.2f}x (M = {m}): {'met' if worst >= target else 'missed'}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the rows to this file")
    ap.add_argument("--quick", action="store_true", help="one shape, fewer repeats")
    ap.add_argument("--decode", action="store_true",
                    help="only the WeightOnlyGemm decode sizes (M <= 32), three shapes")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--prefill-only", action="store_true", help="only the GEMMs with M > 32")
    ap.add_argument("--model-shapes", default="",
                    help="comma-separated model shapes of the reference workload (e.g. "
                         "llama-3.1-8b,llama-3.2-1b): only int4 on their projections, M <= 256, "
                         "by each kernel choice")
    ap.add_argument("--split-sweep", default="",
                    help="comma-separated model shapes: the prefill kernel by token tile x K "
                         "split at 48-256 tokens")
    ap.add_argument("--compare-tiled", action="store_true",
                    help="also time the kernels the default replaced: the generic tiled one "
                         "where the wgmma one runs, the CUDA-core GEMV where the tensor-core one")
    ap.add_argument("--tile-tokens", default="0",
                    help="comma-separated token tiles of the wgmma kernel (0: its default)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench_quant: needs a CUDA GPU", file=sys.stderr)
        return 1
    lib = cuda_kernels.load()
    timer = Timer(10 if args.quick else args.repeats)
    rows: list[dict] = []
    tiles = tuple(int(t) for t in args.tile_tokens.split(","))
    if args.split_sweep:
        bench_split_sweep(lib, timer, rows, args.split_sweep.split(","))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"card": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)
        return 0
    if args.model_shapes:
        bench_model_shapes(lib, timer, rows, args.model_shapes.split(","))
        sizes = []
    elif args.decode:
        sizes = DECODE_M
    elif args.prefill_only:
        sizes = PREFILL_M
    else:
        bench_quantize(lib, timer, rows)
        sizes = DECODE_M + PREFILL_M
    if sizes:
        bench_gemm(lib, timer, sizes, rows, args.quick, args.compare_tiled, tiles,
                   SHAPES if args.decode else SHAPES[:2])
    card = torch.cuda.get_device_name()
    print(f"# {card}, torch {torch.__version__}; median us, L2 flushed, CUDA-graph replay")
    print(f"{'shape':22} {'M':>5} {'variant':28} {'us':>9} {'GB/s':>7} {'TFLOP/s':>8} "
          f"{'x bf16':>7}")
    for r in rows:
        print(f"{r['shape']:22} {r['m']:5d} {r['variant']:28} {r['us']:9.1f} {r['gbps']:7.0f} "
              f"{r['tflops']:8.1f} {r['speedup']:7.2f}")
    print_verdicts(gemv_target_lines(rows), card)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"card": card, "torch": torch.__version__, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
