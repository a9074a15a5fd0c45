"""The PNG of a benchmark run: TTFT and TPOT distributions, output tokens over time."""

from __future__ import annotations

from pathlib import Path

from trtcompile.errors import BackendUnavailableError
from trtcompile.serve.bench import BenchResult


def plot(result: BenchResult, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        raise BackendUnavailableError("--plot needs matplotlib: pip install 'trtcompile[bench]'") \
            from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ok = [t for t in result.timings if t.error is None and t.finish is not None]
    s = result.summary()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, name, values in ((axes[0], "TTFT", [t.ttft for t in ok if t.ttft is not None]),
                             (axes[1], "TPOT", [t.tpot for t in ok if t.tpot is not None])):
        v = np.sort(np.asarray(values) * 1000)
        if len(v):
            ax.plot(v, np.arange(1, len(v) + 1) / len(v), drawstyle="steps-post")
            for q in (50, 90, 99):
                ax.axvline(np.percentile(v, q), ls=":", c="gray")
                ax.text(np.percentile(v, q), 0.02, f"p{q}", rotation=90, fontsize=8)
        ax.set(xlabel=f"{name} (ms)", ylabel="fraction of requests", title=f"{name} CDF")
        ax.grid(alpha=0.3)
    finishes = sorted((t.finish, t.output_tokens) for t in ok)
    if finishes:
        xs = [0.0] + [f for f, _ in finishes]
        ys = np.cumsum([0] + [n for _, n in finishes])
        axes[2].plot(xs, ys, drawstyle="steps-post")
    axes[2].set(xlabel="time (s)", ylabel="output tokens of finished requests",
                title=f"{s['output_throughput_tok_s']:.1f} output tok/s overall")
    axes[2].grid(alpha=0.3)
    fig.suptitle(f"trtcompile bench: {s['workload']}, {s['completed']}/{s['num_requests']} "
                 f"requests, rate {s['request_rate']}, {s['mode']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
