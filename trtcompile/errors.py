"""User-facing errors: what the user can fix. Anything else raised is a bug."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TrtCompileError(Exception):
    """Base of every error the user can fix; the CLI prints it without a traceback."""

    exit_code = 2


class ConfigError(TrtCompileError, ValueError):
    """The configuration file or a CLI option is invalid."""


class ModelLoadError(TrtCompileError):
    """The model source is missing, unreadable or of an unsupported architecture."""


class UnsupportedOpError(TrtCompileError):
    """A graph holds an op the executor or a backend cannot run."""


class ArtifactError(TrtCompileError):
    """An artifact is missing, corrupt or does not match this machine."""


class BackendUnavailableError(TrtCompileError):
    """A requested backend (TensorRT, CUDA plugins) is not installed here."""


class RequestError(TrtCompileError, ValueError):
    """A generation request is invalid (empty prompt, bad sampling parameter...)."""


class HardwareError(TrtCompileError):
    """The GPU cannot run what was asked (e.g. FP8 on a card older than sm_89)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


class OverloadedError(TrtCompileError):
    """The server's waiting queue is full; the client should retry later (HTTP 503)."""


class ModelNotFoundError(RequestError):
    """A request named a model this server does not serve (HTTP 404)."""
