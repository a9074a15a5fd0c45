"""Perplexity table: HF eager fp32 (reference, computed in the same run) vs built artifacts.

    python benchmarks/perplexity.py --artifact fp32=artifacts/ppl/fp32 \
        --artifact int8_weight_only=artifacts/ppl/int8_weight_only ... [--build]

--build first runs `trtcompile build configs/smollm2-135m.yaml --set quantization.mode=...`
for every artifact whose directory is missing (name = mode; 'fp32' = none; 'int4_g32' = int4
with group_size 32). --kv-dtype fp8,int8 adds, for every artifact NAME=DIR, NAME+kv_fp8 (built in
DIR_kv_fp8 with kv_cache.dtype=fp8) etc., compared with NAME (same weights, model-dtype KV).
--device cuda runs the artifacts on the GPU (CUDA kernels, lowered W8A8 GEMMs); HF stays on the CPU.
Text: lee_background.cor from the gensim 4.4.0 wheel."""

from __future__ import annotations

import argparse
import glob
import math
import subprocess
import sys
import time
from pathlib import Path

LEE = "gensim/test/test_data/lee_background.cor"
# name -> (extra --set overrides, allowed perplexity increase over HF in %)
MODES = {
    "fp32": ([], 0.1),
    "int8_weight_only": (["quantization.mode=int8_weight_only"], 1.0),
    "fp8": (["quantization.mode=fp8"], 3.0),                                   # dynamic
    "fp8_exact": (["quantization.mode=fp8", "quantization.fp8_fast_accumulation=false"], 3.0),
    "fp8_static": (["quantization.mode=fp8", "quantization.activation=static"], 3.0),
    "int8_sq": (["quantization.mode=int8_sq"], 3.0),                           # dynamic
    "int8_sq_static": (["quantization.mode=int8_sq", "quantization.activation=static"], 3.0),
    "int4_g32": (["quantization.mode=int4_weight_only", "quantization.group_size=32"], 5.0),
}
KV_LIMIT = 1.0   # allowed perplexity increase (%) of a quantized KV cache over the same weights


def kv_variants(arts: dict[str, str], kv_dtypes: list[str]) -> dict[str, tuple[str, str, str]]:
    """NAME+kv_DT -> (directory, NAME, DT) for every artifact and KV dtype."""
    return {f"{name}+kv_{dt}": (f"{d}_kv_{dt}", name, dt) for name, d in arts.items()
            for dt in kv_dtypes}


def default_wheel() -> str:
    found = glob.glob(str(Path.home() / ".cache/trtcompile/wheels/gensim-4.4.0-*.whl")) + \
        glob.glob("/tmp/gensim/gensim-4.4.0-*.whl")
    if found:
        return found[0]
    dest = Path.home() / ".cache/trtcompile/wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "gensim==4.4.0",
                    "--only-binary", ":all:", "-d", str(dest)], check=True)
    return glob.glob(str(dest / "gensim-4.4.0-*.whl"))[0]


def hf_perplexity(source: str, tokens: list[int], window: int, stride: int) -> float:
    import torch

    from trtcompile.models.loading import load_model
    from trtcompile.perplexity import nll_of_window, windows

    model = load_model(source, "float32").model.eval()
    nll, count = 0.0, 0
    with torch.no_grad():
        for win in windows(len(tokens), window, stride):
            logits = model(input_ids=torch.tensor([tokens[win.begin:win.end]])).logits[0]
            s, c = nll_of_window(logits, tokens, win)
            nll, count = nll + s, count + c
    return math.exp(nll / count)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--artifact", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("--config", default="configs/smollm2-135m.yaml")
    ap.add_argument("--build", action="store_true", help="build missing artifacts first")
    ap.add_argument("--text", default=None, help="text file or ARCHIVE::member")
    ap.add_argument("--max-tokens", type=int, default=None)
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--stride", type=int, default=1024)
    ap.add_argument("--kv-dtype", default="", help="comma-separated quantized KV dtypes (fp8, int8)")
    ap.add_argument("--kv-base", default="", help="comma-separated artifact names that get the "
                    "--kv-dtype variants (default: all)")
    ap.add_argument("--jobs", type=int, default=1, help="builds run at a time with --build")
    ap.add_argument("--device", default="cpu", help="where the artifacts run: cpu (reference "
                    "ops) or cuda (kernels, lowered quantized GEMMs); HF runs on the CPU")
    args = ap.parse_args()

    from transformers import AutoTokenizer

    from trtcompile.perplexity import perplexity, read_text

    arts = dict(a.split("=", 1) for a in args.artifact)
    kv_of = {n: d for n, d in arts.items() if not args.kv_base or n in args.kv_base.split(",")}
    kv = kv_variants(kv_of, [x for x in args.kv_dtype.split(",") if x])
    if args.build:
        builds = {d: MODES[name][0] for name, d in arts.items()}
        builds.update({d: MODES[base][0] + [f"kv_cache.dtype={dt}"] for d, base, dt in kv.values()})
        todo = [(d, [x for s in overrides for x in ("--set", s)]) for d, overrides in builds.items()
                if not Path(d, "manifest.json").is_file()]
        for i in range(0, len(todo), args.jobs):           # up to --jobs builds at a time
            procs = [(d, subprocess.Popen([sys.executable, "-m", "trtcompile", "build", args.config,
                                           "-q", "-o", d, *sets]))
                     for d, sets in todo[i:i + args.jobs]]
            for d, proc in procs:
                if proc.wait() != 0:
                    sys.exit(f"building {d} failed (exit {proc.returncode})")
    text = read_text(args.text or f"{default_wheel()}::{LEE}")
    first = next(iter(arts.values()))
    tokens = AutoTokenizer.from_pretrained(str(Path(first, "tokenizer"))).encode(text)
    tokens = tokens[:args.max_tokens] if args.max_tokens else tokens
    import yaml
    source = yaml.safe_load(Path(args.config).read_text())["model"]["source"]
    t = time.perf_counter()
    ref = hf_perplexity(source, tokens, args.window, args.stride)
    print(f"HF eager fp32: {ref:.3f} ({len(tokens)} tokens, {time.perf_counter() - t:.0f} s)",
          flush=True)
    rows = [("HF eager fp32 (reference)", ref, 0.0, "-", "-", "-")]
    ppl: dict[str, float] = {}
    runs = [(name, d, None) for name, d in arts.items()] + \
        [(name, d, base) for name, (d, base, _dt) in kv.items()]
    for name, d, base in runs:
        r = perplexity(d, text, max_tokens=args.max_tokens, window=args.window,
                       stride=args.stride, device=args.device, log=lambda m: None)
        ppl[name] = r.perplexity
        delta = 100 * (r.perplexity / ref - 1)
        if base is None:
            limit, vs_base, over = MODES.get(name, ([], float("nan")))[1], "-", delta
        else:
            over = 100 * (r.perplexity / ppl[base] - 1)
            limit, vs_base = KV_LIMIT, f"{over:+.2f}% vs {base}"
        rows.append((name, r.perplexity, delta, vs_base, f"<= +{limit}%",
                     "yes" if over <= limit else "NO"))
        print(f"{name}: {r.perplexity:.3f} ({delta:+.2f}%, {r.seconds:.0f} s)", flush=True)
    print(f"\n{len(tokens)} tokens, window {args.window}, stride {args.stride}\n")
    print("| model | perplexity | vs HF | vs same weights | target | met |\n"
          "|---|---|---|---|---|---|")
    for name, p, delta, vs_base, target, ok in rows:
        print(f"| {name} | {p:.3f} | {delta:+.2f}% | {vs_base} | {target} | {ok} |")


if __name__ == "__main__":
    main()
