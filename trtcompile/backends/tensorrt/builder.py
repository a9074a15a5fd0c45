"""Build one serialized TensorRT engine per GPU architecture from the rewritten ONNX:
strongly typed network, trtcompile plugins, optimization profiles, timing cache."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from trtcompile.backends.tensorrt._trt import import_tensorrt, load_plugin_library
from trtcompile.backends.tensorrt.arch import check_arch_covered, current_arch, normalize_arch
from trtcompile.backends.tensorrt.profiles import EngineLimits, make_profiles
from trtcompile.errors import (ArtifactError, BackendUnavailableError, ConfigError,
                               UnsupportedOpError)

PLUGIN_LIB_NAME = "libtrtcompile_plugins.so"
DEFAULT_PLUGIN_LIB = Path(__file__).resolve().parents[3] / "build" / "plugins" / PLUGIN_LIB_NAME
COMPATIBILITY_LEVELS = {None: "NONE", "ampere_plus": "AMPERE_PLUS",
                        "same_compute_capability": "SAME_COMPUTE_CAPABILITY"}


@dataclass
class BuildReport:
    engine_path: str
    arch: str
    tensorrt_version: str
    hardware_compatibility: str | None
    seconds: float
    bytes: int
    profiles: list[dict] = field(default_factory=list)

    def to_manifest(self, artifact_dir: Path) -> dict:
        out = asdict(self)
        out["engine_path"] = str(Path(self.engine_path).relative_to(artifact_dir))
        return out


def _progress_monitor(trt, log: Callable[[str], None]):
    class Progress(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self._started: dict[str, float] = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            self._started[phase_name] = time.perf_counter()
            indent = "  " if parent_phase else ""
            log(f"[tensorrt] {indent}{phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name, step):
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            took = time.perf_counter() - self._started.pop(phase_name, time.perf_counter())
            log(f"[tensorrt] {phase_name} done in {took:.1f} s")

    return Progress()


def _parse(trt, network, logger, onnx_path: Path) -> None:
    parser = trt.OnnxParser(network, logger)
    if parser.parse_from_file(str(onnx_path)):  # from file: external data (.data) resolves
        return
    errors = []
    for i in range(parser.num_errors):
        e = parser.get_error(i)
        errors.append(f"  node {e.node()} '{e.node_name()}' ({e.node_operator()}): {e.desc()}")
    raise UnsupportedOpError(f"TensorRT could not parse {onnx_path}:\n" + "\n".join(errors))


def build_engine(onnx_path: str | Path, out_path: str | Path, plugin_lib: str | Path,
                 limits: EngineLimits, *, timing_cache_path: str | Path | None = None,
                 hardware_compatibility: str | None = None, workspace_bytes: int | None = None,
                 verbose: bool = False, arch: str | None = None,
                 log: Callable[[str], None] = print) -> BuildReport:
    """Build and write one engine for `arch` (default: this GPU's). Another architecture
    needs a hardware_compatibility level that covers it (HardwareError otherwise)."""
    trt = import_tensorrt()
    if hardware_compatibility not in COMPATIBILITY_LEVELS:
        raise ConfigError(f"hardware_compatibility '{hardware_compatibility}' is not valid; choose "
                          f"one of: {', '.join(str(k) for k in COMPATIBILITY_LEVELS)}")
    here = current_arch()
    target = normalize_arch(arch) if arch else here
    check_arch_covered(target, here, hardware_compatibility)
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    start = time.perf_counter()

    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    load_plugin_library(trt, builder.get_plugin_registry(), plugin_lib)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    _parse(trt, network, logger, onnx_path)

    config = builder.create_builder_config()
    # PagedAttention's kv_cache_out aliases its kv_cache input (IPluginV3OneBuildV2).
    config.set_preview_feature(trt.PreviewFeature.ALIASED_PLUGIN_IO_10_03, True)
    if workspace_bytes is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    config.hardware_compatibility_level = getattr(
        trt.HardwareCompatibilityLevel, COMPATIBILITY_LEVELS[hardware_compatibility])
    config.progress_monitor = _progress_monitor(trt, log)
    if verbose:
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED

    cache_bytes = b""
    if timing_cache_path is not None and Path(timing_cache_path).is_file():
        cache_bytes = Path(timing_cache_path).read_bytes()
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)

    network_shapes = {network.get_input(i).name: tuple(network.get_input(i).shape)
                      for i in range(network.num_inputs)}
    profiles = make_profiles(limits)
    for p in profiles:
        opt_profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in p.shapes(network_shapes).items():
            opt_profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(opt_profile)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailableError(f"TensorRT failed to build an engine from {onnx_path} for "
                                      f"{target}; rerun with verbose=True for its log")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(bytes(serialized))
    if timing_cache_path is not None:
        Path(timing_cache_path).parent.mkdir(parents=True, exist_ok=True)
        Path(timing_cache_path).write_bytes(bytes(config.get_timing_cache().serialize()))
    return BuildReport(
        engine_path=str(out_path), arch=target, tensorrt_version=trt.__version__,
        hardware_compatibility=hardware_compatibility, seconds=time.perf_counter() - start,
        bytes=out_path.stat().st_size,
        profiles=[{"name": p.name, "dims": {k: asdict(r) for k, r in p.dims.items()}}
                  for p in profiles])


def find_plugin_library() -> Path:
    path = Path(os.environ.get("TRTC_PLUGIN_LIB", DEFAULT_PLUGIN_LIB))
    if not path.is_file():
        raise BackendUnavailableError(
            f"plugin library {path} not found: build it with `cmake -S plugins -B build/plugins "
            "-DTRT_INCLUDE_DIR=... -DTRT_LIB_DIR=... && cmake --build build/plugins` or set "
            "TRTC_PLUGIN_LIB")
    return path


def build_engines_for_config(config, staging: Path, log: Callable[[str], None] = print,
                             hardware_compatibility: str | None = None) -> dict:
    """Engines for config.build.gpu_archs into staging/engines/, the plugin library into
    staging/plugins/; returns the manifest's `engines` entry (arch -> report)."""
    from trtcompile.artifact import ENGINES_DIR, MODEL_ONNX

    onnx_path = Path(staging) / MODEL_ONNX
    if not onnx_path.is_file():
        raise ArtifactError(f"{onnx_path} missing: the TensorRT build runs after the passes")
    lib = Path(staging) / "plugins" / PLUGIN_LIB_NAME
    lib.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(find_plugin_library(), lib)
    limits = EngineLimits(max_num_seqs=config.limits.max_num_seqs,
                          max_num_tokens=config.limits.max_num_tokens,
                          max_model_len=config.limits.max_model_len,
                          block_size=config.kv_cache.block_size)
    trt = import_tensorrt()
    cache = Path.home() / ".cache" / "trtcompile" / f"timing-{trt.__version__}.cache"
    engines: dict[str, dict] = {}
    built: BuildReport | None = None
    for arch in dict.fromkeys(normalize_arch(a) for a in config.build.gpu_archs):
        out = Path(staging) / ENGINES_DIR / f"{arch}.engine"
        if built is not None and hardware_compatibility == "ampere_plus":
            check_arch_covered(arch, current_arch(), hardware_compatibility)
            shutil.copy2(built.engine_path, out)  # one Ampere+ engine serves every arch
            report = BuildReport(**{**asdict(built), "engine_path": str(out), "arch": arch})
        else:
            log(f"[tensorrt] building {out.name}")
            report = build_engine(onnx_path, out, lib, limits, timing_cache_path=cache,
                                  hardware_compatibility=hardware_compatibility, arch=arch, log=log)
            built = report
        engines[arch] = report.to_manifest(Path(staging))
    return engines
