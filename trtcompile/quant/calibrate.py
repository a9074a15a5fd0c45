"""Calibration: run the fp32 graph over a text set and record, for each quantizable GEMM, the
per-input-channel absmax of its input (and, for a quantized KV cache, trtcompile.quant.kv_cache
the pool absmax per layer). Cached on disk by sha256(model + data + mode)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx

from trtcompile.errors import ConfigError

CHUNK_TOKENS = 256          # calibration feeds independent prefill segments of this length


def cache_dir() -> Path:
    root = os.environ.get("TRTCOMPILE_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "trtcompile"
    return base / "calib"


def calibration_text(path: str) -> str:
    if not path:
        from trtcompile.quant.calib_text import SAMPLE
        return SAMPLE
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"quantization.calibration_data: file not found: {p}")
    return p.read_text(encoding="utf-8", errors="replace")


def tokenize(text: str, tokenizer, vocab_size: int) -> list[int]:
    """Token ids of `text`; without a tokenizer (tiny random models) its bytes mod vocab."""
    if tokenizer is not None:
        return list(tokenizer.encode(text))
    return [b % vocab_size for b in text.encode()]


def _digest(values: np.ndarray) -> bytes:
    from trtcompile.passes.graph_io import array_bytes

    return hashlib.sha256(array_bytes(values)).digest()


def cache_key(model_source: str, seed: int, tokens: Sequence[int], mode: str,
              weights: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    h.update(f"{model_source}\0{seed}\0{mode}\0".encode())
    h.update(np.asarray(tokens, np.int64).tobytes())
    names = sorted(weights)                      # the graph the statistics belong to
    # hashlib releases the GIL on large buffers: the weights (GBs at 8B) hash on several cores
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        digests = pool.map(lambda name: _digest(weights[name]), names)
        for name, digest in zip(names, digests):
            h.update(name.encode())
            h.update(digest)
    return h.hexdigest()


def _progress(total: int, log: Callable[[str], None]):
    try:
        from tqdm import tqdm
        return tqdm(total=total, desc="calibrate", unit="chunk")
    except ImportError:
        class Lines:
            n = 0

            def update(self, k):
                self.n += k
                log(f"calibrate: {self.n}/{total} chunks")

            def close(self):
                pass
        return Lines()


def resolve_device(requested: str, log: Callable[[str], None] = print) -> str:
    """quantization.calibration_device -> "cpu" or "cuda"; "cuda" needs a GPU torch sees and
    the kernel library (the graph's PagedAttention runs there)."""
    import torch

    from trtcompile.errors import BackendUnavailableError
    from trtcompile.ops import cuda_kernels

    if requested == "cpu":
        return "cpu"
    why = None
    if not torch.cuda.is_available():
        why = "torch sees no CUDA device"
    else:
        try:
            cuda_kernels.register_cuda_impls()        # the graph's trtcompile ops run there
        except BackendUnavailableError as e:
            why = str(e)
    if why is None:
        return "cuda"
    if requested == "cuda":
        raise ConfigError(f"quantization.calibration_device is cuda, but {why}")
    log(f"calibration: on the CPU ({why})")
    return "cpu"


def as_graph(model):
    """A gs.Graph of `model` (a ModelProto or already a gs.Graph)."""
    import onnx_graphsurgeon as gs

    return model if isinstance(model, gs.Graph) else gs.import_onnx(model)


def graph_weights(graph) -> dict[str, np.ndarray]:
    """name -> array of every constant of `graph` (what the statistics belong to)."""
    import onnx_graphsurgeon as gs

    return {t.name: t.values for t in graph.tensors().values() if isinstance(t, gs.Constant)}


def _feeds(chunk: Sequence[int], kv_shape: tuple[int, ...], block_size: int, device: str):
    import torch

    from trtcompile import io_names as io

    n = len(chunk)
    i32 = lambda x: torch.tensor(x, dtype=torch.int32, device=device)  # noqa: E731
    blocks = -(-n // block_size)
    return {io.INPUT_IDS: i32(list(chunk)), io.POSITIONS: i32(list(range(n))),
            io.QUERY_START_LOC: i32([0, n]), io.SEQ_LENS: i32([n]),
            io.BLOCK_TABLES: i32([list(range(blocks))]), io.SLOT_MAPPING: i32(list(range(n))),
            io.KV_CACHE: torch.zeros(kv_shape[0], 2, blocks, block_size, *kv_shape[1:],
                                     device=device)}


def run_chunks(graph, outputs: Sequence[str], tokens: Sequence[int], info, block_size: int,
               on_chunk: Callable, log: Callable[[str], None] = print,
               device: str = "cpu") -> None:
    """Runs the float32 `graph` (gs.Graph or ModelProto; float32 pool) on `device` over
    independent prefill chunks of `tokens`, with a progress bar; on_chunk(outputs, feeds) sees
    each chunk's extra `outputs` and its filled pool. The weights are shared, not copied."""
    import torch

    from trtcompile.executor import OnnxExecutor
    from trtcompile.passes.graph_io import to_model_sharing_weights

    probe, weights = to_model_sharing_weights(as_graph(graph))
    for tensor in outputs:
        probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(tensor))
    ex = OnnxExecutor(probe, device=device, lower=False, weights=weights)
    chunks = [tokens[i:i + CHUNK_TOKENS] for i in range(0, len(tokens), CHUNK_TOKENS)]
    bar = _progress(len(chunks), log)
    try:
        with torch.no_grad():
            for chunk in chunks:
                feeds = _feeds(chunk, (info.num_layers, info.num_kv_heads, info.head_dim),
                               block_size, device)
                on_chunk(ex.run(feeds), feeds)
                bar.update(1)
    finally:
        bar.close()
        del ex
        if device != "cpu":
            torch.cuda.empty_cache()            # the build goes on without the weights' copy


def collect_absmax(graph, inputs: dict[str, str], tokens: Sequence[int], info, block_size: int,
                   log: Callable[[str], None] = print, device: str = "cpu"
                   ) -> dict[str, np.ndarray]:
    """weight name -> float32 [K] absmax over tokens of its GEMM's input (`inputs` maps the
    weight name to that input tensor's name)."""
    import torch

    stats: dict[str, torch.Tensor] = {}

    def on_chunk(out, _feeds):
        for weight, tensor in inputs.items():
            x = out[tensor].float()
            m = x.reshape(-1, x.shape[-1]).abs().amax(dim=0)
            stats[weight] = m if weight not in stats else torch.maximum(stats[weight], m)

    run_chunks(graph, sorted(set(inputs.values())), tokens, info, block_size, on_chunk, log,
               device)
    return {k: v.cpu().numpy().astype(np.float32) for k, v in stats.items()}


def cached(model_source: str, seed: int, tokens: Sequence[int], mode: str,
           weights: dict[str, np.ndarray], names: set[str],
           compute: Callable[[], dict[str, np.ndarray]], log: Callable[[str], None] = print
           ) -> tuple[dict[str, np.ndarray], bool]:
    """(statistics, cache_hit): from the disk cache when it holds exactly `names`, else
    compute() and store."""
    path = cache_dir() / f"{cache_key(model_source, seed, tokens, mode, weights)}.npz"
    if path.is_file():
        with np.load(path) as data:
            stats = {k: data[k] for k in data.files}
        if set(stats) == names:
            log(f"calibration: cache hit {path}")
            return stats, True
    stats = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **stats)
    tmp.replace(path)
    return stats, False


def calibrate(model, *, model_source: str, seed: int, mode: str, text: str, tokenizer, info,
              block_size: int, log: Callable[[str], None] = print, device: str = "auto"
              ) -> tuple[dict[str, np.ndarray], bool]:
    """(statistics, cache_hit) for the quantizable GEMMs of the (pre-quantization) `model`
    (gs.Graph or ModelProto); `device`: quantization.calibration_device."""
    from trtcompile.quant.targets import gemm_targets, weight_name

    graph = as_graph(model)
    targets = gemm_targets(graph, info.vocab_size)
    inputs = {weight_name(n): n.inputs[0].name for n in targets}
    weights = {weight_name(n): n.inputs[1].values for n in targets}
    tokens = tokenize(text, tokenizer, info.vocab_size)

    def compute() -> dict[str, np.ndarray]:
        where = resolve_device(device, log)
        log(f"calibration: {len(tokens)} tokens, {len(targets)} GEMM inputs, on {where}")
        return collect_absmax(graph, inputs, tokens, info, block_size, log, where)

    return cached(model_source, seed, tokens, mode, weights, set(inputs), compute, log)
