"""Structured logging: one JSON object per line per event, with the request id."""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO


class JsonLog:
    """`log("request_done", request_id=..., tokens=3)` writes one line; disabled = silent."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled

    def __call__(self, event: str, **fields) -> None:
        if not self.enabled:
            return
        line = json.dumps({"ts": round(time.time(), 6), "event": event, **fields}, default=str)
        self.stream.write(line + "\n")
        self.stream.flush()
