"""The ctypes mirror of trtc_paged_attention_params (trtcompile/ops/cuda_kernels.py) has the C
struct's size and field offsets: a field added on one side only would hand the kernels garbage.
The bindings and the header agree on the interface version, and a library of another version
is refused."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from trtcompile.errors import BackendUnavailableError
from trtcompile.ops.cuda_kernels import ABI_VERSION, KernelLibrary, PagedAttentionParams

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
CUDA_INCLUDE = Path("/usr/local/cuda/include")


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) to read the struct")
@pytest.mark.skipif(not (CUDA_INCLUDE / "cuda_runtime.h").is_file(),
                    reason="CUDA headers not found at /usr/local/cuda/include")
def test_paged_attention_params_mirror(tmp_path):
    names = [name for name, _ in PagedAttentionParams._fields_]
    lines = "\n".join(
        f'  printf("{n} %zu\\n", offsetof(trtc_paged_attention_params, {n}));' for n in names)
    src = tmp_path / "layout.c"
    src.write_text(f"""#include <stddef.h>
#include <stdio.h>
#include "common/trtc_launch.h"
int main(void) {{
  printf("sizeof %zu\\n", sizeof(trtc_paged_attention_params));
{lines}
  return 0;
}}
""")
    exe = tmp_path / "layout"
    subprocess.run(["cc", "-I", str(PLUGINS), "-I", str(CUDA_INCLUDE), str(src), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    c_layout = dict(line.split() for line in subprocess.run(
        [str(exe)], check=True, capture_output=True, text=True).stdout.splitlines())
    assert int(c_layout.pop("sizeof")) == ctypes.sizeof(PagedAttentionParams)
    py_layout = {n: getattr(PagedAttentionParams, n).offset for n in names}
    assert {n: int(v) for n, v in c_layout.items()} == py_layout


def test_abi_version_matches_header():
    header = (PLUGINS / "common" / "trtc_launch.h").read_text()
    assert re.search(r"#define TRTC_ABI_VERSION (\d+)", header).group(1) == str(ABI_VERSION)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) to build stand-ins")
@pytest.mark.parametrize("body,why", [
    ("int trtc_abi_version(void) { return 1; }", "interface version 1"),
    ("int trtc_rmsnorm(void) { return 0; }", "an older trtcompile"),
])
def test_library_of_another_version_refused(tmp_path, body, why):
    """A stand-in library (no CUDA in it) of another interface version, or from before the
    version existed, is refused before any launcher is bound, with what to do about it."""
    src, lib = tmp_path / "old.c", tmp_path / "libold.so"
    src.write_text(body + "\n")
    subprocess.run(["cc", "-shared", "-fPIC", str(src), "-o", str(lib)], check=True,
                   capture_output=True, text=True)
    with pytest.raises(BackendUnavailableError, match=why) as e:
        KernelLibrary(lib)
    assert "make kernels" in str(e.value) and f"interface version {ABI_VERSION}" in str(e.value)
