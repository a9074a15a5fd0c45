// Internal interface between the PagedAttention launcher and its kernels (not part of the ABI).
#pragma once

#include <climits>
#include <type_traits>

#include <cuda.h>
#include <cuda_fp8.h>

#include "../common/trtc_cuda.cuh"

namespace trtc {
namespace pa {

constexpr int kPrefillBlockM = 128;  // query rows per tile of the quantized-pool prefill kernel
constexpr int kMaxSplits = 64;

// Everything the attention kernels read, resolved from the params and the workspace.
struct Args {
  const void* q;                // [T, q_stride] rows, head h at h * D; rotated on load when rot > 0
  int q_from_write;             // q is kv_write's copy in the workspace (wait for it)
  int q_stride;                 // elements between token rows of q
  int rot;                      // rotary dims applied to q on load (0: q is final)
  const float* inv_freq;        // [rot / 2]
  const float2* rot_cs;         // [T, rot / 2] (cos, sin) * scaling per token (kv_write), or null
  float rotary_scaling;
  const void* k_pool;           // [N, b, Hkv, D] of this layer
  const void* v_pool;
  int64_t pool_slots;           // N * b
  const float* kv_scales;       // [2] (k, v) of this layer for a quantized pool, else null
  const int32_t* positions;     // [T]
  const int32_t* qsl;           // [S + 1]
  const int32_t* seq_lens;      // [S]
  const int32_t* block_tables;  // [S, max_blocks]
  const int32_t* tile_cum;      // [S + 1] prefix sums of prefill tiles per sequence
  void* out;                    // [T, Hq, D]
  float* part_o;                // [S, Hq, nsplit, D] split-K partial outputs (normalized)
  float* part_ml;               // [S, Hq, nsplit, 2] their max (log2 units) and sum
  int32_t* split_done;          // [S, Hkv * head_chunks] finished splits: zero at the start
                                // (kv_write zeroes the workspace's; a caller's buffer comes
                                // zeroed), left zero by the split that merges
  int num_tokens, num_seqs, num_heads, num_kv_heads, group;
  int log2_block, max_blocks, sliding_window;
  float scale_log2;             // softmax scale * log2(e)
  int nsplit;
  int max_decode_qlen;          // decode kernel handles sequences with 1..this many new tokens
  int head_chunks;              // CTAs per kv head in the decode kernel (group / GQ rounded up)
  // Fused decode (the tensor-core kernel's fused instantiation; one new token per sequence:
  // token s): the split holding key n - 1 rotates the step's k, stores k/v to the pool at
  // slot_mapping and attends to them from shared memory; kv_write stores nothing.
  int fused;
  const void* k_new;            // [T, k_stride] rows of k, head h at h * D (not rotated)
  const void* v_new;            // [T, v_stride]
  int k_stride, v_stride;
  const int32_t* slot_mapping;  // [T]
  // The decode kernel runs after the prefill kernel (a batch with prefill rows): kv_write
  // finished before the prefill kernel started, so decode CTAs do not wait for the kernel
  // before them (see wait_before_exit).
  int write_done;
};

// Programmatic dependent launch (sm_90+). The decode kernel is launched while kv_write still
// runs (or, in a batch with prefill rows, while the prefill kernel's last CTAs run): it reads
// what kv_write does not write (q rows, block tables, the cached keys) first and waits only
// before what kv_write does write (new keys, split counters, a workspace copy of q).
// wait_for_write_if: where `cond` holds, returns once the preceding kernel has finished and its
// writes are visible (at once without such a launch); a predicated instruction, not a branch
// (a branch around the wait costs the decode kernel ~30 registers). allow_next_kernel
// (trtc_cuda.cuh): lets the launch after this kernel begin.
__device__ __forceinline__ void wait_for_write_if(bool cond) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %0, 0;\n@p griddepcontrol.wait;\n}\n"
               ::"r"(static_cast<int>(cond)) : "memory");
#endif
}
// The decode kernel's wait for what the kernel before it writes: kv_write, unless that
// finished before the prefill kernel the decode kernel follows (a.write_done).
__device__ __forceinline__ void wait_for_write_if(const Args& a, bool cond) {
  wait_for_write_if(cond && !a.write_done);
}
// Before a decode CTA exits. After kv_write every CTA waits, so that the kernels after the
// decode grid see kv_write done. After the prefill kernel, which lets the decode grid start
// while its last CTAs run, CTA 0 alone waits: the decode grid then ends after the prefill grid,
// and the other CTAs leave their SMs to the prefill tail at once.
__device__ __forceinline__ void wait_before_exit(const Args& a) {
  wait_for_write_if(!a.write_done || (blockIdx.x | blockIdx.y | blockIdx.z) == 0);
}

// Pool element types: the activation type T, or a quantized one (stored = sat(round(x / s))).
using fp8 = __nv_fp8_e4m3;
template <typename P>
constexpr bool kQuantPool = std::is_same<P, fp8>::value || std::is_same<P, int8_t>::value;

template <typename P> __device__ __forceinline__ P quantize(float x);  // x already divided by s
template <> __device__ __forceinline__ fp8 quantize<fp8>(float x) {
  fp8 r;
  r.__x = __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3);
  return r;
}
template <> __device__ __forceinline__ int8_t quantize<int8_t>(float x) {
  return static_cast<int8_t>(fminf(fmaxf(rintf(x), -127.f), 127.f));
}

// Pool value of x: rounded to T, then (quantized pool) divided by the scale and quantized (what
// kv_write stores, and the fused decode kernel for the step's key).
template <typename T, typename P>
__device__ __forceinline__ P to_pool(float x, float scale) {
  if constexpr (kQuantPool<P>) {
    return quantize<P>(__fdiv_rn(to_float(from_float<T>(x)), scale));
  } else {
    return from_float<T>(x);
  }
}

// The value a quantized pool's code stands for, unscaled (exact).
template <typename P>
__device__ __forceinline__ float code_value(P c) {
  return static_cast<float>(c);
}

// 16 bytes of pool elements -> N floats (unscaled; exact).
template <typename P>
struct PoolVec {
  static constexpr int N = 16 / sizeof(P);
  __device__ __forceinline__ static void to_floats(const uint4& raw, float (&f)[N]) {
    Vec16<P> v;
    v.raw = raw;
    v.to_floats(f);
  }
};
template <>
struct PoolVec<fp8> {
  static constexpr int N = 16;
  __device__ __forceinline__ static void to_floats(const uint4& raw, float (&f)[N]) {
    const __nv_fp8x2_storage_t* p = reinterpret_cast<const __nv_fp8x2_storage_t*>(&raw);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(p[i], __NV_E4M3);
      const float2 x = __half22float2(*reinterpret_cast<const __half2*>(&h));
      f[2 * i] = x.x;
      f[2 * i + 1] = x.y;
    }
  }
};
template <>
struct PoolVec<int8_t> {
  static constexpr int N = 16;
  // Byte b (sign bit flipped: b + 128) placed in the mantissa of 2^23: the float 2^23 + b + 128.
  __device__ __forceinline__ static void to_floats(const uint4& raw, float (&f)[N]) {
    const uint32_t w[4] = {raw.x ^ 0x80808080u, raw.y ^ 0x80808080u, raw.z ^ 0x80808080u,
                           raw.w ^ 0x80808080u};
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t bits = __byte_perm(w[i / 4], 0x4B000000u, 0x7540u | (i % 4));
      f[i] = __uint_as_float(bits) - 8388736.f;  // 2^23 + 128
    }
  }
};

// 16 bytes of a quantized pool -> 8 packed f16x2 (exact: E4M3 and |int8| <= 127 fit f16).
template <typename P> __device__ __forceinline__ void to_half2(const uint4& raw, __half2 (&h)[8]);
template <> __device__ __forceinline__ void to_half2<fp8>(const uint4& raw, __half2 (&h)[8]) {
  const __nv_fp8x2_storage_t* p = reinterpret_cast<const __nv_fp8x2_storage_t*>(&raw);
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const __half2_raw r = __nv_cvt_fp8x2_to_halfraw2(p[i], __NV_E4M3);
    h[i] = *reinterpret_cast<const __half2*>(&r);
  }
}
// int8 codes 2 hi and 2 hi + 1 of the word w -> exact f16x2: byte b + 128 in the mantissa of
// f16 1024 is the half 1152 + b.
__device__ __forceinline__ __half2 int8_pair_to_half2(uint32_t w, int hi) {
  const uint32_t bits = __byte_perm(w ^ 0x80808080u, 0x64646464u, hi ? 0x5342u : 0x5140u);
  return __hsub2(*reinterpret_cast<const __half2*>(&bits), __floats2half2_rn(1152.f, 1152.f));
}
template <> __device__ __forceinline__ void to_half2<int8_t>(const uint4& raw, __half2 (&h)[8]) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 8; ++i) h[i] = int8_pair_to_half2(w[i / 2], i % 2);
}

// Scale of the pool's k (which = 0) or v (1); 1 for an unquantized pool.
__device__ __forceinline__ float pool_scale(const float* kv_scales, int which) {
  return kv_scales != nullptr ? __ldg(kv_scales + which) : 1.f;
}

// Calls f(T{}, P{}) for activation type `dtype` and pool type `kv_dtype` (the same, fp8 or
// int8); cudaErrorNotSupported for other pairs.
template <typename F>
inline int dispatch_pool(trtc_dtype dtype, trtc_dtype kv_dtype, F&& f) {
  return dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (kv_dtype == dtype) return f(T{}, T{});
    if (kv_dtype == TRTC_FP8_E4M3) return f(T{}, fp8{});
    if (kv_dtype == TRTC_INT8) return f(T{}, int8_t{});
    return static_cast<int>(cudaErrorNotSupported);
  });
}

// Rotary factors (cos, sin) * scaling of angle pos * inv_freq, as every rotation here uses them.
__device__ __forceinline__ float2 rotary_cs(float pos, float inv_freq, float scaling) {
  float sn, cs;
  sincosf(pos * inv_freq, &sn, &cs);
  return make_float2(cs * scaling, sn * scaling);
}

// Rotate-half of one q element in fp32 without fma contraction, rounded to T (the value the
// separate rotary pass would have stored). x: the element, y: its partner (e +- rot / 2).
// cs, sn = cos, sin(pos * inv_freq) * scaling.
template <typename T>
__device__ __forceinline__ float rotate_q_cs(float x, float y, bool first_half, float cs, float sn) {
  const float r = first_half ? __fadd_rn(__fmul_rn(x, cs), __fmul_rn(-y, sn))
                             : __fadd_rn(__fmul_rn(x, cs), __fmul_rn(y, sn));
  return to_float(from_float<T>(r));
}

// Decode kernel: one CTA per (kv head chunk, sequence, split); gq query heads per CTA. With
// nsplit > 1 the last split of each (sequence, head chunk) to finish merges the partials.
// Kinds: CUDA cores, lean or with the rotary angles hoisted (fewer instructions, more
// registers on 16-bit pools: for grids that fit one wave anyway); tensor cores (kMma: pools of
// the activation type, fp8 or int8, gq 4 or 8; decode_mma_fn says where it exists), kMmaWide:
// the same with 8 warps, one CTA per SM (half the prologue and merge work a thread: for grids
// that fit one wave); kMmaShallow: 4 warps with rings of two stages, three CTAs per SM (16-bit
// pools, not fused: for grids of many waves of short key ranges, head_dim 128).
// overlap: launched as a programmatic dependent of the kernel before it (kv_write; sm_90+).
enum class DecodeKind { kLean, kHoist, kMma, kMmaWide, kMmaShallow };
inline bool mma_kind(DecodeKind k) {
  return k == DecodeKind::kMma || k == DecodeKind::kMmaWide || k == DecodeKind::kMmaShallow;
}
int launch_decode(const Args& a, trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim, int gq,
                  DecodeKind kind, bool overlap, cudaStream_t stream);
// Resident decode CTAs per SM (fused: of the kind's fused kernel), keys per CTA iteration and
// dynamic shared memory per CTA (its copy ring, the bytes it keeps in flight; the quantized
// pools' 8-warp kernel asks for more, to be alone on its SM), for split planning.
int decode_ctas_per_sm(trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim, int gq,
                       DecodeKind kind, bool fused = false);
int decode_smem_bytes(trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim, int gq, DecodeKind kind);
int decode_keys_per_iter(trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim, int gq,
                         DecodeKind kind);
// Whether the kernel of this kind has a fused mode (Args::fused).
bool decode_fusable(trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim, int gq, DecodeKind kind);
bool decode_mma_exists(trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim, int gq);
// Prefill kernels: tensor-core tiles of query rows of sequences with >= 2 new tokens;
// fp16/bf16 only. prefill_tile_rows: rows per tile of the kernel launch_prefill picks (tile_cum
// is planned with it); tile_bound bounds the number of tiles from shapes alone.
// span: the keys a block table row spans (max_blocks * block_size), the kernel's hint of the
// context lengths.
int prefill_tile_rows(trtc_dtype dtype, trtc_dtype kv_dtype, float scale, int head_dim, long span);
int launch_prefill(const Args& a, trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim,
                   int tile_bound, cudaStream_t stream);
// Tensor maps of the K and V pools (a.k_pool, a.v_pool: [pool_slots, Hkv, head_dim] of
// kv_dtype) for tensor copies of boxes of box_rows slots of one kv head, in the 128-byte swizzle:
// made once per pool and kept. Each box holds 128 bytes of each slot's row (3D maps: coordinates
// column, kv head, slot), or with whole_rows its whole row as 128-byte lines (4D maps:
// coordinates 0, 0, kv head, slot; line r * (row bytes / 128) + h holds slot r's h-th 128
// bytes). False where the driver offers no encoder or refuses the map.
bool pool_tensor_maps(const Args& a, int head_dim, trtc_dtype kv_dtype, int box_rows, bool whole_rows,
                      CUtensorMap& tmk, CUtensorMap& tmv);

}  // namespace pa
}  // namespace trtc
