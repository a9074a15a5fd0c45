"""Every TensorRT adapter compiles (g++ -fsyntax-only -Werror) against TRT_INCLUDE_DIR.

TRT_INCLUDE_DIR may list several include/ directories separated by ':' (e.g. the 10.x and
11.x headers of github.com/NVIDIA/TensorRT); plugins/README.md says how to extract them."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INCLUDE_DIRS = [d for d in os.environ.get("TRT_INCLUDE_DIR", "").split(":") if d]
CXX = os.environ.get("CXX", "g++-12")

pytestmark = [
    pytest.mark.skipif(not INCLUDE_DIRS, reason="TRT_INCLUDE_DIR is not set (TensorRT include/ "
                                                "directory, see plugins/README.md)"),
    pytest.mark.skipif(shutil.which(CXX) is None, reason=f"{CXX} not found"),
]


@pytest.mark.parametrize("include_dir", INCLUDE_DIRS)
def test_adapters_compile(include_dir):
    assert (Path(include_dir) / "NvInferRuntime.h").is_file(), f"{include_dir}: no NvInferRuntime.h"
    proc = subprocess.run([str(ROOT / "plugins" / "check_adapters.sh"), include_dir],
                          capture_output=True, text=True, env={**os.environ, "CXX": CXX})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(f"{CXX} ") == 6  # common (2) + one per adapter (4)
