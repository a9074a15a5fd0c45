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
