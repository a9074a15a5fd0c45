"""What every `trtcompile` command shares: progress lines and one way to report user errors."""

from __future__ import annotations

import functools
import sys
import time

import click

from trtcompile.errors import TrtCompileError


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
