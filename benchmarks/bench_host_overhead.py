"""Host time per engine step on W1 with no model: a fake execute_fn returns rows of a fixed
CPU logits tensor, so what is timed is scheduling, input packing, sampling and bookkeeping.

    OMP_NUM_THREADS=1 python benchmarks/bench_host_overhead.py [--vocab 49152] [--profile] [--serial]
        [--detokenize]

Reported per step: the whole step, the part spent in execute_fn + Sampler.sample (torch on
CPU: the input ids with the previous step's sampled ids fed in, as a model reads them, and
argmax/log_softmax over [S, vocab], which costs far more here than on a GPU), and the rest
(pure host overhead); all in this process's CPU time. Then the whole step's time by the
number of requests still running after it (in 32s: where a GPU step would wait for the host).
--serial turns async scheduling off (on a CPU nothing overlaps, so this shows what the
lookahead bookkeeping costs).
--detokenize gives the engine the real SmolLM2 tokenizer (vocab 49152), so every output
token is also turned into text, as `trtcompile run` and `serve` do. Run twice (--vocab 49152 and --vocab 8) to see torch's share.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_w1 import load_workload  # noqa: E402  (same folder: one workload finder)
from trtcompile.runtime.detokenizer import TextStreams  # noqa: E402
from trtcompile.runtime.engine_core import EngineCore  # noqa: E402
from trtcompile.runtime.sampling_params import SamplingParams  # noqa: E402
from trtcompile.runtime.scheduler import SchedulerConfig  # noqa: E402

# CPU time of this process: on a shared machine, time spent descheduled is not ours.
CLOCK = time.process_time
CONFIG = SchedulerConfig(max_num_seqs=256, max_num_tokens=8192, block_size=16, num_blocks=180000,
                         max_model_len=1024, enable_prefix_caching=False)


class Timed:
    """Wraps a callable and sums the seconds spent in it."""

    def __init__(self, fn):
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args, **kwargs):
        t0 = CLOCK()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += CLOCK() - t0


def smollm2_text_streams():
    from trtcompile.models.loading import smollm2_tokenizer

    return TextStreams(smollm2_tokenizer())      # what LLM gives the engine


def run_once(prompts, olens, vocab: int, profile: cProfile.Profile | None = None,
             async_scheduling: bool = True, detokenize=None) -> dict:
    logits = torch.randn(CONFIG.max_num_seqs, vocab, generator=torch.Generator().manual_seed(0))

    def fake_model(step):
        step.input_ids()            # what a model reads: the ids with the fed rows in place
        return logits[:step.num_seqs]

    execute = Timed(fake_model)
    engine = EngineCore(CONFIG, execute, async_scheduling=async_scheduling,   # as LLM makes it
                        detokenize=detokenize)
    sample = engine.sampler.sample_async = Timed(engine.sampler.sample_async)
    for i, (p, n) in enumerate(zip(prompts, olens)):
        engine.add_request(f"r{i}", p, SamplingParams(max_tokens=n, temperature=0, ignore_eos=True))
    total = 0
    by_batch: dict[int, list[float]] = {}           # running requests // 32 -> step seconds
    if profile is not None:
        profile.enable()
    t0 = CLOCK()
    while engine.has_unfinished():
        t = CLOCK()
        total += sum(len(o.new_token_ids) for o in engine.step())
        by_batch.setdefault(max(len(engine.scheduler.running) - 1, 0) // 32, []).append(CLOCK() - t)
    wall = CLOCK() - t0
    if profile is not None:
        profile.disable()
    assert total == sum(olens), (total, sum(olens))
    steps = engine.stats.num_steps
    torch_s = execute.seconds + sample.seconds
    return {"steps": steps, "tokens": total, "wall_s": wall,
            "step_ms": 1e3 * wall / steps, "torch_ms": 1e3 * torch_s / steps,
            "host_ms": 1e3 * (wall - torch_s) / steps,
            "by_batch_ms": {k: 1e3 * sum(v) / len(v) for k, v in by_batch.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=49152)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="cProfile one extra run")
    ap.add_argument("--serial", action="store_true", help="async scheduling off")
    ap.add_argument("--detokenize", action="store_true", help="text with the SmolLM2 tokenizer")
    args = ap.parse_args()
    if args.detokenize:
        args.vocab = 49152
    torch.set_num_threads(1)
    prompts, olens = load_workload().w1(args.vocab)
    kw = dict(async_scheduling=not args.serial,
              detokenize=smollm2_text_streams() if args.detokenize else None)
    run_once(prompts, olens, args.vocab, **kw)                           # warm-up
    runs = [run_once(prompts, olens, args.vocab, **kw) for _ in range(args.repeats)]
    # min over repeats: this machine is shared, and noise only ever adds time
    med = {k: min(r[k] for r in runs) for k in ("step_ms", "torch_ms", "host_ms")}
    r = runs[0]
    print(f"vocab={args.vocab} steps={r['steps']} tokens={r['tokens']} (min of {args.repeats},"
          f" {'serial' if args.serial else 'async'} scheduling"
          f"{', with text' if args.detokenize else ''})")
    print(f"  step {med['step_ms']:.3f} ms = execute+sample {med['torch_ms']:.3f} ms"
          f" + host {med['host_ms']:.3f} ms")
    print(f"  host-only tokens/s: {r['tokens'] / (med['host_ms'] * r['steps'] / 1e3):,.0f}")
    print("  step by requests running after it (min of the repeats):")
    for k in sorted(r["by_batch_ms"]):
        ms = min(run["by_batch_ms"].get(k, float("inf")) for run in runs)
        print(f"    {32 * k + 1:3d}-{32 * k + 32:3d}: {ms:.3f} ms")
    if args.profile:
        prof = cProfile.Profile()
        run_once(prompts, olens, args.vocab, prof, **kw)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
