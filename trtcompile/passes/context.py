"""What every pass receives and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trtcompile.models.loading import ModelInfo


@dataclass(frozen=True)
class PassContext:
    info: ModelInfo
    inv_freq: Any | None = None          # torch/numpy float32 [rotary_dim / 2]
    dtype: str = "float32"               # compute dtype of the final graph
    block_size: int = 16
    kv_dtype: str = "float32"            # the pool dtype
    quant: Any | None = None             # trtcompile.quant.modes.QuantPlan, for the quant passes
    kv_scales: Any | None = None         # float32 [L, 2] (k, v) scales of an fp8/int8 pool


@dataclass
class PassReport:
    name: str
    matched: int = 0
    changed: bool = False
    notes: list[str] = field(default_factory=list)
    nodes_before: int = 0
    nodes_after: int = 0
    seconds: float = 0.0                 # wall time (logged, not in the manifest)

    def summary(self) -> str:
        state = f"matched {self.matched}" if self.changed else "unchanged"
        extra = f" ({'; '.join(self.notes)})" if self.notes else ""
        return f"{self.name}: {state}, nodes {self.nodes_before} -> {self.nodes_after}{extra}"
