"""KV memory waste of the paged cache on workload W1 (scheduler + honest fake model).

Waste = blocks in use * block_size - tokens whose K/V they hold, measured after every
step. Paged allocation should waste less than one block per running sequence.

    python benchmarks/kv_waste.py [--num-blocks 4096] [--block-size 16]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trtcompile.runtime.engine_core import EngineCore  # noqa: E402
from trtcompile.runtime.fake_model import FakeModel  # noqa: E402
from trtcompile.runtime.sampling_params import SamplingParams  # noqa: E402
from trtcompile.runtime.scheduler import SchedulerConfig  # noqa: E402


def load_workload():
    for base in (ROOT / ".." / "shared", Path("/work/shared")):
        path = base / "bench" / "workload.py"
        if path.exists():
            spec = importlib.util.spec_from_file_location("trtc_bench_workload", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise FileNotFoundError("shared/bench/workload.py not found next to the repository")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-blocks", type=int, default=4096)
    ap.add_argument("--block-size", type=int, default=16)
    ap.add_argument("--max-num-seqs", type=int, default=256)
    ap.add_argument("--max-num-tokens", type=int, default=8192)
    ap.add_argument("--vocab-size", type=int, default=32000)
    ap.add_argument("--no-prefix-caching", action="store_true")
    args = ap.parse_args()

    prompts, out_lens = load_workload().w1(args.vocab_size)
    config = SchedulerConfig(max_num_seqs=args.max_num_seqs, max_num_tokens=args.max_num_tokens,
                             block_size=args.block_size, num_blocks=args.num_blocks,
                             max_model_len=1024,
                             enable_prefix_caching=not args.no_prefix_caching)
    model = FakeModel(config.num_blocks, config.block_size, args.vocab_size, num_patterns=31)
    engine = EngineCore(config, model)
    for i, (prompt, n_out) in enumerate(zip(prompts, out_lens)):
        engine.add_request(f"w1-{i}", prompt,
                           SamplingParams(max_tokens=n_out, temperature=0, ignore_eos=True))

    sched, bs = engine.scheduler, config.block_size
    peak = dict(blocks=0, tokens=0, seqs=0)
    worst_waste_per_seq, waste_samples = 0.0, []
    out_tokens = 0
    t0 = time.perf_counter()
    while engine.has_unfinished():
        out_tokens += sum(len(o.new_token_ids) for o in engine.step())
        used = sched.kv.num_used_blocks
        live = [r for r in sched.running if sched.kv.get_block_ids(r)]
        tokens = sum(r.num_computed_tokens for r in live)
        if live:
            waste_samples.append((used * bs - tokens) / bs / len(live))
            worst_waste_per_seq = max(worst_waste_per_seq, waste_samples[-1])
        if used > peak["blocks"]:
            peak = dict(blocks=used, tokens=tokens, seqs=len(live))
    elapsed = time.perf_counter() - t0
    st = engine.stats
    waste = peak["blocks"] * bs - peak["tokens"]
    print(f"W1: {len(prompts)} requests, {sum(map(len, prompts))} prompt tokens, "
          f"{out_tokens} output tokens, {st.num_steps} steps, {elapsed:.1f} s (fake model, CPU)")
    print(f"config: block_size={bs} num_blocks={config.num_blocks} (usable "
          f"{sched.kv.pool.num_usable}) max_num_seqs={config.max_num_seqs} "
          f"max_num_tokens={config.max_num_tokens} prefix_caching={config.enable_prefix_caching}")
    print(f"peak blocks in use: {peak['blocks']} ({peak['blocks'] * bs} token slots) holding "
          f"{peak['tokens']} tokens of {peak['seqs']} sequences")
    print(f"waste at peak: {waste} slots = {waste / bs:.2f} blocks = "
          f"{waste / bs / max(peak['seqs'], 1):.3f} blocks/seq ({waste / (peak['blocks'] * bs):.2%})")
    print(f"waste over all steps: mean {sum(waste_samples) / len(waste_samples):.3f}, worst "
          f"{worst_waste_per_seq:.3f} blocks/seq (must be < 1; bound (b-1)/b = {(bs - 1) / bs:.3f})")
    print(f"preemptions: {st.num_preemptions}, prefix cache hit rate: "
          f"{st.prefix_cache_hit_rate:.2%}")
    if worst_waste_per_seq >= 1:
        raise SystemExit("FAIL: waste >= 1 block per sequence")


if __name__ == "__main__":
    main()
