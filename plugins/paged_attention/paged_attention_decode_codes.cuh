// Quantized (fp8 / int8) KV codes into f16 mma operands for the tensor-core decode kernel:
// a landed stage widened into an f16 tile (widen_stage), or B fragments built in registers from
// the codes (code_pair*, direct_chunk). Integer operations only. Shared with the prefill
// kernels (widen_stage, q_fragments_to_f16).
#pragma once

#include <type_traits>

#include "paged_attention.cuh"
#include "paged_attention_prefill.cuh"

namespace trtc {
namespace pa {

// What widen8 multiplies a code's value by: e4m3 bits moved into an f16 are the value / 256.
template <typename P> constexpr float kWiden = 1.f;
template <> constexpr float kWiden<fp8> = 1.f / 256.f;

// x times what a widened code of the layer's k (which = 0) or v (1) is multiplied by to give
// the value it stands for: the pool's scale / kWiden (a power of two: exact).
template <typename P>
__device__ __forceinline__ float times_widened_scale(float x, const float* kv_scales, int which) {
  return x * pool_scale(kv_scales, which) / kWiden<P>;
}

// 2^k with m / 2^k in [2^14, 2^15) (1 for m == 0): q / 2^k is an f16 without overflow.
__device__ __forceinline__ float f16_range_factor(float m) {
  const int e = static_cast<int>(__float_as_uint(m) >> 23);  // m >= 0
  return m > 0.f ? __uint_as_float(static_cast<uint32_t>(max(e - 14, 1)) << 23) : 1.f;
}

// q held as mma A fragments of T (registers 0, 2: row r0; 1, 3: row r0 + 8, the rows spread
// over a quad's lanes) turned into f16 fragments, each row divided by f16_range_factor of its
// largest magnitude (exact). Returns the softmax scale of rows r0, r0 + 8: scale times the
// row's factor (prefill over a quantized pool).
template <typename T, int D>
__device__ __forceinline__ float2 q_fragments_to_f16(uint32_t (&qa)[D / 16][4], float scale) {
  float m0 = 0.f, m1 = 0.f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 v = prefill::unpack2<T>(qa[kk][i]);
      const float m = fmaxf(fabsf(v.x), fabsf(v.y));
      if (i & 1)
        m1 = fmaxf(m1, m);
      else
        m0 = fmaxf(m0, m);
    }
  const float f0 = f16_range_factor(prefill::quad_max(m0)), f1 = f16_range_factor(prefill::quad_max(m1));
  const float i0 = 1.f / f0, i1 = 1.f / f1;  // powers of two: exact
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 v = prefill::unpack2<T>(qa[kk][i]);
      const float inv = (i & 1) ? i1 : i0;
      qa[kk][i] = prefill::pack2<__half>(v.x * inv, v.y * inv);
    }
  return make_float2(scale * f0, scale * f1);
}

// fp8 codes at bytes I (low half) and J (high half) of {y, x} (bytes 0..3 of x, 4..7 of y) -> an
// f16x2 of value * kWiden<fp8>: prmt puts each byte beside its sign replicated over a byte
// ([b, sign(b)] in each half), so that shifted by 7 the code's low 7 bits land on the f16's bits
// 7..13 and its sign on bit 15; the mask clears bit 14 and the bits shifted in from the other half.
template <int I, int J>
__device__ __forceinline__ uint32_t fp8_pair(uint32_t x, uint32_t y) {
  constexpr uint32_t sel = I | ((8 | I) << 4) | (J << 8) | ((8 | J) << 12);
  uint32_t t;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(t) : "r"(x), "r"(y), "n"(sel));
  return (t << 7) & 0xBF80BF80u;
}

// Two int8 codes of a word, bytes 0 and 2 (the others are ignored) -> an f16x2 of their values
// (kWiden<int8_t> = 1).
template <typename P> __device__ __forceinline__ uint32_t code_pair(uint32_t x);
template <> __device__ __forceinline__ uint32_t code_pair<int8_t>(uint32_t x) {
  uint32_t h;  // 0x64 above (byte ^ 0x80): the f16 1024 + 128 + code, one logic op
  asm("lop3.b32 %0, %1, 0x00FF00FF, 0x64806480, 0x6A;" : "=r"(h) : "r"(x));  // c ? x ^ b : b
  const __half2 v =
      __hsub2(*reinterpret_cast<const __half2*>(&h), __floats2half2_rn(1152.f, 1152.f));
  return *reinterpret_cast<const uint32_t*>(&v);
}

// 8 codes -> 4 f16x2 holding value * kWiden<P>. E4M3 s.eeee.mmm becomes the f16
// s.0eeee.mmm0000000 (the same bits, exponent bias 7 -> 15: value / 2^8, subnormals included).
template <typename P>
__device__ __forceinline__ uint4 widen8(uint2 raw) {
  const uint32_t w[2] = {raw.x, raw.y};
  uint32_t h[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (std::is_same<P, fp8>::value) {
      h[i] = i % 2 ? fp8_pair<2, 3>(w[i / 2], w[i / 2]) : fp8_pair<0, 1>(w[i / 2], w[i / 2]);
    } else {
      const __half2 v = int8_pair_to_half2(w[i / 2], i % 2);
      h[i] = *reinterpret_cast<const uint32_t*>(&v);
    }
  }
  return make_uint4(h[0], h[1], h[2], h[3]);
}

// Bytes (0, 2) and (1, 3) of one word of a key row.
template <typename P> __device__ __forceinline__ uint32_t code_pair_even(uint32_t w) {
  if constexpr (std::is_same<P, fp8>::value) return fp8_pair<0, 2>(w, w);
  else return code_pair<P>(w);
}
template <typename P> __device__ __forceinline__ uint32_t code_pair_odd(uint32_t w) {
  if constexpr (std::is_same<P, fp8>::value) return fp8_pair<1, 3>(w, w);
  else return code_pair<P>(w >> 8);
}
// Byte I of word wa (low half) and of word wb (high half): two key rows, one column.
template <typename P, int I>
__device__ __forceinline__ uint32_t code_pair_rows(uint32_t wa, uint32_t wb) {
  if constexpr (std::is_same<P, fp8>::value) return fp8_pair<I, 4 + I>(wa, wb);
  else return code_pair<P>(__byte_perm(wa, wb, I | ((4 + I) << 8)));
}
// 16 bytes of row r of a direct stage (128 codes a row), chunk c (swizzled).
template <typename P>
__device__ __forceinline__ uint4 direct_chunk(const P* st, int r, int c) {
  return *reinterpret_cast<const uint4*>(st + r * 128 + ((c ^ (r & 7)) << 4));
}

// Widens the quantized K and V stage `st` (row-major codes, K's kTileKeys rows then V's) into
// the f16 tile `wide` (K then V, each laid out by Off) by NT threads (one warp by default;
// tid < NT): a thread takes 8 codes at a time, so the 8 threads of a store phase write one
// 128-byte run of a row (no bank conflicts). PART: 2 widens K and V, 0 K only, 1 V only.
template <typename P, int D, int kTileKeys, int NT = 32, typename Off = prefill::Swizzled<D>, int PART = 2>
__device__ __forceinline__ void widen_stage(__half* wide, const P* st, int tid) {
  constexpr int UPR = D / 8, PER = kTileKeys * UPR;  // 8-code units per row, per K (or V) stage
  constexpr int M0 = PART == 1 ? 1 : 0, UNITS = (PART == 2 ? 2 : 1) * PER;
  static_assert(UNITS % NT == 0, "every thread widens as many units");
  // a warp's loop unrolled; a CTA's (prefill: 8 or 16 units a thread) by 4, which spares registers
  constexpr int kUnroll = NT == 32 ? UNITS / NT : 4;
  const Off swz{};  // where element (r, col) of the f16 K (or V) tile goes
#pragma unroll kUnroll
  for (int i = 0; i < UNITS / NT; ++i) {
    const int u = tid + NT * i, m = M0 + u / PER, r = (u - (m - M0) * PER) / UPR, col = (u % UPR) * 8;
    const uint2 raw = *reinterpret_cast<const uint2*>(st + m * kTileKeys * D + r * D + col);
    *reinterpret_cast<uint4*>(wide + m * kTileKeys * D + swz(r, col)) = widen8<P>(raw);
  }
}

}  // namespace pa
}  // namespace trtc
