"""TensorRTEngine: runs one step of the engine I/O contract on a built engine (EngineBackend)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from trtcompile import io_names as io
from trtcompile.artifact import ENGINES_DIR
from trtcompile.backends.tensorrt._trt import import_tensorrt, load_plugin_library
from trtcompile.backends.tensorrt.arch import current_arch, engine_for_gpu
from trtcompile.backends.tensorrt.builder import PLUGIN_LIB_NAME
from trtcompile.errors import ArtifactError, RequestError


class TensorRTEngine:
    """Deserializes the engine that matches this GPU; one execution context per optimization
    profile, all sharing one activation buffer (steps run one at a time on one stream)."""

    def __init__(self, artifact_dir: str | Path, manifest: dict):
        import torch

        trt = import_tensorrt()
        self._trt = trt
        artifact_dir = Path(artifact_dir)
        engines = manifest.get("engines") or {}
        here = current_arch()
        key = engine_for_gpu(engines, here)
        if key is None:
            raise ArtifactError(f"{artifact_dir}: no engine for this {here} GPU; the artifact has "
                                f"{sorted(engines) or 'none'}. Rebuild with build.gpu_archs "
                                f"including '{here}'")
        entry = engines[key]
        if entry.get("tensorrt_version") != trt.__version__:
            raise ArtifactError(f"{artifact_dir}: engine {key} was built with TensorRT "
                                f"{entry.get('tensorrt_version')}, this machine has "
                                f"{trt.__version__}; rebuild the artifact or install that version")
        path = artifact_dir / entry.get("engine_path", f"{ENGINES_DIR}/{key}.engine")
        if not path.is_file():
            raise ArtifactError(f"{artifact_dir}: engine file {path.name} is missing")

        self.device = torch.device("cuda", torch.cuda.current_device())
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        load_plugin_library(trt, self._runtime.get_plugin_registry(),
                            artifact_dir / "plugins" / PLUGIN_LIB_NAME)
        self._engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            raise ArtifactError(f"{path}: TensorRT could not deserialize the engine")
        self._profiles = [_profile_ranges(self._engine, i)
                          for i in range(self._engine.num_optimization_profiles)]
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._inputs = [n for n in names
                        if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._scratch = torch.empty(self._engine.device_memory_size_v2, dtype=torch.uint8,
                                    device=self.device)
        self._contexts: dict[int, object] = {}

    def _context(self, index: int, stream: int):
        ctx = self._contexts.get(index)
        if ctx is None:
            ctx = self._engine.create_execution_context(
                self._trt.ExecutionContextAllocationStrategy.USER_MANAGED)
            ctx.set_optimization_profile_async(index, stream)
            self._contexts[index] = ctx
        ctx.set_device_memory(self._scratch.data_ptr(),
                              self._engine.get_device_memory_size_for_profile_v2(index))
        return ctx

    def execute(self, inputs: Mapping[str, "torch.Tensor"]) -> "torch.Tensor":
        import torch

        missing = [n for n in self._inputs if n not in inputs]
        if missing:
            raise RequestError(f"engine inputs missing: {missing}")
        tokens = int(inputs[io.INPUT_IDS].shape[0])
        seqs = int(inputs[io.SEQ_LENS].shape[0])
        index = next((i for i, (t, s) in enumerate(self._profiles) if tokens in t and seqs in s), None)
        if index is None:
            raise RequestError(f"a step of {tokens} tokens over {seqs} sequences fits no "
                               f"optimization profile of this engine (T, S ranges: "
                               f"{[(str(t), str(s)) for t, s in self._profiles]})")
        stream = torch.cuda.current_stream(self.device).cuda_stream
        ctx = self._context(index, stream)
        for name in self._inputs:
            t = inputs[name]
            if t.device != self.device or not t.is_contiguous():
                raise RequestError(f"input {name} must be a contiguous tensor on {self.device}")
            ctx.set_input_shape(name, tuple(t.shape))
            ctx.set_tensor_address(name, t.data_ptr())
        logits = torch.empty(tuple(ctx.get_tensor_shape(io.LOGITS)), dtype=torch.float32,
                             device=self.device)
        ctx.set_tensor_address(io.LOGITS, logits.data_ptr())
        if not ctx.execute_async_v3(stream):
            raise RuntimeError("TensorRT execute_async_v3 failed; see the TensorRT log above")
        return logits


def _profile_ranges(engine, index: int) -> tuple[range, range]:
    """(T range, S range) of one optimization profile, read back from the engine."""
    t_min, _, t_max = engine.get_tensor_profile_shape(io.INPUT_IDS, index)
    s_min, _, s_max = engine.get_tensor_profile_shape(io.SEQ_LENS, index)
    return range(t_min[0], t_max[0] + 1), range(s_min[0], s_max[0] + 1)
