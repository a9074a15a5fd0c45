"""Prometheus metrics of one server, in a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest)

from trtcompile.serve.async_engine import EngineSnapshot

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model_name: str) -> None:
        self.registry = r = CollectorRegistry()
        labels = ["model"]
        self.waiting = Gauge("trtcompile_requests_waiting", "requests queued, not yet running",
                             labels, registry=r)
        self.running = Gauge("trtcompile_requests_running", "requests in the running batch",
                             labels, registry=r)
        self.kv_used = Gauge("trtcompile_kv_blocks_used", "KV cache blocks referenced",
                             labels, registry=r)
        self.kv_free = Gauge("trtcompile_kv_blocks_free", "KV cache blocks free (incl. cached)",
                             labels, registry=r)
        self.hit_rate = Gauge("trtcompile_prefix_cache_hit_rate",
                              "prefix cache hits / queried prompt tokens", labels, registry=r)
        self.preemptions = Gauge("trtcompile_preemptions", "preemptions since start", labels,
                                 registry=r)
        self.generated = Counter("trtcompile_generation_tokens", "output tokens generated "
                                 "(rate() of it is tokens/s)", labels, registry=r)
        self.prompt_tokens = Counter("trtcompile_prompt_tokens", "prompt tokens admitted",
                                     labels, registry=r)
        self.requests = Counter("trtcompile_requests", "finished HTTP generation requests",
                                ["model", "outcome"], registry=r)
        self.ttft = Histogram("trtcompile_time_to_first_token_seconds", "time to first token",
                              labels, buckets=LATENCY_BUCKETS, registry=r)
        self.tpot = Histogram("trtcompile_time_per_output_token_seconds",
                              "time between output tokens of a request", labels,
                              buckets=LATENCY_BUCKETS, registry=r)
        self.step = Histogram("trtcompile_step_seconds", "duration of one engine step", labels,
                              buckets=LATENCY_BUCKETS, registry=r)
        self.model = model_name
        for m in (self.generated, self.prompt_tokens, self.ttft, self.tpot, self.step):
            m.labels(model_name)                # export zeros before the first request

    def observe_snapshot(self, s: EngineSnapshot) -> None:
        m = self.model
        self.waiting.labels(m).set(s.num_waiting)
        self.running.labels(m).set(s.num_running)
        self.kv_used.labels(m).set(s.kv_blocks_used)
        self.kv_free.labels(m).set(s.kv_blocks_free)
        self.hit_rate.labels(m).set(s.prefix_cache_hit_rate)
        self.preemptions.labels(m).set(s.num_preemptions)

    def render(self, snapshot: EngineSnapshot) -> bytes:
        self.observe_snapshot(snapshot)
        return generate_latest(self.registry)
