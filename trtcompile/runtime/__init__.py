"""Serving runtime: paged KV cache, in-flight batching scheduler, sampler, engine core."""
