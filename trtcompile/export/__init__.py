"""HF model -> ONNX with an explicit attention boundary (trtcompile::Attention)."""
