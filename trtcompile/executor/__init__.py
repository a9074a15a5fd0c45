"""Run an ONNX graph of this project with PyTorch (the torch backend's core)."""

from trtcompile.executor.graph_runner import OnnxExecutor

__all__ = ["OnnxExecutor"]
