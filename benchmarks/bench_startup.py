"""Start-up of an artifact the way `trtcompile run` and `serve` do it (checksums verified).

Times, in one process and on one artifact:
  - the checksum verification alone: every file hashed in turn (what one sequential hash of the
    weights costs: the reference) and in parallel threads (what `load_artifact` does);
  - `LLM` start-up to the first generated token (torch already imported), with the start-up lines
    it logs (load, KV cache, graph capture).
Repeats alternate the two hashing orders. Every read after the first comes from the page cache
(say so when you quote the numbers); a cold read from disk is not measured.

    python3 benchmarks/bench_startup.py ARTIFACT [--device cuda] [--repeats 2] [--json PATH]"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from trtcompile.artifact import artifact_files, load_artifact, sha256, sha256_all
from trtcompile.errors import TrtCompileError


def checksum_times(artifact: Path, repeats: int) -> dict:
    files = artifact_files(artifact)
    in_turn, parallel = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        for p in files:
            sha256(p)
        in_turn.append(time.perf_counter() - t)
        t = time.perf_counter()
        sha256_all(files)
        parallel.append(time.perf_counter() - t)
    return {"files": len(files), "gib": sum(p.stat().st_size for p in files) / 2**30,
            "in_turn_s": in_turn, "parallel_s": parallel}


def llm_startup(artifact: Path, device: str | None) -> dict:
    import torch  # noqa: F401  (imported before the clock starts, as by any program using LLM)

    from trtcompile.llm import LLM

    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    t0 = time.perf_counter()
    llm = LLM(artifact, device=device, log=log)            # verify=True, as the CLI
    ready = time.perf_counter()
    llm.generate([[1, 2, 3, 4]], None)
    return {"llm_ready_s": ready - t0, "to_first_token_s": time.perf_counter() - t0,
            "device": str(llm.device), "startup_log": lines}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("artifact", type=Path)
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    try:
        load_artifact(args.artifact, verify=False)
    except TrtCompileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sums = checksum_times(args.artifact, args.repeats)
    print(f"{args.artifact}: {sums['files']} files, {sums['gib']:.2f} GiB")
    print(f"checksums, files in turn: {statistics.median(sums['in_turn_s']):.2f} s "
          f"(runs {', '.join(f'{x:.2f}' for x in sums['in_turn_s'])})")
    print(f"checksums, in parallel:   {statistics.median(sums['parallel_s']):.2f} s "
          f"(runs {', '.join(f'{x:.2f}' for x in sums['parallel_s'])})")
    start = llm_startup(args.artifact, args.device)
    print(f"start-up with verification ({start['device']}): LLM ready in {start['llm_ready_s']:.2f} s, "
          f"first token at {start['to_first_token_s']:.2f} s")
    if args.json:
        args.json.write_text(json.dumps({"artifact": str(args.artifact), "checksums": sums,
                                         "startup": start, "date": time.strftime("%Y-%m-%d")},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
