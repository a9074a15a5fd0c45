"""The torch backend: the artifact's rewritten ONNX executed by OnnxExecutor; plugin nodes
run the CUDA kernels on GPU and the plain-torch references on CPU."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from trtcompile import io_names as io
from trtcompile.artifact import Artifact


class TorchEngine:
    def __init__(self, artifact: Artifact, device: str | torch.device = "cpu"):
        from trtcompile.executor import OnnxExecutor

        self.device = torch.device(device)
        if self.device.type == "cuda":
            from trtcompile.ops.cuda_kernels import register_cuda_impls
            register_cuda_impls()
        self.executor = OnnxExecutor(artifact.model_onnx, self.device,
                                     **executor_options(artifact.manifest))

    def execute(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.executor.run(inputs)[io.LOGITS]


def executor_options(manifest: Mapping) -> dict:
    """OnnxExecutor options that the artifact's build config decides."""
    quant = manifest.get("build_config", {}).get("quantization", {})
    return {"fp8_fast_accumulation": bool(quant.get("fp8_fast_accumulation", False))}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The device a runtime runs on: "cpu", "cuda" or "cuda:N" (default: CUDA when available).
    A name torch does not know, or a CUDA device this machine does not have, is the user's
    error (ConfigError / HardwareError), not torch's traceback."""
    from trtcompile.errors import ConfigError, HardwareError

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"unknown device {str(device)!r}; choose cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {str(device)!r} is not supported; choose cpu, cuda or cuda:N")
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise HardwareError(f"device {str(device)!r}: no CUDA GPU is visible here "
                                f"(torch.cuda.is_available() is False); use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise HardwareError(f"device {str(device)!r}: this machine has {count} CUDA "
                                f"device(s), cuda:0..cuda:{count - 1}")
    return dev


def open_backend(artifact: Artifact, device: str | torch.device, backend: str | None = None):
    """The backend the artifact was built for (or the one named), on `device`."""
    from trtcompile.errors import BackendUnavailableError

    name = backend or artifact.manifest["backend"]
    if name == "torch":
        return TorchEngine(artifact, device)
    if name == "tensorrt":
        if torch.device(device).type != "cuda":
            raise BackendUnavailableError("the tensorrt backend runs on a GPU only")
        from trtcompile.backends.tensorrt.runner import TensorRTEngine
        return TensorRTEngine(artifact.path, artifact.manifest)
    raise BackendUnavailableError(f"unknown backend '{name}'; choose torch or tensorrt")
