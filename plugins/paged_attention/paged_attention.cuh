// Internal interface between the PagedAttention launcher and its kernels (not part of the ABI).
#pragma once

#include <climits>
#include <type_traits>

#include "../common/trtc_cuda.cuh"

namespace trtc {
namespace pa {

constexpr int kPrefillBlockM = 64;  // query rows per prefill tile
constexpr int kMaxSplits = 64;

// Everything the attention kernels read, resolved from the params and the workspace.
struct Args {
  const void* qbuf;             // [T, Hq, D] q after rotary (workspace), model dtype
  const void* k_pool;           // [N, b, Hkv, D] of this layer
  const void* v_pool;
  const int32_t* positions;     // [T]
  const int32_t* qsl;           // [S + 1]
  const int32_t* seq_lens;      // [S]
  const int32_t* block_tables;  // [S, max_blocks]
  const int32_t* tile_cum;      // [S + 1] prefix sums of prefill tiles per sequence
  void* out;                    // [T, Hq, D]
  float* part_o;                // [S, Hq, nsplit, D] split-K partial outputs (normalized)
  float* part_ml;               // [S, Hq, nsplit, 2] their max (log2 units) and sum
  int num_tokens, num_seqs, num_heads, num_kv_heads, group;
  int log2_block, max_blocks, sliding_window;
  float scale_log2;             // softmax scale * log2(e)
  int nsplit;
  int max_decode_qlen;          // decode kernel handles sequences with 1..this many new tokens
  int head_chunks;              // CTAs per kv head in the decode kernel (group / GQ rounded up)
};

// Decode kernel: one CTA per (kv head chunk, sequence, split); gq query heads per CTA.
int launch_decode(const Args& a, trtc_dtype dtype, int head_dim, int gq, cudaStream_t stream);
// Resident decode CTAs per SM and keys per CTA iteration (for split planning).
int decode_ctas_per_sm(trtc_dtype dtype, int head_dim, int gq);
int decode_keys_per_iter(trtc_dtype dtype, int head_dim, int gq);
// Merges split-K partials into out (only when nsplit > 1).
int launch_split_reduce(const Args& a, trtc_dtype dtype, int head_dim, cudaStream_t stream);
// Prefill kernel: tensor-core tiles of kPrefillBlockM query rows of sequences with >= 2 new
// tokens; fp16/bf16 only. tile_bound bounds the number of tiles from shapes alone.
int launch_prefill(const Args& a, trtc_dtype dtype, int head_dim, int tile_bound,
                   cudaStream_t stream);

}  // namespace pa
}  // namespace trtc
