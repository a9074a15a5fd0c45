"""Shared fixtures: exported tiny models (one export per family per session)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))

FAMILIES = ("llama", "qwen2", "qwen3", "mistral", "gpt2")


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """family -> (LoadedModel, exported onnx path), built lazily and cached."""
    cache: dict = {}

    def get(family: str):
        if family not in cache:
            from trtcompile.export.onnx_export import export_onnx
            from trtcompile.models.loading import load_model

            loaded = load_model(f"tiny-{family}", seed=0)
            path = export_onnx(loaded.model, tmp_path_factory.mktemp(family) / "model.onnx",
                               max_tokens=512, log=lambda m: None)
            cache[family] = (loaded, path)
        return cache[family]
    return get
