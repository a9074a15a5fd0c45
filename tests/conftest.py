"""Shared fixtures: exported tiny models (one export per family per session)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))

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


@pytest.fixture(scope="session")
def smollm2_artifact(tmp_path_factory):
    """The real SmolLM2-135M built once per session with the torch backend (fp32, CPU)."""
    from trtcompile.build import build
    from trtcompile.config import load_config

    root = tmp_path_factory.mktemp("smollm2")
    out = root / "artifact"
    cfg = load_config(Path(__file__).parents[1] / "configs" / "smollm2-135m.yaml",
                      [f"build.output_dir={out}"])
    build(cfg, dump_passes=root / "passes", log=lambda m: None)   # graph after each pass
    return out


@pytest.fixture(scope="session")
def smollm2_hf():
    from trtcompile.models.loading import load_model

    return load_model("smollm2-135m", "float32")
