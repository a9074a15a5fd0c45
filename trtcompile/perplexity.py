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


def check_options(window: int, stride: int, max_tokens: int | None = None) -> None:
    """RequestError unless window >= 2, 1 <= stride <= window and max_tokens is None or >= 2
    (checked before any text is read or artifact loaded)."""
    if window < 2 or stride < 1 or stride > window:
        raise RequestError(f"need window >= 2 and 1 <= stride <= window; found window {window}, "
                           f"stride {stride}")
    if max_tokens is not None and max_tokens < 2:
        raise RequestError(f"max_tokens must be >= 2 (a scored token needs one before it), "
                           f"got {max_tokens}")


def windows(n: int, window: int, stride: int) -> list[Window]:
    """Sliding windows (the HF recipe): each target token is scored once, with up to
    `window` tokens of context."""
    check_options(window, stride)
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


LOGIT_ROWS = "logit_rows"


def with_logit_rows(model):
    """The graph with its last-token row selection (Gather(hidden, query_start_loc[1:] - 1))
    fed from a new input `logit_rows` instead; None when the graph has no such Gather."""
    import onnx

    from trtcompile import io_names as io

    producer = {o: n for n in model.graph.node for o in n.output}

    def reaches_qsl(name: str, depth: int) -> bool:
        if name == io.QUERY_START_LOC:
            return True
        node = producer.get(name)
        return depth > 0 and node is not None and any(reaches_qsl(i, depth - 1) for i in node.input)

    for node in model.graph.node:
        if node.op_type == "Gather" and reaches_qsl(node.input[1], 3):
            node.input[1] = LOGIT_ROWS
            model.graph.input.append(onnx.helper.make_tensor_value_info(
                LOGIT_ROWS, onnx.TensorProto.INT64, ["R"]))
            return model
    return None


def _one_sequence_feeds(tokens: Sequence[int], block_size: int):
    import torch

    from trtcompile import io_names as io

    feeds = window_feeds(tokens, block_size)
    w = len(tokens)
    feeds[io.QUERY_START_LOC] = torch.tensor([0, w], dtype=torch.int32)
    feeds[io.SEQ_LENS] = torch.tensor([w], dtype=torch.int32)
    feeds[io.BLOCK_TABLES] = feeds[io.BLOCK_TABLES][:1]
    feeds[LOGIT_ROWS] = torch.arange(w)
    return feeds


def perplexity(artifact: str | Path, text: str, *, max_tokens: int | None = None,
               window: int = 1024, stride: int = 1024, device: str | None = None,
               runtime: bool = False, log: Callable[[str], None] = print) -> PerplexityResult:
    """runtime=False (torch backend): one prefill sequence per window through the artifact's
    graph with every row's logits selected (`with_logit_rows`); runtime=True: the engine as
    served (ModelRunner), each position the last token of its own 1-token sequence: the same
    numbers, for any backend, but O(window) attention calls per layer."""
    import torch
    from transformers import AutoTokenizer

    from trtcompile.artifact import load_artifact
    from trtcompile.backends.torch_backend import open_backend, resolve_device
    from trtcompile.runtime.model_runner import KVPoolSpec, ModelRunner
    from trtcompile.runtime.step_inputs import StepInputs

    check_options(window, stride, max_tokens)
    dev = resolve_device(device)
    art = load_artifact(artifact)
    if art.tokenizer_dir is None:
        raise RequestError(f"{artifact}: the artifact has no tokenizer; perplexity needs one")
    tokens = AutoTokenizer.from_pretrained(str(art.tokenizer_dir)).encode(text)
    tokens = tokens[:max_tokens] if max_tokens is not None else tokens
    if len(tokens) < 2:
        raise RequestError(f"the text is {len(tokens)} token(s) long; perplexity needs at least 2")
    m = art.manifest
    model = m["model"]
    pool = KVPoolSpec(model["num_layers"], model["num_kv_heads"], model["head_dim"],
                      m["kv_cache"]["block_size"], m["kv_cache"]["dtype"])
    num_blocks = 1 + -(-window // pool.block_size)
    run_window = None
    if not runtime and m["backend"] == "torch":
        import onnx

        from trtcompile import io_names as io
        from trtcompile.executor import OnnxExecutor

        graph = with_logit_rows(onnx.load(str(art.model_onnx)))
        if graph is not None:
            if dev.type == "cuda":
                from trtcompile.ops.cuda_kernels import register_cuda_impls
                register_cuda_impls()
            from trtcompile.backends.torch_backend import executor_options

            ex = OnnxExecutor(graph, dev, **executor_options(m))
            kv = pool.allocate(num_blocks, dev)

            def run_window(chunk):
                feeds = {k: v.to(dev) for k, v in _one_sequence_feeds(chunk, pool.block_size).items()}
                return ex.run({**feeds, io.KV_CACHE: kv})[io.LOGITS]
    if run_window is None:
        runner = ModelRunner(open_backend(art, dev), pool, num_blocks)

        def run_window(chunk):
            return runner(StepInputs(window_feeds(chunk, pool.block_size),
                                     [str(i) for i in range(len(chunk))], [True] * len(chunk), []))
    wins = windows(len(tokens), window, stride)
    start, nll, count = time.perf_counter(), 0.0, 0
    with torch.no_grad():
        for k, win in enumerate(wins):
            logits = run_window(tokens[win.begin:win.end]).cpu()          # [W, vocab]
            s, c = nll_of_window(logits, tokens, win)
            nll, count = nll + s, count + c
            log(f"window {k + 1}/{len(wins)}: running perplexity {math.exp(nll / count):.3f}")
    return PerplexityResult(math.exp(nll / count), nll, count, len(tokens), len(wins),
                            time.perf_counter() - start)
