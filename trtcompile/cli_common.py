"""What every `trtcompile` command shares: progress lines and one way to report user errors."""

from __future__ import annotations

import functools
import sys
import tempfile
import time
from pathlib import Path

import click

from trtcompile.errors import ConfigError, TrtCompileError


class Reporter:
    """Progress lines for long work: normal, --quiet (errors only) or --verbose."""

    def __init__(self, quiet: bool = False, verbose: bool = False):
        self.quiet, self.verbose = quiet, verbose
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            click.echo(f"[{time.perf_counter() - self.start:7.1f}s] {message}", err=True)


def user_errors(fn):
    """User errors: one clear line on stderr and exit code 2, never a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TrtCompileError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
    return wrapper


def writable_dir(path: Path, option: str, shown: Path | None = None) -> Path:
    """Make the directory `path` (and its parents) now, before any long work, and write a
    probe file in it, or raise a ConfigError naming the option (with the value `shown`, by
    default `path`) and the reason."""
    shown = path if shown is None else shown
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(f"{option} {shown}: cannot write in {path}: {exc.strerror or exc}") from None
    return path


def writable_file(path: Path, option: str) -> Path:
    """Check that the file `path` can be written once the work is done (its directory is made
    now), or raise a ConfigError naming the option and the reason."""
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a directory; give a file name")
    writable_dir(path.parent, option, shown=path)
    return path
