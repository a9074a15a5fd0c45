"""The one place that imports tensorrt, with the install hint when it is missing."""

from __future__ import annotations

from trtcompile.errors import BackendUnavailableError

MIN_VERSION = (10, 9)
INSTALL_HINT = ("install TensorRT >= 10.9 on a machine with an NVIDIA GPU: "
                "pip install --extra-index-url https://pypi.nvidia.com 'tensorrt>=10.9' "
                "(or pip install 'trtcompile[tensorrt]'), or use backend 'torch'")


def has_tensorrt() -> bool:
    """True when a real tensorrt package is importable. A namespace package does not count:
    a tests/tensorrt/ folder would become one whenever tests/ is on sys.path."""
    import importlib.util

    spec = importlib.util.find_spec("tensorrt")
    return spec is not None and spec.origin is not None


def import_tensorrt():
    if not has_tensorrt():
        raise BackendUnavailableError(f"the TensorRT backend needs the tensorrt package, which is "
                                      f"not installed; {INSTALL_HINT}")
    import tensorrt as trt
    version = tuple(int(p) for p in trt.__version__.split(".")[:2])
    if version < MIN_VERSION:
        raise BackendUnavailableError(f"tensorrt {trt.__version__} is installed; trtcompile needs "
                                      f">= {'.'.join(map(str, MIN_VERSION))}: {INSTALL_HINT}")
    return trt


def load_plugin_library(trt, registry, path) -> None:
    """Register the trtcompile plugin creators from `path` (IPluginRegistry::loadLibrary);
    a library already loaded in this process is accepted."""
    from trtcompile.ops.spec import PLUGIN_NAMESPACE, PLUGIN_OPS, PLUGIN_VERSION

    if registry.load_library(str(path)) is not None:
        return
    missing = [name for name in PLUGIN_OPS
               if registry.get_creator(name, PLUGIN_VERSION, PLUGIN_NAMESPACE) is None]
    if missing:
        raise BackendUnavailableError(f"{path}: TensorRT could not load the plugin library (plugins "
                                      f"{missing} not registered); build it with "
                                      "cmake -S plugins -B build/plugins -DTRT_INCLUDE_DIR=... "
                                      "-DTRT_LIB_DIR=...")
