"""Perplexity of an artifact over a text: windows fed so that every position is the last
token of its own sequence, hence the engine returns the logits of every position.

    window tokens  t0 t1 t2 ... t(W-1)          one step, S = W sequences, T = W tokens
    sequence i     new token t_i at position i, seq_len i+1, all share one block table
                   -> logits row i predicts t(i+1)
"""

from __future__ import annotations

import math
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from trtcompile.errors import RequestError


@dataclass(frozen=True)
class PerplexityResult:
    perplexity: float
    nll_sum: float
    scored: int            # predicted tokens
    tokens: int            # tokens of the text (after --max-tokens)
    windows: int
    seconds: float


@dataclass(frozen=True)
class Window:
    begin: int
    end: int
    score_from: int        # first target index scored in this window (targets t, t > begin)


def read_text(spec: str | Path) -> str:
    """A text file, or 'ARCHIVE.zip|.whl::member/path' read from inside a zip archive."""
    spec = str(spec)
    if "::" in spec:
        archive, member = spec.split("::", 1)
        try:
            with zipfile.ZipFile(archive) as z:
                return z.read(member).decode("utf-8", errors="replace")
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise RequestError(f"cannot read {member} from {archive}: {exc}") from None
    p = Path(spec)
    if not p.is_file():
        raise RequestError(f"text file not found: {p}")
    return p.read_text(encoding="utf-8", errors="replace")


def windows(n: int, window: int, stride: int) -> list[Window]:
    """Sliding windows (the HF recipe): each target token is scored once, with up to
    `window` tokens of context."""
    if window < 2 or stride < 1 or stride > window:
        raise RequestError(f"need window >= 2 and 1 <= stride <= window; found window {window}, "
                           f"stride {stride}")
    out, prev_end = [], 0
    for begin in range(0, n, stride):
        end = min(begin + window, n)
        if end - begin >= 2:
            out.append(Window(begin, end, max(prev_end, begin + 1)))
        prev_end = end
        if end == n:
            break
    return out


def window_feeds(tokens: Sequence[int], block_size: int, first_block: int = 1):
    """Engine inputs (no kv_cache) making each of the W tokens its own 1-token sequence."""
    import torch

    from trtcompile import io_names as io

    w = len(tokens)
    nblocks = -(-w // block_size)
    table = list(range(first_block, first_block + nblocks))
    i32 = lambda x: torch.tensor(x, dtype=torch.int32)  # noqa: E731
    return {io.INPUT_IDS: i32(list(tokens)), io.POSITIONS: i32(list(range(w))),
            io.QUERY_START_LOC: i32(list(range(w + 1))), io.SEQ_LENS: i32(list(range(1, w + 1))),
            io.BLOCK_TABLES: i32([table] * w),
            io.SLOT_MAPPING: i32([table[p // block_size] * block_size + p % block_size
                                  for p in range(w)])}


def nll_of_window(logits, tokens: Sequence[int], win: Window) -> tuple[float, int]:
    """(sum of -log p(target), count) for targets win.score_from .. win.end-1."""
    import torch

    rows = torch.arange(win.score_from - 1 - win.begin, win.end - 1 - win.begin)
    targets = torch.tensor(tokens[win.score_from:win.end])
    logp = torch.log_softmax(logits[rows].float(), dim=-1)
    return float(-logp[torch.arange(len(rows)), targets].sum()), len(rows)


def perplexity(artifact: str | Path, text: str, *, max_tokens: int | None = None,
               window: int = 1024, stride: int = 1024, device: str | None = None,
               log: Callable[[str], None] = print) -> PerplexityResult:
    import torch
    from transformers import AutoTokenizer

    from trtcompile.artifact import load_artifact
    from trtcompile.backends.torch_backend import open_backend
    from trtcompile.runtime.model_runner import KVPoolSpec, ModelRunner
    from trtcompile.runtime.step_inputs import StepInputs

    art = load_artifact(artifact)
    if art.tokenizer_dir is None:
        raise RequestError(f"{artifact}: the artifact has no tokenizer; perplexity needs one")
    tokens = AutoTokenizer.from_pretrained(str(art.tokenizer_dir)).encode(text)
    tokens = tokens[:max_tokens] if max_tokens else tokens
    m = art.manifest
    model = m["model"]
    pool = KVPoolSpec(model["num_layers"], model["num_kv_heads"], model["head_dim"],
                      m["kv_cache"]["block_size"], m["kv_cache"]["dtype"])
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    runner = ModelRunner(open_backend(art, dev), pool, 1 + -(-window // pool.block_size))
    wins = windows(len(tokens), window, stride)
    start, nll, count = time.perf_counter(), 0.0, 0
    with torch.no_grad():
        for k, win in enumerate(wins):
            chunk = tokens[win.begin:win.end]
            step = StepInputs(window_feeds(chunk, pool.block_size), [str(i) for i in range(len(chunk))],
                              [True] * len(chunk), [])
            logits = runner(step).cpu()                          # [W, vocab]
            s, c = nll_of_window(logits, tokens, win)
            nll, count = nll + s, count + c
            log(f"window {k + 1}/{len(wins)}: running perplexity {math.exp(nll / count):.3f}")
    return PerplexityResult(math.exp(nll / count), nll, count, len(tokens), len(wins),
                            time.perf_counter() - start)
