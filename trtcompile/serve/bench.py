"""`trtcompile bench`: run a workload offline (LLM) or against a server (--url) and
report output tokens/s, TTFT and TPOT percentiles."""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from trtcompile.serve.workload import Workload


@dataclass
class RequestTiming:
    prompt_tokens: int
    max_tokens: int
    arrival: float = 0.0                  # seconds since the start of the run
    first_token: float | None = None
    finish: float | None = None
    output_tokens: int = 0
    error: str | None = None

    @property
    def ttft(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.arrival

    @property
    def tpot(self) -> float | None:
        if self.finish is None or self.first_token is None or self.output_tokens < 2:
            return None
        return (self.finish - self.first_token) / (self.output_tokens - 1)


@dataclass
class BenchResult:
    mode: str                             # "offline" or the server URL
    workload: str
    workload_source: str
    request_rate: float
    timings: list[RequestTiming] = field(default_factory=list)
    duration_s: float = 0.0

    def summary(self) -> dict:
        ok = [t for t in self.timings if t.error is None and t.finish is not None]
        out_tokens = sum(t.output_tokens for t in ok)
        return {
            "mode": self.mode, "workload": self.workload, "workload_source": self.workload_source,
            "request_rate": "inf" if math.isinf(self.request_rate) else self.request_rate,
            "num_requests": len(self.timings), "completed": len(ok),
            "failed": len(self.timings) - len(ok), "duration_s": round(self.duration_s, 3),
            "prompt_tokens": sum(t.prompt_tokens for t in ok), "output_tokens": out_tokens,
            "output_throughput_tok_s": round(out_tokens / self.duration_s, 2)
            if self.duration_s > 0 else 0.0,
            "request_throughput_req_s": round(len(ok) / self.duration_s, 3)
            if self.duration_s > 0 else 0.0,
            "ttft_s": percentiles([t.ttft for t in ok if t.ttft is not None]),
            "tpot_s": percentiles([t.tpot for t in ok if t.tpot is not None]),
            "errors": sorted({t.error for t in self.timings if t.error})[:5],
        }

    def to_json(self) -> dict:
        return {"summary": self.summary(), "requests": [asdict(t) for t in self.timings]}


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "mean": None}
    a = np.asarray(values)
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "mean": float(a.mean())}


def arrival_times(n: int, rate: float, seed: int = 0) -> list[float]:
    """All at t=0 for rate inf, else a Poisson process of `rate` requests/s."""
    if math.isinf(rate):
        return [0.0] * n
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, n)
    return np.cumsum(gaps).tolist()


def run_offline(llm, workload: Workload, rate: float) -> BenchResult:
    """Drive `llm.engine` directly, adding requests at their arrival times."""
    from trtcompile.runtime.sampling_params import SamplingParams

    res = BenchResult("offline", workload.name, workload.source, rate)
    arrivals = arrival_times(len(workload.requests), rate)
    timings = {f"bench-{i}": RequestTiming(len(r.prompt), r.max_tokens, a)
               for i, (r, a) in enumerate(zip(workload.requests, arrivals))}
    res.timings = list(timings.values())
    todo = list(zip(timings, workload.requests, arrivals))
    start = time.perf_counter()
    while todo or llm.engine.has_unfinished():
        now = time.perf_counter() - start
        while todo and todo[0][2] <= now:
            rid, r, _ = todo.pop(0)
            try:
                llm.engine.add_request(rid, r.prompt, SamplingParams(
                    max_tokens=r.max_tokens, temperature=0.0, ignore_eos=True))
            except Exception as exc:       # a rejected request is reported, not fatal
                timings[rid].error = str(exc)
        if not llm.engine.has_unfinished():
            time.sleep(max(0.0, min(0.05, todo[0][2] - now)) if todo else 0)
            continue
        outputs = llm.engine.step()
        now = time.perf_counter() - start
        for out in outputs:
            t = timings[out.request_id]
            t.first_token = now if t.first_token is None else t.first_token
            t.output_tokens += len(out.new_token_ids)
            if out.finished:
                t.finish = now
    res.duration_s = time.perf_counter() - start
    return res


async def _one_online(client, url: str, model: str, r, t: RequestTiming, start: float) -> None:
    body = {"model": model, "prompt": r.prompt, "max_tokens": r.max_tokens, "temperature": 0,
            "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
    await asyncio.sleep(max(0.0, t.arrival - (time.perf_counter() - start)))
    t.arrival = time.perf_counter() - start
    try:
        async with client.stream("POST", f"{url}/v1/completions", json=body) as resp:
            if resp.status_code != 200:
                t.error = f"HTTP {resp.status_code}: {(await resp.aread())[:200]!r}"
                return
            async for line in resp.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    t.error = chunk["error"].get("message", "error event")
                    return
                now = time.perf_counter() - start
                if chunk.get("choices") and t.first_token is None:
                    t.first_token = now
                if chunk.get("usage"):
                    t.output_tokens = chunk["usage"]["completion_tokens"]
                if any(c.get("finish_reason") for c in chunk.get("choices", [])):
                    t.finish = now
    except Exception as exc:                # connection errors are results too
        t.error = f"{type(exc).__name__}: {exc}"


async def _served_model(client, url: str) -> str:
    """The first model the server lists (GET /v1/models), or a ConfigError saying why not: a
    server that cannot be reached, or one that does not answer with a model list."""
    import httpx

    from trtcompile.errors import ConfigError

    try:
        resp = await client.get(f"{url}/v1/models")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise ConfigError(f"--url {url}: cannot reach the server ({type(exc).__name__}: {exc})") from None
    try:
        return resp.json()["data"][0]["id"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ConfigError(f"--url {url}: GET /v1/models answered HTTP {resp.status_code} without a model "
                          "list; is it an OpenAI-compatible server?") from None


async def _run_online(url: str, workload: Workload, rate: float, timeout_s: float) -> BenchResult:
    import httpx

    res = BenchResult(url, workload.name, workload.source, rate)
    arrivals = arrival_times(len(workload.requests), rate)
    res.timings = [RequestTiming(len(r.prompt), r.max_tokens, a)
                   for r, a in zip(workload.requests, arrivals)]
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:
        model = await _served_model(client, url)
        start = time.perf_counter()
        await asyncio.gather(*(_one_online(client, url, model, r, t, start)
                               for r, t in zip(workload.requests, res.timings)))
        res.duration_s = time.perf_counter() - start
    return res


def run_online(url: str, workload: Workload, rate: float, timeout_s: float = 600) -> BenchResult:
    return asyncio.run(_run_online(url.rstrip("/"), workload, rate, timeout_s))


def format_table(summary: dict) -> str:
    """A Markdown table of the summary (what the README shows)."""
    def ms(d, k):
        return "-" if d[k] is None else f"{d[k] * 1000:.1f}"
    rows = [("requests (completed/total)", f"{summary['completed']}/{summary['num_requests']}"),
            ("duration (s)", f"{summary['duration_s']:.2f}"),
            ("prompt / output tokens", f"{summary['prompt_tokens']} / {summary['output_tokens']}"),
            ("output throughput (tok/s)", f"{summary['output_throughput_tok_s']:.1f}"),
            ("request throughput (req/s)", f"{summary['request_throughput_req_s']:.2f}")]
    for name, key in (("TTFT", "ttft_s"), ("TPOT", "tpot_s")):
        d = summary[key]
        rows.append((f"{name} p50 / p90 / p99 (ms)", f"{ms(d, 'p50')} / {ms(d, 'p90')} / "
                                                     f"{ms(d, 'p99')}"))
    width = max(len(r[0]) for r in rows)
    lines = [f"| {'metric':{width}} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {k:{width}} | {v} |" for k, v in rows]
    return "\n".join(lines)
