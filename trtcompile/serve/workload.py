"""Benchmark workloads: W1 from shared/bench/workload.py, or a JSON-lines file."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from trtcompile.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_WORKLOAD = REPO_ROOT.parent / "shared" / "bench" / "workload.py"


@dataclass(frozen=True)
class BenchRequest:
    prompt: list[int]
    max_tokens: int


@dataclass(frozen=True)
class Workload:
    name: str
    requests: list[BenchRequest]
    source: str                          # where the generator or file came from


def _w1_fallback(vocab_size: int, n: int = 256, seed: int = 0):
    """A copy of shared/bench/workload.py:w1, used only when that file is absent."""
    import numpy as np

    rng = np.random.default_rng(seed)
    plens = rng.integers(32, 513, n)
    olens = rng.integers(32, 257, n)
    prompts = [rng.integers(0, vocab_size, p).tolist() for p in plens]
    return prompts, olens.tolist()


def load_w1(vocab_size: int, n: int, scale: float = 1.0) -> Workload:
    """W1's first n requests; `scale` shrinks prompt and output lengths (>= 1 token each)."""
    if SHARED_WORKLOAD.is_file():
        spec = importlib.util.spec_from_file_location("trtcompile_shared_workload",
                                                      SHARED_WORKLOAD)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        w1, source = module.w1, str(SHARED_WORKLOAD)
    else:
        w1, source = _w1_fallback, f"built-in copy ({SHARED_WORKLOAD} is absent)"
    prompts, olens = w1(vocab_size, max(n, 1))
    reqs = [BenchRequest(p[:max(1, int(len(p) * scale))], max(1, int(o * scale)))
            for p, o in zip(prompts[:n], olens[:n])]
    return Workload("w1" if scale == 1.0 else f"w1x{scale:g}", reqs, source)


def load_file(path: Path, n: int, vocab_size: int) -> Workload:
    """JSON lines of {"prompt": [token ids], "max_tokens": int}."""
    reqs = []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"--dataset {path}: cannot read: {exc}") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            prompt, max_tokens = [int(t) for t in row["prompt"]], int(row["max_tokens"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"--dataset {path}:{lineno}: expected "
                              f'{{"prompt": [token ids], "max_tokens": int}}: {exc}') from None
        if not prompt or max_tokens < 1 or any(not 0 <= t < vocab_size for t in prompt):
            raise ConfigError(f"--dataset {path}:{lineno}: empty prompt, max_tokens < 1 or a "
                              f"token id outside [0, {vocab_size})")
        reqs.append(BenchRequest(prompt, max_tokens))
    if not reqs:
        raise ConfigError(f"--dataset {path}: no requests")
    return Workload(path.name, reqs[:n], str(path))
