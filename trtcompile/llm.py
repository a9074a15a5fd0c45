"""LLM: the Python front end. Load an artifact, generate for many prompts at once."""

from __future__ import annotations

import gc
import itertools
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from trtcompile.errors import ConfigError, RequestError


@dataclass
class Completion:
    request_id: str
    prompt_token_ids: list[int]
    token_ids: list[int]
    text: str | None
    finish_reason: str | None
    logprobs: list[float] | None


def freeze_startup_objects() -> int:
    """Collect once, then move every live object to the collector's permanent generation
    (gc.freeze), so that full collections while serving no longer walk what loading made.
    Process-wide, for long-running servers: call it once the engine is up. Measured on an H100
    (bench_w1.py, llama-3.2-1b): W1 runs that met a full collection took 1.25-1.34 s instead of
    0.89 s (0.35-0.44 s in the collector); with it, no run did. Returns the objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class LLM:
    """`LLM(artifact).generate(prompts, params)`; prompts are strings or token id lists."""

    def __init__(self, artifact: str | Path, device: str | None = None, *,
                 num_blocks: int | None = None, max_num_seqs: int | None = None,
                 max_num_tokens: int | None = None, enable_prefix_caching: bool = True,
                 backend: str | None = None, seed: int = 0, verify: bool = True,
                 cuda_graphs: bool = True, async_scheduling: bool = True,
                 log: Callable[[str], None] | None = None):
        """async_scheduling: schedule and launch each step while the previous one runs on
        the device (EngineCore.step); False waits for each step before the next.
        log: called with a line at each stage of start-up (the CLI prints them)."""
        import time

        from trtcompile.artifact import load_artifact
        from trtcompile.backends.torch_backend import open_backend, resolve_device
        from trtcompile.runtime.detokenizer import TextStreams
        from trtcompile.runtime.engine_core import EngineCore
        from trtcompile.runtime.model_runner import KVPoolSpec, ModelRunner, blocks_for_budget
        from trtcompile.runtime.scheduler import SchedulerConfig

        log = log or (lambda line: None)
        start = time.perf_counter()
        # bad arguments fail before the artifact loads; None means the artifact's default
        for name, value, least in (("num_blocks", num_blocks, 2), ("max_num_seqs", max_num_seqs, 1),
                                   ("max_num_tokens", max_num_tokens, 1)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < least):
                raise ConfigError(f"{name} must be an integer >= {least} (or None for the "
                                  f"artifact's default), got {value!r}")
        self.device = resolve_device(device)
        self.artifact = load_artifact(artifact, verify=verify)
        m = self.artifact.manifest
        model, limits, kv = m["model"], m["build_config"]["limits"], m["build_config"]["kv_cache"]
        self.tokenizer = self._load_tokenizer()
        pool = KVPoolSpec(model["num_layers"], model["num_kv_heads"], model["head_dim"],
                          m["kv_cache"]["block_size"], m["kv_cache"]["dtype"])
        name = backend or m["backend"]
        engine = open_backend(self.artifact, self.device, backend)
        log(f"loaded {self.artifact.path} ({name} backend, {self.device}"
            f"{', checksums verified' if verify else ''}) in {time.perf_counter() - start:.1f} s")
        blocks = num_blocks if num_blocks is not None else blocks_for_budget(
            pool, self.device, kv["gpu_memory_fraction"], kv["cpu_num_blocks"])
        self.runner = ModelRunner(engine, pool, blocks)
        log(f"KV cache: {blocks} blocks of {pool.block_size} tokens "
            f"({blocks * pool.bytes_per_block / 2**30:.2f} GiB, {pool.dtype})")
        self.max_model_len = limits["max_model_len"]
        self.scheduler_config = SchedulerConfig(
            max_num_seqs=max_num_seqs if max_num_seqs is not None else limits["max_num_seqs"],
            max_num_tokens=max_num_tokens if max_num_tokens is not None else limits["max_num_tokens"],
            block_size=pool.block_size, num_blocks=blocks, max_model_len=self.max_model_len,
            enable_prefix_caching=enable_prefix_caching)
        max_blocks = -(-self.max_model_len // pool.block_size)
        if cuda_graphs and self.device.type == "cuda" and name == "torch":
            start = time.perf_counter()
            self.runner.capture_decode_graphs(self.scheduler_config.max_num_seqs, max_blocks)
            g = self.runner.graphs
            log(f"captured {len(g.graphs)} decode CUDA graphs ({len(g.buckets)} batch sizes x "
                f"{len(g.widths)} block-table widths) in {time.perf_counter() - start:.1f} s")
        eos = model["eos_token_ids"][0] if model["eos_token_ids"] else None
        detok = TextStreams(self.tokenizer) if self.tokenizer is not None else None
        # each step's block tables as wide as its longest (the kernels plan a call by them)
        self.engine = EngineCore(self.scheduler_config, self.runner, eos_token_id=eos,
                                 detokenize=detok, seed=seed, async_scheduling=async_scheduling,
                                 vocab_size=model["vocab_size"])
        self._ids = itertools.count()

    def _load_tokenizer(self):
        if self.artifact.tokenizer_dir is None:
            return None
        from transformers import AutoTokenizer
        return AutoTokenizer.from_pretrained(str(self.artifact.tokenizer_dir))

    def encode(self, prompt: str | Sequence[int]) -> list[int]:
        if isinstance(prompt, str):
            if self.tokenizer is not None:
                return self.tokenizer.encode(prompt)
            try:
                return [int(t) for t in prompt.split()]
            except ValueError:
                raise RequestError("prompt: this artifact has no tokenizer; give token ids "
                                   "(a list, or a string of integers separated by spaces)") from None
        try:
            return [operator.index(t) for t in prompt]      # integers only: 3.5 is not an id
        except TypeError:
            raise RequestError(f"a prompt is a string or a sequence of token ids (integers), "
                               f"got {type(prompt).__name__} {prompt!r:.60}") from None

    def add(self, prompt: str | Sequence[int], params=None, request_id: str | None = None) -> str:
        """Queue one request (validated now; RequestError names the bad field)."""
        rid = request_id or f"req-{next(self._ids)}"
        self.engine.add_request(rid, self.encode(prompt), params)
        return rid

    def generate(self, prompts: str | Sequence[str | Sequence[int]], params=None) -> list[Completion]:
        """Generate for all prompts together (in-flight batching); outputs in prompt order.
        prompts: a list of prompts (strings or token id lists), or one string; params: one
        SamplingParams for all, or one per prompt. Each prompt gets one completion (n = 1).
        Nothing is queued unless every prompt and its parameters are valid."""
        from trtcompile.runtime.sampling_params import SamplingParams

        if isinstance(prompts, str):
            prompts = [prompts]
        plist = list(params) if isinstance(params, (list, tuple)) else [params] * len(prompts)
        if len(plist) != len(prompts):
            raise RequestError(f"params: {len(plist)} SamplingParams for {len(prompts)} prompts; "
                               "give one for all or one per prompt")
        for sp in plist:
            if sp is not None and not isinstance(sp, SamplingParams):
                raise RequestError(f"params must be SamplingParams (or a list of them), "
                                   f"got {type(sp).__name__}")
            if sp is not None and sp.n != 1:
                raise RequestError(f"LLM.generate returns one completion a prompt, so n must be 1 "
                                   f"(got {sp.n}); repeat the prompt instead (its KV blocks are "
                                   "shared by prefix caching), or use the HTTP server")
        encoded = [self.encode(p) for p in prompts]
        ids: list[str] = []
        done: dict[str, Completion] = {}
        try:
            for tokens, sp in zip(encoded, plist):
                ids.append(self.add(tokens, sp))
                done[ids[-1]] = Completion(ids[-1], tokens, [], None, None, None)
            for out in self.run_until_done():
                c = done.get(out.request_id)
                if c is None:
                    continue
                c.token_ids += out.new_token_ids
                if out.logprobs is not None:
                    c.logprobs = (c.logprobs or []) + list(out.logprobs)
                if out.finished:
                    c.finish_reason = out.finish_reason.value if out.finish_reason else None
                    c.text = out.text if out.text is not None else self.decode(c.token_ids)
        except BaseException:
            # a prompt refused after others were queued, a step that failed or an interrupt:
            # abort this call's requests, so that the engine does not run or wait on them later
            for rid in ids:
                self.engine.abort_request(rid)
            raise
        return [done[rid] for rid in ids]

    def stream(self, prompt: str | Sequence[int], params=None) -> Iterator[list[int]]:
        """Yield the new token ids of one request as they are produced."""
        rid = self.add(prompt, params)
        finished = False
        try:
            while self.engine.has_unfinished():
                for out in self.engine.step():
                    if out.request_id == rid and out.new_token_ids:
                        yield out.new_token_ids
                    if out.request_id == rid and out.finished:
                        finished = True
                        return
        finally:
            if not finished:  # a failed step, or the caller stopped iterating: abort it (as generate)
                self.engine.abort_request(rid)

    def run_until_done(self):
        while self.engine.has_unfinished():
            yield from self.engine.step()

    def decode(self, token_ids: Sequence[int]) -> str | None:
        if self.tokenizer is None:
            return None
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)
