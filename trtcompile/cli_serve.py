"""`trtcompile serve` and `trtcompile bench` (registered on the main group in cli.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from trtcompile.cli_common import Reporter, user_errors, writable_file
from trtcompile.errors import BackendUnavailableError, ConfigError

artifact_arg = click.argument("artifact", type=click.Path(path_type=Path))


def _need(module: str, extra: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise BackendUnavailableError(f"this command needs {module}: "
                                      f"pip install 'trtcompile[{extra}]'")


@click.command()
@artifact_arg
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--max-queue", default=256, show_default=True, type=click.IntRange(min=0),
              help="requests that may wait beyond max_num_seqs; more get HTTP 503")
@click.option("--device", default=None, help="cpu or cuda (default: cuda when available)")
@click.option("--model-name", default=None, help="name in /v1/models (default: directory name)")
@click.option("--num-blocks", type=click.IntRange(min=2), default=None, help="KV pool size")
@user_errors
def serve(artifact: Path, host, port, max_queue, device, model_name, num_blocks) -> None:
    """Serve ARTIFACT with an OpenAI-compatible HTTP API."""
    for module in ("fastapi", "uvicorn", "prometheus_client"):
        _need(module, "serve")
    from trtcompile.serve.server import ServeOptions
    from trtcompile.serve.server import serve as run_server

    click.echo(f"serving {artifact} on http://{host}:{port}/v1 (JSON logs on stderr)", err=True)
    run_server(artifact, ServeOptions(host=host, port=port, max_queue=max_queue, device=device,
                                      model_name=model_name, num_blocks=num_blocks))


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise ConfigError(f"--request-rate: expected a number of requests/s or 'inf', "
                          f"got {value!r}") from None
    if not rate > 0:
        raise ConfigError(f"--request-rate must be > 0 (or 'inf'), got {value!r}")
    return rate


@click.command()
@artifact_arg
@click.option("--url", default=None, help="benchmark a running server (else offline via LLM)")
@click.option("--num-requests", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--request-rate", default="inf", show_default=True,
              help="requests/s (Poisson arrivals) or 'inf' (all at t=0)")
@click.option("--dataset", default="w1", show_default=True,
              help="'w1' or a JSON-lines file of {\"prompt\": [ids], \"max_tokens\": n}")
@click.option("--scale", default=1.0, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="shrink W1's prompt and output lengths by this factor")
@click.option("--output-json", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write a PNG (TTFT/TPOT CDFs, tokens over time)")
@click.option("--device", default=None, help="offline only: cpu or cuda")
@click.option("--num-blocks", type=click.IntRange(min=2), default=None, help="offline KV pool")
@user_errors
def bench(artifact: Path, url, num_requests, request_rate, dataset, scale, output_json, plot,
          device, num_blocks) -> None:
    """Benchmark ARTIFACT on a workload: output tokens/s, TTFT and TPOT p50/p90/p99."""
    from trtcompile.artifact import load_artifact
    from trtcompile.serve.bench import format_table, run_offline, run_online
    from trtcompile.serve.workload import load_file, load_w1

    rate = _rate(request_rate)
    for path, option in ((output_json, "--output-json"), (plot, "--plot")):
        if path is not None:   # checked now: the results are written only after the whole run
            writable_file(path, option)
    vocab = load_artifact(artifact, verify=False).manifest["model"]["vocab_size"]
    if dataset == "w1":
        workload = load_w1(vocab, num_requests, scale)
    else:
        workload = load_file(Path(dataset), num_requests, vocab)
    if "built-in copy" in workload.source:
        click.echo(f"note: W1 from the {workload.source}", err=True)
    if plot is not None:
        _need("matplotlib", "bench")
    if url:
        _need("httpx", "bench")
        result = run_online(url, workload, rate)
    else:
        from trtcompile.llm import LLM, freeze_startup_objects

        llm = LLM(artifact, device=device, num_blocks=num_blocks, log=Reporter())
        freeze_startup_objects()
        result = run_offline(llm, workload, rate)
    summary = result.summary()
    rate_text = "inf" if math.isinf(rate) else f"{rate:g}"
    click.echo(f"{workload.name}: {len(workload.requests)} requests, rate {rate_text}, "
               f"{'offline' if not url else url}")
    click.echo(format_table(summary))
    for err in summary["errors"]:
        click.echo(f"error: {err}", err=True)
    if output_json is not None:
        output_json.write_text(json.dumps(result.to_json(), indent=2))
        click.echo(f"wrote {output_json}")
    if plot is not None:
        from trtcompile.serve.bench_plot import plot as write_plot

        write_plot(result, plot)
        click.echo(f"wrote {plot}")
