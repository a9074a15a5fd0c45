// Internal interface between the PagedAttention launcher and its kernels (not part of the ABI).
#pragma once

#include <climits>
#include <type_traits>

#include "../common/trtc_cuda.cuh"

namespace trtc {
namespace pa {

constexpr int kPrefillBlockM = 128;  // query rows per prefill tile
constexpr int kMaxSplits = 64;

// Everything the attention kernels read, resolved from the params and the workspace.
struct Args {
  const void* q;                // [T, q_stride] rows, head h at h * D; rotated on load when rot > 0
  int q_stride;                 // elements between token rows of q
  int rot;                      // rotary dims applied to q on load (0: q is final)
  const float* inv_freq;        // [rot / 2]
  float rotary_scaling;
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
  int32_t* split_done;          // [S, Hkv * head_chunks] finished splits (zeroed by kv_write)
  int num_tokens, num_seqs, num_heads, num_kv_heads, group;
  int log2_block, max_blocks, sliding_window;
  float scale_log2;             // softmax scale * log2(e)
  int nsplit;
  int max_decode_qlen;          // decode kernel handles sequences with 1..this many new tokens
  int head_chunks;              // CTAs per kv head in the decode kernel (group / GQ rounded up)
};

// Rotate-half of one q element in fp32 without fma contraction, rounded to T (the value the
// separate rotary pass would have stored). x: the element, y: its partner (e +- rot / 2).
template <typename T>
__device__ __forceinline__ float rotate_q(float x, float y, bool first_half, float pos,
                                          float inv_freq, float scaling) {
  float sn, cs;
  sincosf(pos * inv_freq, &sn, &cs);
  cs *= scaling;
  sn *= scaling;
  const float r = first_half ? __fadd_rn(__fmul_rn(x, cs), __fmul_rn(-y, sn))
                             : __fadd_rn(__fmul_rn(x, cs), __fmul_rn(y, sn));
  return to_float(from_float<T>(r));
}

// Decode kernel: one CTA per (kv head chunk, sequence, split); gq query heads per CTA. With
// nsplit > 1 the last split of each (sequence, head chunk) to finish merges the partials.
int launch_decode(const Args& a, trtc_dtype dtype, int head_dim, int gq, cudaStream_t stream);
// Resident decode CTAs per SM and keys per CTA iteration (for split planning).
int decode_ctas_per_sm(trtc_dtype dtype, int head_dim, int gq);
int decode_keys_per_iter(trtc_dtype dtype, int head_dim, int gq);
// Prefill kernel: tensor-core tiles of kPrefillBlockM query rows of sequences with >= 2 new
// tokens; fp16/bf16 only. tile_bound bounds the number of tiles from shapes alone.
int launch_prefill(const Args& a, trtc_dtype dtype, int head_dim, int tile_bound,
                   cudaStream_t stream);

}  // namespace pa
}  // namespace trtc
