"""Run the app with uvicorn: in the foreground (CLI) or in a background thread (tests)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from trtcompile.serve.jsonlog import JsonLog


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    max_queue: int = 256
    device: str | None = None
    model_name: str | None = None       # default: the artifact directory's name
    num_blocks: int | None = None
    max_num_seqs: int | None = None
    log_requests: bool = True


def build_app(artifact: str | Path, opts: ServeOptions, log: JsonLog | None = None):
    from trtcompile.llm import LLM
    from trtcompile.serve.app import create_app

    log = log or JsonLog(enabled=opts.log_requests)
    llm = LLM(artifact, device=opts.device, num_blocks=opts.num_blocks,
              max_num_seqs=opts.max_num_seqs, log=lambda line: log("startup", message=line))
    name = opts.model_name or Path(artifact).resolve().name
    return create_app(llm, model_name=name, max_queue=opts.max_queue, log=log)


def serve(artifact: str | Path, opts: ServeOptions) -> None:
    import uvicorn

    from trtcompile.llm import freeze_startup_objects

    app = build_app(artifact, opts)
    freeze_startup_objects()
    uvicorn.run(app, host=opts.host, port=opts.port, log_level="warning", access_log=False)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerThread:
    """uvicorn serving `app` on 127.0.0.1 in a daemon thread; `with ServerThread(app) as url`."""

    def __init__(self, app, host: str = "127.0.0.1", port: int | None = None,
                 startup_timeout_s: float = 30.0) -> None:
        import uvicorn

        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning",
                                access_log=False, timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="uvicorn")
        self.startup_timeout_s = startup_timeout_s

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
