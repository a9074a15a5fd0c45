"""Graph rewrite passes: one per file, each `(graph, ctx) -> PassReport`, run in order."""

# name -> module under trtcompile.passes defining a function of the same name (lazy import)
PASSES = (
    "insert_paged_attention",
    "fuse_rope",
    "fuse_rmsnorm",
    "fuse_qkv",
    "fuse_gate_up",
    "cast_to_dtype",
    "cleanup",
)

# Inserted by trtcompile.quant.modes.pipeline_for when quantization.mode asks for them.
QUANT_PASSES = ("quantize_weights", "quantize_gemms", "quantize_kv_cache")
