"""The project's ONNX ops (domain `trtcompile`): specs, schemas, reference implementations."""
