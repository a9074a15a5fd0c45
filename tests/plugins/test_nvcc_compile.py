"""nvcc compiles every kernel for every supported architecture (no GPU needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from trtcompile.ops.cuda_kernels import KernelLibrary

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
ARCHS = ["80", "89", "90a", "100", "103", "110", "120", "121"]


def _nvcc() -> str | None:
    return shutil.which("nvcc") or next(
        (p for p in ("/usr/local/cuda/bin/nvcc",) if os.access(p, os.X_OK)), None)


def _build_command(build_dir: Path) -> list[str] | None:
    """The real build (plugins/Makefile) into build_dir: one nvcc per source file, all gencodes
    in it, files compiled in parallel, then the shared library linked (None: no make/nvcc)."""
    make, nvcc = shutil.which("make"), _nvcc()
    if make is None or nvcc is None:
        return None
    jobs = str(max(2, os.cpu_count() or 2))
    return [make, "-C", str(PLUGINS), f"-j{jobs}", f"BUILD={build_dir}", "NVCC_THREADS=1",
            f"NVCC={nvcc}"]


# The build started after collection (conftest.py): the test below waits for it.
_BACKGROUND: dict = {}


def start_background_build() -> None:
    if _BACKGROUND:
        return
    build_dir = Path(tempfile.mkdtemp(prefix="trtc_nvcc_"))
    cmd = _build_command(build_dir)
    if cmd is None:
        shutil.rmtree(build_dir, ignore_errors=True)
        return
    log = open(build_dir / "build.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    _BACKGROUND.update(proc=proc, dir=build_dir, log=log)


def stop_background_build() -> None:
    if not _BACKGROUND:
        return
    proc = _BACKGROUND["proc"]
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    _BACKGROUND["log"].close()
    shutil.rmtree(_BACKGROUND["dir"], ignore_errors=True)
    _BACKGROUND.clear()


def _run_build(tmp_path: Path) -> tuple[Path, int, str]:
    """(build folder, make's exit status, the end of its output): the background build's, or a
    build run now."""
    if _BACKGROUND:
        proc, build_dir = _BACKGROUND["proc"], _BACKGROUND["dir"]
        try:
            proc.wait(timeout=1500)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return build_dir, proc.returncode, (build_dir / "build.log").read_text()[-8000:]
    proc = subprocess.run(_build_command(tmp_path), capture_output=True, text=True, timeout=1500)
    return tmp_path, proc.returncode, proc.stdout[-4000:] + proc.stderr[-4000:]


@pytest.mark.skipif(_nvcc() is None, reason="nvcc not found (PATH or /usr/local/cuda/bin)")
def test_kernels_compile_for_all_archs(tmp_path):
    """The real build for every architecture links one shared library that exports the C API
    and that the Python bindings accept (run in the background from the start of the session
    when the whole suite runs: see conftest.py)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make not found")
    gencode = subprocess.run([make, "-s", "-C", str(PLUGINS), "print-gencode"], check=True,
                             capture_output=True, text=True).stdout
    for arch in ARCHS:
        assert f"code=sm_{arch}" in gencode, f"sm_{arch} missing from {gencode}"
    build_dir, rc, output = _run_build(tmp_path)
    assert rc == 0, output
    lib = build_dir / "libtrtcompile_kernels.so"
    assert lib.is_file()
    nm = shutil.which("nm")
    if nm:
        symbols = subprocess.run([nm, "-D", "--defined-only", str(lib)], capture_output=True,
                                 text=True).stdout
        for name in ("trtc_paged_attention", "trtc_paged_attention_workspace_size",
                     "trtc_rmsnorm", "trtc_silu_mul", "trtc_weight_only_gemm",
                     "trtc_quantize_per_token", "trtc_abi_version"):
            assert f" T {name}\n" in symbols, f"{name} not exported"
    # the Python bindings accept it (interface version) and find every launcher they bind;
    # loading runs no CUDA call, so no GPU is needed
    assert KernelLibrary(lib).path == lib
