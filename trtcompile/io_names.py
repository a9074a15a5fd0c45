"""Names, dtypes and shapes of the engine I/O contract (DESIGN.md); defined here only."""

from __future__ import annotations

from dataclasses import dataclass

INPUT_IDS = "input_ids"              # int32 [T]
POSITIONS = "positions"              # int32 [T]
QUERY_START_LOC = "query_start_loc"  # int32 [S+1]
SEQ_LENS = "seq_lens"                # int32 [S]
BLOCK_TABLES = "block_tables"        # int32 [S, max_blocks]
SLOT_MAPPING = "slot_mapping"        # int32 [T]
KV_CACHE = "kv_cache"                # [L, 2, N, b, kv_heads, head_dim], updated in place
LOGITS = "logits"                    # float32 [S, vocab]

# Symbolic dimension names used in the ONNX graph and in optimization profiles.
DIM_TOKENS = "T"
DIM_SEQS = "S"
DIM_SEQS_PLUS_ONE = "S_plus_1"
DIM_MAX_BLOCKS = "max_blocks"
DIM_BLOCKS = "N"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str            # numpy-style name: "int32", "float32", "float16", "bfloat16", ...
    shape: tuple          # ints or symbolic dimension names

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


def engine_inputs(num_layers: int, kv_heads: int, head_dim: int, block_size: int,
                  kv_dtype: str) -> list[TensorSpec]:
    """The inputs every engine takes, in order."""
    return [
        TensorSpec(INPUT_IDS, "int32", (DIM_TOKENS,)),
        TensorSpec(POSITIONS, "int32", (DIM_TOKENS,)),
        TensorSpec(QUERY_START_LOC, "int32", (DIM_SEQS_PLUS_ONE,)),
        TensorSpec(SEQ_LENS, "int32", (DIM_SEQS,)),
        TensorSpec(BLOCK_TABLES, "int32", (DIM_SEQS, DIM_MAX_BLOCKS)),
        TensorSpec(SLOT_MAPPING, "int32", (DIM_TOKENS,)),
        TensorSpec(KV_CACHE, kv_dtype, (num_layers, 2, DIM_BLOCKS, block_size, kv_heads, head_dim)),
    ]


def engine_outputs(vocab_size: int) -> list[TensorSpec]:
    return [TensorSpec(LOGITS, "float32", (DIM_SEQS, vocab_size))]
