"""W1 end to end: build a random-weight artifact of a public model's shape, serve the W1
workload (256 requests submitted at once, EOS ignored) and report output tokens/s, TTFT and
TPOT percentiles, and start-up time (artifact load + CUDA graph capture -> first token).

    python benchmarks/bench_w1.py --shape llama-3.2-1b --repeats 5 --warmup 2

The workload generator and shapes come from shared/bench/workload.py (found next to the
repo, or at $TRTCOMPILE_WORKLOAD). Prefix caching is off: repeats replay the same prompts,
and a cache hit would skip their prefill. As `trtcompile serve` does, the objects start-up made
are frozen out of the garbage collector's reach (--no-gc-freeze: not); each run reports the
collector's time.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Issue 7 / 8 W1 targets (set on an H100: bench_kernels.TARGET_CARD): output tok/s by shape and
# quantization mode (None: no quantization.mode override), and start-up to the first token.
W1_TARGETS = {("smollm2-135m", None): 32_000, ("llama-3.2-1b", None): 30_000,
              ("llama-3.1-8b", "fp8"): 24_000}
START_UP_TARGETS_S = {"llama-3.2-1b": 10.0}


def load_workload():
    candidates = [os.environ.get("TRTCOMPILE_WORKLOAD", ""), REPO.parent / "shared/bench/workload.py",
                  REPO / ".shared_bench/workload.py"]
    for c in candidates:
        if c and Path(c).is_file():
            spec = importlib.util.spec_from_file_location("workload", c)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod
    sys.exit("workload.py not found: set TRTCOMPILE_WORKLOAD to shared/bench/workload.py")


def w1_target_lines(shape: str, overrides: list[str], tokens_per_s: float,
                    to_first_token_s: float) -> list[str]:
    """The verdicts of the W1 targets that apply to this shape and mode (none elsewhere)."""
    modes = [o.split("=", 1)[1] for o in overrides if o.startswith("quantization.mode=")]
    mode = modes[-1] if modes and modes[-1] != "none" else None
    lines = []
    if (want := W1_TARGETS.get((shape, mode))) is not None:
        lines.append(f"target W1 {shape}{f' {mode}' if mode else ''} >= {want:,} output tok/s: "
                     f"{tokens_per_s:,.0f}: {'met' if tokens_per_s >= want else 'missed'}")
    if (limit := START_UP_TARGETS_S.get(shape)) is not None:
        lines.append(f"target start-up to the first token <= {limit:.0f} s: "
                     f"{to_first_token_s:.1f} s: {'met' if to_first_token_s <= limit else 'missed'}")
    return lines


def random_llama(cfg, seed: int = 0):
    """A bf16 Llama with HF's initial distribution (N(0, 0.02) weights, unit norms), drawn on
    the GPU when there is one: CPU init of the 8B shape takes minutes."""
    import torch
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model = model.to_empty(device="cpu")
    if cfg.tie_word_embeddings:
        model.tie_weights()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    gen = torch.Generator(dev).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():        # tied parameters are listed once
            if name.endswith("norm.weight"):
                p.fill_(1.0)
                continue
            for rows in torch.split(p.view(p.shape[0], -1), 8192):
                rows.copy_(torch.randn(rows.shape, generator=gen, device=dev,
                                       dtype=torch.bfloat16).mul_(cfg.initializer_range))
    return model


def build_random_artifact(shape: dict, dtype: str, out: Path, max_num_seqs: int,
                          max_num_tokens: int, max_model_len: int,
                          overrides: list[str] = ()) -> float:
    from transformers import LlamaConfig

    from trtcompile.build import build
    from trtcompile.config import load_config

    hf_dir = out.parent / "hf"
    cfg = LlamaConfig(**shape, max_position_embeddings=max(2048, max_model_len))
    model = random_llama(cfg)
    model.save_pretrained(hf_dir)
    del model
    start = time.perf_counter()
    config = load_config(None, [f"model.source={hf_dir}", f"model.dtype={dtype}",
                                f"build.output_dir={out}", f"limits.max_num_seqs={max_num_seqs}",
                                f"limits.max_num_tokens={max_num_tokens}",
                                f"limits.max_model_len={max_model_len}",
                                "kv_cache.gpu_memory_fraction=0.8", *overrides])
    build(config, log=lambda m: print("  build:", m, flush=True))
    shutil.rmtree(hf_dir)                        # 16 GB for the 8B shape: disk is scarce
    return time.perf_counter() - start


class GcTime:
    """Milliseconds the garbage collector ran, per generation, since the last reset()."""

    def __init__(self):
        self.ms, self._start = [0.0, 0.0, 0.0], None
        gc.callbacks.append(self._event)

    def _event(self, phase, info):
        if phase == "start":
            self._start = time.perf_counter()
        elif self._start is not None:
            self.ms[info["generation"]] += (time.perf_counter() - self._start) * 1e3
            self._start = None

    def reset(self):
        self.ms = [0.0, 0.0, 0.0]


GC_TIME = GcTime()


def run_w1(llm, prompts, olens):
    from trtcompile.runtime.sampling_params import SamplingParams

    engine = llm.engine
    steps0 = engine.stats.num_steps
    GC_TIME.reset()
    t0 = time.perf_counter()
    first, last, count = {}, {}, {}
    for i, (p, n) in enumerate(zip(prompts, olens)):
        engine.add_request(f"r{i}", p, SamplingParams(max_tokens=n, temperature=0.0, ignore_eos=True))
    while engine.has_unfinished():
        outs = engine.step()
        now = time.perf_counter()
        for o in outs:
            if o.new_token_ids:
                first.setdefault(o.request_id, now)
                last[o.request_id] = now
                count[o.request_id] = count.get(o.request_id, 0) + len(o.new_token_ids)
    wall = time.perf_counter() - t0
    total = sum(count.values())
    assert total == sum(olens), (total, sum(olens))
    ttft = [first[k] - t0 for k in first]
    tpot = [(last[k] - first[k]) / (count[k] - 1) for k in first if count[k] > 1]
    return {"wall_s": wall, "output_tokens": total, "tokens_per_s": total / wall,
            "steps": engine.stats.num_steps - steps0, "preemptions": engine.stats.num_preemptions,
            "gc_ms": [round(t, 1) for t in GC_TIME.ms], "ttft_ms": pct(ttft), "tpot_ms": pct(tpot)}


def gpu_profile(llm, prompts, olens, top: int = 20) -> None:
    """One W1 run under torch.profiler: GPU time per kernel, against the run's wall time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        r = run_w1(llm, prompts, olens)
    rows = sorted(((e.self_device_time_total, e.count, e.key) for e in prof.key_averages()),
                  reverse=True)
    busy = sum(t for t, _, _ in rows)
    print(f"profiled run: {r['wall_s']:.2f} s wall, {busy / 1e6:.2f} s of kernel time, "
          f"{r['steps']} steps")
    for t, n, name in rows[:top]:
        print(f"{t / 1e3:9.1f} ms {100 * t / busy:5.1f} % {n:7d}x  {name[:100]}")


def step_timeline(llm, prompts, olens) -> dict:
    """One W1 run with CUDA events around every step's model run: GPU time of the forward
    passes by kind of step (with prefill chunks, or decode only by batch size) and of what
    lies between them (sampling, and the GPU idle while the host prepares the next step).
    Also the host's time to launch each step (its inputs packed and sent, the previous
    step's sampled ids fed in, the model run and the sampling queued), and within that the
    model call; neither waits for the GPU unless the launch queue is full."""
    import torch

    engine = llm.engine
    inner, inner_launch, marks = engine.execute_fn, engine._launch, []

    def timed(inputs):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        t0 = time.perf_counter()
        logits = inner(inputs)
        host = time.perf_counter() - t0
        b.record()
        marks.append([inputs.num_tokens, inputs.num_seqs, a, b, host, 0.0])
        return logits

    def timed_launch(*args):
        t0 = time.perf_counter()
        launched = inner_launch(*args)
        marks[-1][5] = time.perf_counter() - t0
        return launched

    engine.execute_fn, engine._launch = timed, timed_launch
    try:
        r = run_w1(llm, prompts, olens)
    finally:
        engine.execute_fn = inner
        del engine._launch                         # the class's method again
    torch.cuda.synchronize()
    rows = {}                       # None (steps with prefill chunks) or batch // 32 -> sums
    for i, (tokens, seqs, a, b, host, launch) in enumerate(marks):
        gap = b.elapsed_time(marks[i + 1][2]) if i + 1 < len(marks) else 0.0
        row = rows.setdefault(None if tokens > seqs else (seqs - 1) // 32, [0, 0, 0.0, 0.0, 0.0, 0.0])
        row[0] += 1
        row[1] += tokens
        row[2] += a.elapsed_time(b)
        row[3] += gap
        row[4] += host * 1e3
        row[5] += launch * 1e3
    label = {k: "prefill" if k is None else f"decode {32 * k + 1}-{32 * k + 32}" for k in rows}
    fwd_total = sum(v[2] for v in rows.values())
    gap_total = sum(v[3] for v in rows.values())
    print(f"step timeline: {r['wall_s'] * 1e3:.0f} ms wall, forward passes {fwd_total:.0f} ms, "
          f"between them {gap_total:.0f} ms, {len(marks)} steps")
    print(f"{'steps':>16} {'count':>6} {'tokens':>7} {'forward ms':>11} {'per step':>9} "
          f"{'between':>8} {'host launch':>12} {'model call':>11}")
    for k in sorted(rows, key=lambda k: -1 if k is None else k):
        n, tokens, fwd, gap, host, launch = rows[k]
        print(f"{label[k]:>16} {n:6d} {tokens:7d} {fwd:11.1f} {fwd / n:9.2f} {gap / n:8.2f} "
              f"{launch / n:12.3f} {host / n:11.3f}")
    return {label[k]: {"steps": v[0], "tokens": v[1], "forward_ms": v[2], "between_ms": v[3],
                       "host_launch_ms": v[5], "host_model_call_ms": v[4]} for k, v in rows.items()}


def small_batch_latency(llm, prompts, batches) -> dict:
    """batch -> p50 time per output token (ms), median of 3 runs after a warm-up run."""
    out = {}
    for b in batches:
        ps = [p[:128] for p in prompts[:b]]
        tpots = [run_w1(llm, ps, [128] * b)["tpot_ms"]["p50"] for _ in range(4)][1:]
        out[b] = statistics.median(tpots)
        print(f"batch {b}: {out[b]:.2f} ms per output token", flush=True)
    return out


def pct(xs):
    xs = sorted(xs)
    q = lambda f: 1000 * xs[min(len(xs) - 1, int(f * len(xs)))]  # noqa: E731
    return {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="smollm2-135m")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--num-requests", type=int, default=256)
    ap.add_argument("--max-num-tokens", type=int, default=8192)
    ap.add_argument("--max-model-len", type=int, default=1024,
                    help="the artifact's limit on prompt + output tokens (W1 needs 768); larger "
                         "limits widen the block tables every decode step handles")
    ap.add_argument("--artifact", type=Path,
                    help="use the artifact at this path, building it there first when absent")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="build config override, e.g. --set quantization.mode=fp8 (repeatable)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-gc-freeze", dest="gc_freeze", action="store_false",
                    help="leave the garbage collector as it is (default: freeze what start-up "
                         "made, as `trtcompile serve` does)")
    ap.add_argument("--gc-threshold", type=int, default=0, metavar="N",
                    help="gc.set_threshold(N) after start-up: young collections every N allocations "
                         "(default: Python's)")
    ap.add_argument("--profile", action="store_true", help="cProfile one extra run (host time)")
    ap.add_argument("--gpu-profile", action="store_true",
                    help="one extra run under torch.profiler: GPU time per kernel")
    ap.add_argument("--step-times", action="store_true",
                    help="one extra run with CUDA events around each step's model run: forward time "
                         "by kind of step and batch size, the time between steps and the host's time "
                         "to launch each step (with "
                         "--latency-batches, also one run of each of those batches)")
    ap.add_argument("--latency-batches", default="", metavar="B,B,..",
                    help="also time small batches: B requests of W1 prompts cut to 128 tokens, 128 output "
                         "tokens each; time per output token (median of 3 after a warm-up)")
    args = ap.parse_args()

    import torch

    from trtcompile.llm import LLM, freeze_startup_objects

    wl = load_workload()
    shape = wl.MODEL_SHAPES[args.shape]
    prompts, olens = wl.w1(shape["vocab_size"], n=args.num_requests)
    result = {"shape": args.shape, "dtype": args.dtype, "overrides": args.overrides,
              "device": torch.cuda.get_device_name(),
              "num_requests": args.num_requests, "date": time.strftime("%Y-%m-%d")}
    artifact = args.artifact or Path(tempfile.mkdtemp(prefix="w1-")) / "artifact"
    if not artifact.exists():
        artifact.parent.mkdir(parents=True, exist_ok=True)
        result["build_s"] = build_random_artifact(shape, args.dtype, artifact, args.num_requests,
                                                  args.max_num_tokens, args.max_model_len,
                                                  args.overrides)
        print(f"built {args.shape} in {result['build_s']:.1f} s", flush=True)

    t0 = time.perf_counter()
    startup_lines: list[str] = []

    def startup_log(line: str) -> None:
        startup_lines.append(line)
        print(line, flush=True)

    llm = LLM(artifact, device="cuda", enable_prefix_caching=False, verify=False, log=startup_log)
    loaded = time.perf_counter()
    llm.generate([prompts[0][:32]], None)                     # first token(s) after start-up
    result["startup_s"] = {"load_and_capture": loaded - t0, "to_first_token": time.perf_counter() - t0}
    result["startup_log"] = startup_lines
    result["kv_blocks"] = llm.runner.num_blocks
    if args.gc_freeze:
        result["gc_frozen_objects"] = freeze_startup_objects()
    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold)
    result["gc_threshold"] = gc.get_threshold()
    runs = []
    for i in range(args.warmup + args.repeats):
        r = run_w1(llm, prompts, olens)
        tag = "warm-up" if i < args.warmup else "run"
        print(f"{tag} {i}: {r['tokens_per_s']:.0f} tok/s, {r['wall_s']:.2f} s, {r['steps']} steps, "
              f"garbage collector {sum(r['gc_ms']):.0f} ms (full collections {r['gc_ms'][2]:.0f})",
              flush=True)
        if i >= args.warmup:
            runs.append(r)
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        run_w1(llm, prompts, olens)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(22)
    if args.gpu_profile:
        gpu_profile(llm, prompts, olens)
    if args.step_times:
        result["step_times"] = step_timeline(llm, prompts, olens)
        for b in (map(int, args.latency_batches.split(",")) if args.latency_batches else ()):
            print(f"batch {b} (prompts cut to 128 tokens, 128 output tokens each):")
            result[f"step_times_batch{b}"] = step_timeline(llm, [p[:128] for p in prompts[:b]], [128] * b)
    if args.latency_batches:
        result["latency"] = small_batch_latency(llm, prompts, map(int, args.latency_batches.split(",")))
    result["runs"] = runs
    result["median_tokens_per_s"] = statistics.median(r["tokens_per_s"] for r in runs)
    mid = sorted(runs, key=lambda r: r["tokens_per_s"])[len(runs) // 2]
    result["ttft_ms"], result["tpot_ms"] = mid["ttft_ms"], mid["tpot_ms"]
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))
    from bench_kernels import print_verdicts        # beside this script (its folder is on sys.path)
    print_verdicts(w1_target_lines(args.shape, args.overrides, result["median_tokens_per_s"],
                                   result["startup_s"]["to_first_token"]), result["device"])
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
