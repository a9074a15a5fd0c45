// C ABI of the trtcompile CUDA kernels: plain pointers, an explicit stream, no TensorRT or
// torch types. Called by the torch custom ops (through ctypes) and by the TensorRT adapters.
// Every launcher returns a cudaError_t value (0 = success).
#pragma once

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Version of this interface, bumped whenever a launcher's arguments or a struct here change:
// the Python bindings (trtcompile/ops/cuda_kernels.py ABI_VERSION) refuse a library built from
// other sources rather than pass it arguments it would read differently.
#define TRTC_ABI_VERSION 2
int trtc_abi_version(void);

typedef enum {
  TRTC_F32 = 0,
  TRTC_F16 = 1,
  TRTC_BF16 = 2,
  TRTC_FP8_E4M3 = 3,
  TRTC_INT8 = 4,
} trtc_dtype;

// Shapes and attributes of one PagedAttention call. Everything here is known from tensor
// shapes and node attributes alone (no device values), so a TensorRT enqueue can fill it.
typedef struct {
  int32_t num_tokens;          // T: rows of q/k/v/out
  int32_t num_seqs;            // S
  int32_t num_heads;           // Hq
  int32_t num_kv_heads;        // Hkv (Hq % Hkv == 0)
  int32_t head_dim;            // D: 64 or 128
  int32_t block_size;          // b: tokens per KV block
  int32_t max_blocks_per_seq;  // row length of block_tables
  int32_t num_blocks;          // N: blocks in the pool
  int32_t q_stride;            // elements between token rows of q
  int32_t k_stride;            // ... of k
  int32_t v_stride;            // ... of v
  int32_t rotary_dim;          // 0: no rotary; else rotate-half over the first rotary_dim dims
  int32_t sliding_window;      // 0: none
  float scale;                 // softmax scale
  float rotary_scaling;        // multiplier of cos and sin
  trtc_dtype dtype;            // q, k, v and out
  trtc_dtype kv_dtype;         // the pool
  // Optional (NULL: the workspace holds them, zeroed by an extra launch every call): split-K
  // counters, int32[num_seqs * num_heads], zero before the call and left zero by it. A caller
  // that keeps such a buffer across calls saves that launch (one-wave split decode). Calls that
  // share it must not run concurrently.
  int32_t* split_counters;
} trtc_paged_attention_params;

// Bytes of scratch memory trtc_paged_attention needs for these shapes (split-K partials).
size_t trtc_paged_attention_workspace_size(const trtc_paged_attention_params* p);

// kv_cache_layer: this layer's [2, N, b, Hkv, D] slice of the pool, updated in place.
// inv_freq: float32 [rotary_dim / 2] or NULL. kv_scales: float32 [2] (k, v) or NULL.
// out: [T, Hq * D], contiguous.
int trtc_paged_attention(const trtc_paged_attention_params* p, const void* q, const void* k,
                         const void* v, const int32_t* positions, const int32_t* query_start_loc,
                         const int32_t* seq_lens, const int32_t* block_tables,
                         const int32_t* slot_mapping, void* kv_cache_layer, const float* inv_freq,
                         const float* kv_scales, void* out, void* workspace, size_t workspace_size,
                         cudaStream_t stream);

// y = norm(x + residual) * weight; residual_out = x + residual. residual and residual_out
// may both be NULL (plain RMSNorm). Rows are contiguous, `hidden` elements each.
int trtc_rmsnorm(const void* x, const void* residual, const void* weight, void* y,
                 void* residual_out, int64_t rows, int32_t hidden, float epsilon,
                 trtc_dtype dtype, cudaStream_t stream);

// y[r, i] = silu(x[r, i]) * x[r, inter + i]; x is [rows, 2 * inter], y is [rows, inter].
int trtc_silu_mul(const void* x, void* y, int64_t rows, int32_t inter, trtc_dtype dtype,
                  cudaStream_t stream);

// RMSNorm and SiluMul followed by per-token quantization of their output (as
// trtc_quantize_per_token), without writing the output: q [rows, hidden | inter] codes
// (target TRTC_INT8 or TRTC_FP8_E4M3), scale float32 [rows] holding the scale rounded to
// dtype (the value trtc_quantize_per_token writes), same codes bit for bit. Rows must be
// 16-byte aligned, a multiple of 16 elements and at most 8192 16-byte vectors; other rows
// return cudaErrorNotSupported (run the two kernels instead).
int trtc_rmsnorm_quantize(const void* x, const void* residual, const void* weight, void* q,
                          float* scale, void* residual_out, int64_t rows, int32_t hidden,
                          float epsilon, trtc_dtype dtype, trtc_dtype target, cudaStream_t stream);
int trtc_silu_mul_quantize(const void* x, void* q, float* scale, int64_t rows, int32_t inter,
                           trtc_dtype dtype, trtc_dtype target, cudaStream_t stream);

// y[M, N] = x[M, K] @ dequant(qweight)^T, x and y fp16 or bf16 (dtype), y contiguous.
// bits 8: qweight int8 [N, K]; bits 4: uint8 [N, K/2], low nibble = even k. group_size 0:
// scales float32 [N] (one per output channel); else scales (and zeros, or NULL) float32
// [N, K/group_size] with w = (q - zero) * scale, int4 codes unsigned 0..15 with zeros and
// two's complement without. group_pairs: NULL, or the same groups pre-packed as pairs
// (scale, -zero * scale) in dtype, [N, K/group_size] (read instead of scales and zeros).
// K % 8 == 0, group_size % 16 == 0, x_stride % 8 == 0 (elements), 16-byte aligned pointers.
// M <= 32 runs a GEMV-style kernel (weights read once for all rows); larger M a tiled GEMM.
int trtc_weight_only_gemm(const void* x, int64_t x_stride, const void* qweight,
                          const float* scales, const float* zeros, const void* group_pairs,
                          void* y, int64_t m, int32_t n, int32_t k, int32_t bits,
                          int32_t group_size, trtc_dtype dtype, cudaStream_t stream);

// The same product on Hopper (sm_90a) for M > 32 (prefill), with the codes repacked by
// trtcompile/ops/quant_kernels.py repack_for_wgmma: packed uint8 [ceil(N/128)*8,
// ceil(K/64), 1024 (int8) | 512 (int4)]. tile_tokens: 64, 128, 256 or 0 (default: 64 up to
// 64 tokens, 128 up to 128 and up to 256 while two 128-token tiles per 128 channels fit 1.5
// blocks per SM, 128 for per-channel scales, else 256). k_splits: blocks that split K per tile (a
// cluster summing in distributed shared memory): 1, 2, 4, 8 or 0 (default: the most that keep
// the launch within 1.5 blocks per SM with at least 8 k-steps of 64 per block). Other operands
// as trtc_weight_only_gemm. trtc_weight_only_gemm_packed_supported(): 1 where the current
// device runs it (compute capability 9.0 and sm_90a code in this library), else 0.
int trtc_weight_only_gemm_packed_supported(void);
int trtc_weight_only_gemm_packed(const void* x, int64_t x_stride, const void* packed,
                                 const float* scales, const float* zeros, const void* group_pairs,
                                 void* y, int64_t m, int32_t n, int32_t k, int32_t bits,
                                 int32_t group_size, int32_t tile_tokens, int32_t k_splits,
                                 trtc_dtype dtype, cudaStream_t stream);

// Decode batches of int4 codes with power-of-two groups (group_size >= 32) on Hopper (sm_90a):
// y [m, n] = x [m, k] @ dequant(W)^T for m <= 32 and k % 64 == 0, on the tensor cores, with
// the codes repacked as for trtc_weight_only_gemm_packed and the groups as float32
// (scale, -zero * scale) pairs per 16-channel slab: slab_pairs [ceil(N/128)*8, K/group_size,
// 16, 2] (trtcompile/ops/quant_kernels.py slab_group_pairs). twos_complement: the codes are
// signed (no zeros). Other operands as trtc_weight_only_gemm. cudaErrorInvalidValue for anything
// else; trtc_weight_only_gemv_packed_supported(): 1 where the current device runs it.
int trtc_weight_only_gemv_packed_supported(void);
int trtc_weight_only_gemv_packed(const void* x, int64_t x_stride, const void* packed,
                                 const float* slab_pairs, int32_t twos_complement, void* y,
                                 int64_t m, int32_t n, int32_t k, int32_t group_size,
                                 trtc_dtype dtype, cudaStream_t stream);

// 1 where trtc_weight_only_gemm runs this product (m rows; pairs: group pairs given) by its
// Hopper GEMV fed by tensor copies (plugins/quant/weight_only_gemv_bulk.cu) on the current
// device, given 16-byte aligned operands: 17-32 tokens of int8 or 13-16 of int4 (17-32 per
// channel or in groups of 32), N at least 64 rows a SM, K a multiple of 512 (int4) or 256
// (int8), groups packed as pairs, a power of two from 32 to 128 (int4) or 16 to 64 (int8). 0
// where another of its kernels does.
int trtc_weight_only_gemv_bulk_fits(int64_t m, int32_t n, int32_t k, int32_t bits, int32_t group_size,
                                    int32_t pairs);

// FP8 W8A8 GEMM for decode batches (sm_90a): y [m, n] bf16 = (x * x_scale) (w * w_scale)^T
// for e4m3 codes x [m, k] (row stride x_stride bytes) and w [n, k] (rows of k bytes), float32
// x_scale [m] and w_scale [n]; m <= 256, k % 16 == 0, x_stride % 16 == 0, 16-byte aligned x,
// w, w_scale and y. The tensor cores' own accumulation (no float32 promotion along k).
// trtc_fp8_gemm_supported(): 1 where the current device runs it (compute capability 9.0 and
// sm_90a code in this library); elsewhere trtc_fp8_gemm returns cudaErrorNotSupported.
int trtc_fp8_gemm_supported(void);
int trtc_fp8_gemm(const void* x, int64_t x_stride, const void* w, const float* w_scale,
                  const float* x_scale, void* y, int64_t m, int32_t n, int32_t k, cudaStream_t stream);

// Per-token quantization of x [rows, k] (row stride x_stride elements; f32, f16 or bf16):
// q [rows, k] contiguous (target TRTC_INT8 or TRTC_FP8_E4M3), scale [rows] in x's dtype;
// scale = max|x| / (127 or 448), 1 for an all-zero row; x ~ q * scale.
int trtc_quantize_per_token(const void* x, int64_t x_stride, void* q, void* scale, int64_t rows,
                            int32_t k, trtc_dtype dtype, trtc_dtype target, cudaStream_t stream);
// The same, the scale written as float32 holding the value rounded to dtype (what the fused
// producers write; a W8A8 GEMM takes float32 scales).
int trtc_quantize_per_token_f32scale(const void* x, int64_t x_stride, void* q, float* scale,
                                     int64_t rows, int32_t k, trtc_dtype dtype, trtc_dtype target,
                                     cudaStream_t stream);

#ifdef __cplusplus
}
#endif
