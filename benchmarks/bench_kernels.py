"""Kernel benchmarks on one GPU: paged decode/prefill attention vs torch SDPA, RMSNorm and
SiluMul vs a device-to-device copy. GPU times from CUDA events around CUDA-graph replays
(so host launch overhead is excluded on both sides); median of repeats after warm-up. Our
kernel, the baseline library's and the torch reference of one row are replayed in turn, round
by round (gpu_times_us), so a clock that drifts during the run falls on all of them alike.
Prints a table; writes $OUT/bench_kernels.json when OUT is set.

Flags: --splits (decode at forced split counts), --decode-variants (decode tuning overrides),
--variants (prefill variants), --profile, --decode-only / --prefill-only (skip the other
benchmarks), --prefill-sweep (prefill alone over chunk lengths 128..4096 and long cached
prefixes, SDPA beside it), --baseline-lib PATH (decode and prefill rows also timed with another build of the
kernel library, in the same process, for A/B comparisons)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from trtcompile.ops import cuda_kernels

DEV = "cuda"
BF16 = torch.bfloat16
# The card the issues' targets were set on (with references measured there). On another card
# the same comparison still runs against references timed in the same process, but a verdict
# is that card's reading, not the target's.
TARGET_CARD = "H100 80GB HBM3"


def target_card_note(card: str) -> str:
    """A line to print under a table of verdicts: empty on the target card."""
    if TARGET_CARD in card:
        return ""
    return (f"note: the targets were set on an NVIDIA {TARGET_CARD}; this run is on {card}, "
            "so each verdict is this card's reading (references timed in the same process)")


def print_verdicts(lines: list[str], card: str) -> None:
    """A benchmark's target verdict lines, then (where there are any) the card note."""
    for line in lines:
        print(line)
    if lines and (note := target_card_note(card)):
        print(note)


def verdict(r: dict) -> str:
    """met / missed for a row with a ratio target (at most) or a share-of-copy target (at least)."""
    if "ratio" in r and "target" in r:
        return "met" if r["ratio"] <= r["target"] else "missed"
    if "pct_copy" in r and "target_pct" in r:
        return "met" if r["pct_copy"] >= r["target_pct"] else "missed"
    return ""


def print_table(rows: list[dict], card: str) -> None:
    """The rows with their references, ratios and verdicts, then the card note."""
    print(f"\n{card}, torch {torch.__version__}")
    print(f"{'benchmark':44s} {'ours us':>9s} {'ref us':>9s} {'ratio':>6s} {'target':>6s} "
          f"{'verdict':>7s}  note")
    for r in rows:
        if "error" in r:
            print(f"{r['bench']:44s} ERROR {r['error']}")
            continue
        ref = f"{r['ref_us']:9.1f}" if "ref_us" in r else " " * 9
        ratio = f"{r['ratio']:6.3f}" if "ratio" in r else " " * 6  # 1.054, not 1.05
        target = f"{r['target']:6.2f}" if "target" in r else " " * 6
        note = ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()
                         if k in ("ref", "ours_GBps", "ours_TFLOPs", "GBps", "pct_copy"))
        print(f"{r['bench']:44s} {r['ours_us']:9.1f} {ref} {ratio} {target} {verdict(r):>7s}  "
              f"{note}")
    if note := target_card_note(card):
        print(note)


@contextlib.contextmanager
def tuning_env(env: dict[str, str]):
    """The kernel library's tuning overrides (environment variables it reads at each launch)
    set for the block, and removed after it."""
    os.environ.update(env)
    try:
        yield
    finally:
        for k in env:
            os.environ.pop(k, None)


def write_out_json(name: str, card: str, rows: list) -> None:
    """$OUT/name with the card, torch version and rows, when OUT is set (the GPU machine)."""
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, name), "w") as f:
            json.dump(dict(card=card, torch=torch.__version__, rows=rows), f, indent=1)


def _captured(fn, inner: int) -> torch.cuda.CUDAGraph:
    """A CUDA graph of `inner` fn() calls, captured after 3 warm-up calls and replayed 3 times."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(inner):
            fn()
    for _ in range(3):
        graph.replay()
    return graph


def _replay_us(graph: torch.cuda.CUDAGraph, inner: int) -> float:
    """One replay's time between CUDA events, per call."""
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    graph.replay()
    b.record()
    b.synchronize()
    return a.elapsed_time(b) * 1000 / inner


def gpu_time_us(fn, inner: int = 10, repeats: int = 30) -> float:
    """Median time of one fn() call: a CUDA graph of `inner` calls, replayed `repeats` times."""
    graph = _captured(fn, inner)
    return statistics.median([_replay_us(graph, inner) for _ in range(repeats)])


def gpu_times_us(fns: dict, inner: int = 10, repeats: int = 30) -> dict:
    """gpu_time_us of several callables, their graphs' replays interleaved round by round (in
    turn forwards and backwards), so that a clock that drifts during the measurement (a card
    warming up) falls on all of them alike. name -> µs, or the exception that stopped that
    callable (RuntimeError / NotImplementedError) in place of its time."""
    graphs = {}
    for name, fn in fns.items():
        try:
            graphs[name] = _captured(fn, inner)
        except (RuntimeError, NotImplementedError) as e:
            graphs[name] = e
    live = [name for name, g in graphs.items() if not isinstance(g, Exception)]
    times = {name: [] for name in live}
    for r in range(repeats):
        for name in (live if r % 2 == 0 else live[::-1]):
            times[name].append(_replay_us(graphs[name], inner))
    return {name: statistics.median(times[name]) if name in times else g
            for name, g in graphs.items()}


def paged_case(seqs, hq=32, hkv=8, d=128, block=16, dtype=BF16, seed=0):
    """seqs [(cached, new)] -> kwargs of KernelLibrary.paged_attention (shuffled block table)."""
    g = torch.Generator(device=DEV).manual_seed(seed)
    lens = [c + n for c, n in seqs]
    nblk = [math.ceil(x / block) for x in lens]
    num_blocks = sum(nblk)
    perm = torch.randperm(num_blocks, device=DEV, generator=g).to(torch.int32)
    max_blocks = max(nblk)
    tables = torch.zeros(len(seqs), max_blocks, dtype=torch.int32, device=DEV)
    start = 0
    for s, nb in enumerate(nblk):
        tables[s, :nb] = perm[start:start + nb]
        start += nb
    pos, qsl, sid = [], [0], []
    for s, (c, n) in enumerate(seqs):
        pos.extend(range(c, c + n))
        sid.extend([s] * n)
        qsl.append(qsl[-1] + n)
    positions = torch.tensor(pos, dtype=torch.int32, device=DEV)
    sid = torch.tensor(sid, dtype=torch.long, device=DEV)
    slots = (tables[sid, positions.long() // block].long() * block + positions.long() % block).int()
    t = len(pos)
    kv = torch.randn(1, 2, num_blocks, block, hkv, d, device=DEV, generator=g, dtype=dtype)
    qkv = torch.randn(t, (hq + 2 * hkv) * d, device=DEV, generator=g, dtype=dtype)
    inv_freq = 1.0 / (10000 ** (torch.arange(0, d, 2, device=DEV).float() / d))
    return dict(q=qkv, k=None, v=None, positions=positions,
                query_start_loc=torch.tensor(qsl, dtype=torch.int32, device=DEV),
                seq_lens=torch.tensor(lens, dtype=torch.int32, device=DEV), block_tables=tables,
                slot_mapping=slots, kv_cache=kv, inv_freq=inv_freq, kv_scales=None, layer_idx=0,
                num_heads=hq, num_kv_heads=hkv, head_dim=d, scale=d ** -0.5, sliding_window=0,
                rotary_dim=d, rotary_scaling=1.0, fused_qkv=1)


def sdpa_decode_fns(b, ctx, hq=32, hkv=8, d=128) -> dict:
    """The SDPA formulations of GQA decode over a contiguous cache, by name."""
    q = torch.randn(b, hq, 1, d, device=DEV, dtype=BF16)
    k = torch.randn(b, hkv, ctx, d, device=DEV, dtype=BF16)
    v = torch.randn_like(k)
    qg = q.view(b, hkv, hq // hkv, d)  # the group's query heads as 4 query rows, no mask
    return {
        "gqa_as_rows": lambda: F.scaled_dot_product_attention(qg, k, v),
        "enable_gqa": lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
    }


def against_reference(ours: dict, refs: dict, inner: int = 10) -> tuple[dict, float, str]:
    """Our callables and the reference's formulations (none: no reference) timed interleaved
    (gpu_times_us): (our name -> µs, the fastest reference's µs, its name)."""
    times = gpu_times_us({**ours, **{f"ref:{n}": fn for n, fn in refs.items()}}, inner=inner)
    for t in times.values():
        if isinstance(t, Exception):
            raise t
    ref, how = min((times[f"ref:{n}"], n) for n in refs) if refs else (None, None)
    return {n: times[n] for n in ours}, ref, how


def baseline_lib():
    """The library named by --baseline-lib PATH, else None."""
    if "--baseline-lib" not in sys.argv:
        return None
    return cuda_kernels.KernelLibrary(Path(sys.argv[sys.argv.index("--baseline-lib") + 1]))


# Issue 7's decode targets (time / SDPA's) at its shapes, GQA 32/8 head_dim 128; other rows
# (W1's short contexts, tuning shapes) are reported without one.
DECODE_TARGETS = {(64, 2048): 1.05, (256, 1024): 1.05, (1, 4096): 1.2}


def bench_decode(lib, rows):
    base = baseline_lib()
    # B=256 ctx 512: the short contexts of the serving run (W1, llama-3.1-8b shape)
    shapes = [(64, 2048), (256, 1024), (1, 4096), (256, 512)]  # GQA 32/8, head_dim 128
    if "--decode-variants" in sys.argv:
        shapes.append((1, 16))  # one key tile: the fixed cost of a call
        # 8 query heads per kv head; head_dim 64 (kernels of other shapes than the issue's)
        shapes += [(64, 2048, 32, 4, 128), (256, 512, 32, 4, 128), (64, 2048, 32, 8, 64),
                   (256, 512, 32, 8, 64),
                   (512, 2048, 4, 1, 128)]  # B=64 ctx 2048's bytes, one kv head: blocks contiguous
    for b, ctx, *heads in shapes:
        hq, hkv, d = heads or (32, 8, 128)
        case = paged_case([(ctx - 1, 1)] * b, hq=hq, hkv=hkv, d=d)
        fns = {"ours": lambda: lib.paged_attention(**case)}
        if base is not None:
            fns["base"] = lambda: base.paged_attention(**case)
        t, ref, how = against_reference(fns, sdpa_decode_fns(b, ctx, hq=hq, hkv=hkv, d=d))
        ours = t["ours"]
        kv_bytes = b * ctx * hkv * d * 2 * 2
        name = f"decode B={b} ctx={ctx}" + (f" {hq}/{hkv} d{d}" if heads else "")
        row = dict(bench=name, ours_us=ours, ref_us=ref, ref=f"SDPA ({how})", ratio=ours / ref,
                   ours_GBps=kv_bytes / ours / 1e3)
        if not heads and (b, ctx) in DECODE_TARGETS:
            row["target"] = DECODE_TARGETS[b, ctx]
        rows.append(row)
        if base is not None:
            rows.append(dict(bench="  same, baseline lib", ours_us=t["base"], ref_us=ref,
                             ratio=t["base"] / ref, ours_GBps=kv_bytes / t["base"] / 1e3))
        if "--decode-variants" in sys.argv:  # tuning overrides against the planner's kernel
            variants = {f"mma warps x stages {v}": {"TRTC_PA_DECODE_MMA": v}
                        for v in ("4,2", "4,3", "8,3")}
            variants["CUDA-core kernel"] = {"TRTC_PA_DECODE_LEGACY": "1"}
            variants["kv_write + decode (not fused)"] = {"TRTC_PA_DECODE_FUSED": "0"}
            for name, env in variants.items():
                os.environ.update(env)
                t = gpu_time_us(lambda: lib.paged_attention(**case))
                rows.append(dict(bench=f"  same, {name}", ours_us=t, ref_us=ref, ratio=t / ref,
                                 ours_GBps=kv_bytes / t / 1e3))
                for k in env:
                    del os.environ[k]
        if "--splits" in sys.argv and not heads:  # the planner's choice against forced splits
            for n in (1, 2, 3, 4, 8, 16, 32):
                os.environ["TRTC_PA_NSPLIT"] = str(n)
                t = gpu_time_us(lambda: lib.paged_attention(**case))
                rows.append(dict(bench=f"  same, nsplit={n}", ours_us=t, ref_us=ref, ratio=t / ref,
                                 ours_GBps=kv_bytes / t / 1e3))
            del os.environ["TRTC_PA_NSPLIT"]


def sdpa_prefill_fns(n: int, new: int) -> dict:
    """The torch SDPA formulations (causal, contiguous q/k/v, GQA 32/8, head_dim 128) of
    n x new, by name."""
    q = torch.randn(n, 32, new, 128, device=DEV, dtype=BF16)
    k = torch.randn(n, 8, new, 128, device=DEV, dtype=BF16)
    v = torch.randn_like(k)
    ke, ve = k.repeat_interleave(4, 1), v.repeat_interleave(4, 1)
    return {
        "flash, k/v expanded": lambda: F.scaled_dot_product_attention(q, ke, ve, is_causal=True),
        "enable_gqa": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True),
    }


def bench_prefill_sweep(lib, rows):
    """--prefill-sweep: prefill attention (kv_write included) over lengths, against SDPA where the
    chunk starts at position 0; the short chunks show a tile's fixed cost."""
    base = baseline_lib()
    for n, new, cached in [(32, 128, 0), (16, 256, 0), (8, 512, 0), (4, 1024, 0), (2, 2048, 0),
                           (1, 4096, 0), (8, 512, 1536), (2, 512, 7680)]:
        case = paged_case([(cached, new)] * n)
        fns = {"ours": lambda: lib.paged_attention(**case)}
        if base is not None:
            fns["base"] = lambda: base.paged_attention(**case)
        flops = 4 * n * 32 * 128 * new * (cached + new / 2)
        t, ref, how = against_reference(fns, sdpa_prefill_fns(n, new) if cached == 0 else {},
                                        inner=5)
        ours = t["ours"]
        row = dict(bench=f"prefill {n}x{new} over {cached} cached", ours_us=ours,
                   ours_TFLOPs=flops / ours / 1e6)
        if cached == 0:
            row.update(ref_us=ref, ref=f"SDPA ({how})", ratio=ours / ref, target=1.25)
        rows.append(row)
        if base is not None:
            rows.append(dict(bench="  same, baseline lib", ours_us=t["base"],
                             ours_TFLOPs=flops / t["base"] / 1e6))


def bench_prefill(lib, rows):
    n, new = 8, 512
    case = paged_case([(0, new)] * n)
    base = baseline_lib()
    fns = {"ours": lambda: lib.paged_attention(**case)}
    if base is not None:
        fns["base"] = lambda: base.paged_attention(**case)
    t, ref, how = against_reference(fns, sdpa_prefill_fns(n, new), inner=5)
    ours = t["ours"]
    flops = 4 * n * 32 * 128 * new * new / 2
    rows.append(dict(bench=f"prefill {n}x{new} new, causal", ours_us=ours, ref_us=ref,
                     ref=f"SDPA ({how})", ratio=ours / ref, target=1.25,
                     ours_TFLOPs=flops / ours / 1e6))
    if base is not None:
        rows.append(dict(bench="  same, baseline lib", ours_us=t["base"], ref_us=ref,
                         ratio=t["base"] / ref, ours_TFLOPs=flops / t["base"] / 1e6))
    if "--variants" in sys.argv:  # tuning overrides against the default
        variants = {"warp-specialized kernel": {"TRTC_PA_PREFILL_WG": "2"},
                    "warp-specialized kernel, no ping-pong": {"TRTC_PA_PREFILL_WG": "2",
                                                              "TRTC_PA_PREFILL_PINGPONG": "0"},
                    "mma.sync fast kernel (sm_80/89 path)": {"TRTC_PA_PREFILL_MMA": "1"},
                    "one-warpgroup wgmma kernel": {"TRTC_PA_PREFILL_WG": "1"},
                    "one-warpgroup wgmma kernel, 3 stages / 2 CTAs per SM":
                        {"TRTC_PA_PREFILL_WG": "1", "TRTC_PA_PREFILL_STAGES": "3"},
                    "mma.sync kernel, 3 stages": {"TRTC_PA_PREFILL_MMA": "1", "TRTC_PA_PREFILL_STAGES": "3"},
                    "mma.sync kernel, 32-key tiles": {"TRTC_PA_PREFILL_MMA": "1",
                                                      "TRTC_PA_PREFILL_KEYS": "32"},
                    "tile kernel (quantized-pool path), MINB=2": {"TRTC_PA_PREFILL_LEGACY": "1"},
                    "tile kernel, MINB=1": {"TRTC_PA_PREFILL_LEGACY": "1", "TRTC_PA_PREFILL_MINB": "1"}}
        for name, env in variants.items():
            os.environ.update(env)
            t = gpu_time_us(lambda: lib.paged_attention(**case), inner=5)
            rows.append(dict(bench=f"  same, {name}", ours_us=t, ours_TFLOPs=flops / t / 1e6))
            for k in env:
                del os.environ[k]
    cached = 1536
    case = paged_case([(cached, new)] * n)
    fns = {"ours": lambda: lib.paged_attention(**case)}
    if base is not None:
        fns["base"] = lambda: base.paged_attention(**case)
    t, _, _ = against_reference(fns, {}, inner=5)
    flops = 4 * n * 32 * 128 * new * (cached + new / 2)
    rows.append(dict(bench=f"prefill {n}x{new} new over {cached} cached", ours_us=t["ours"],
                     ours_TFLOPs=flops / t["ours"] / 1e6))
    if base is not None:
        rows.append(dict(bench="  same, baseline lib", ours_us=t["base"],
                         ours_TFLOPs=flops / t["base"] / 1e6))
    if "--variants" in sys.argv:
        for name, var, value in (("warp-specialized kernel", "TRTC_PA_PREFILL_WG", "2"),
                                 ("mma.sync fast kernel", "TRTC_PA_PREFILL_MMA", "1"),
                                 ("one-warpgroup wgmma kernel", "TRTC_PA_PREFILL_WG", "1")):
            os.environ[var] = value
            t = gpu_time_us(lambda: lib.paged_attention(**case), inner=5)
            rows.append(dict(bench=f"  same, {name}", ours_us=t, ours_TFLOPs=flops / t / 1e6))
            del os.environ[var]


def bench_bandwidth(lib, rows):
    r, h = 8192, 4096
    src = torch.randn(r * h * 2, device=DEV, dtype=BF16)
    dst = torch.empty_like(src)
    copy_us = gpu_time_us(lambda: dst.copy_(src))
    copy_gbps = 2 * src.numel() * 2 / copy_us / 1e3
    rows.append(dict(bench=f"copy {src.numel() * 2 >> 20} MiB (reference)", ours_us=copy_us,
                     GBps=copy_gbps))
    x = torch.randn(r, h, device=DEV, dtype=BF16)
    res = torch.randn_like(x)
    w = torch.randn(h, device=DEV, dtype=BF16)
    t = gpu_time_us(lambda: lib.rms_norm(x, w, res, 1e-6))
    gbps = 4 * x.numel() * 2 / t / 1e3
    rows.append(dict(bench=f"rmsnorm+residual {r}x{h}", ours_us=t, GBps=gbps,
                     pct_copy=100 * gbps / copy_gbps, target_pct=80))
    t = gpu_time_us(lambda: lib.rms_norm(x, w, None, 1e-6))
    gbps = 2 * x.numel() * 2 / t / 1e3
    rows.append(dict(bench=f"rmsnorm {r}x{h}", ours_us=t, GBps=gbps,
                     pct_copy=100 * gbps / copy_gbps, target_pct=80))
    xs = torch.randn(r, 2 * h, device=DEV, dtype=BF16)
    t = gpu_time_us(lambda: lib.silu_mul(xs))
    gbps = 3 * r * h * 2 / t / 1e3
    rows.append(dict(bench=f"silu_mul {r}x{h} (x {r}x{2 * h})", ours_us=t, GBps=gbps,
                     pct_copy=100 * gbps / copy_gbps, target_pct=80))


def profile(lib) -> None:
    """Per-kernel GPU times (torch.profiler) of the paged attention cases."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    cases = {"decode B=1 ctx=4096": [(4095, 1)], "decode B=64 ctx=2048": [(2047, 1)] * 64,
             "prefill 8x512": [(0, 512)] * 8, "prefill 32x128": [(0, 128)] * 32}
    for name, seqs in cases.items():
        case = paged_case(seqs)
        for _ in range(3):
            lib.paged_attention(**case)
        torch.cuda.synchronize()
        with prof(activities=[ProfilerActivity.CUDA]) as p:
            for _ in range(10):
                lib.paged_attention(**case)
            torch.cuda.synchronize()
        print(f"--- {name}")
        print(p.key_averages().table(sort_by="cuda_time_total", row_limit=6, max_name_column_width=60))


def main() -> int:
    lib = cuda_kernels.load()
    if "--profile" in sys.argv:
        profile(lib)
    rows: list[dict] = []
    if "--decode-only" in sys.argv:
        steps = (bench_decode,)
    elif "--prefill-only" in sys.argv:
        steps = (bench_prefill,)
    elif "--prefill-sweep" in sys.argv:
        steps = (bench_prefill_sweep,)
    else:
        steps = (bench_decode, bench_prefill, bench_bandwidth)
    for step in steps:
        try:
            step(lib, rows)
        except Exception as e:  # keep the other benchmarks' numbers
            rows.append(dict(bench=step.__name__, error=repr(e)))
    card = torch.cuda.get_device_name()
    print_table(rows, card)
    write_out_json("bench_kernels.json", card, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
