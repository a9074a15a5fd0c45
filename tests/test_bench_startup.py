"""benchmarks/bench_startup.py on the CPU: checksums timed both ways, LLM start-up to the first
token with its start-up lines, a non-artifact refused in one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _bench(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(REPO / "benchmarks/bench_startup.py"), *args],
                          capture_output=True, text=True, env=env, timeout=600)


def test_startup_of_a_tiny_artifact(tmp_path):
    from trtcompile.build import build
    from trtcompile.config import load_config

    out = tmp_path / "artifact"
    build(load_config(REPO / "configs/tiny-llama.yaml", overrides=[f"build.output_dir={out}"]),
          log=lambda line: None)
    res = _bench(str(out), "--device", "cpu", "--repeats", "2", "--json", str(tmp_path / "s.json"))
    assert res.returncode == 0, res.stderr
    assert "checksums, files in turn:" in res.stdout and "checksums, in parallel:" in res.stdout
    assert f"loaded {out} (torch backend, cpu, checksums verified)" in res.stdout
    got = json.loads((tmp_path / "s.json").read_text())
    sums, start = got["checksums"], got["startup"]
    assert sums["files"] >= 1 and len(sums["in_turn_s"]) == len(sums["parallel_s"]) == 2
    assert 0 < start["llm_ready_s"] <= start["to_first_token_s"] and start["device"] == "cpu"
    assert any(line.startswith("KV cache: ") for line in start["startup_log"])


def test_not_an_artifact_is_one_line(tmp_path):
    res = _bench(str(tmp_path))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip() == f"error: {tmp_path}: not an artifact (no manifest.json); build one with " \
                                 "`trtcompile build CONFIG`"
