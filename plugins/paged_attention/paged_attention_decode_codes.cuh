// Quantized (fp8 / int8) KV codes into f16 mma operands for the tensor-core decode kernel:
// a landed stage widened into an f16 tile (widen_stage), or B fragments built in registers from
// the codes (code_pair*, direct_chunk). Integer operations only.
#pragma once

#include <type_traits>

#include "paged_attention.cuh"
#include "paged_attention_prefill.cuh"

namespace trtc {
namespace pa {

// What widen8 multiplies a code's value by: e4m3 bits moved into an f16 are the value / 256.
template <typename P> constexpr float kWiden = 1.f;
template <> constexpr float kWiden<fp8> = 1.f / 256.f;

// Two codes of a word -> an f16x2 of value * kWiden<P> (widened tiles and direct B fragments).
// Code bytes sit at bytes 1 and 3 of x (fp8; the other bytes are ignored) or 0 and 2 (int8).
template <typename P> __device__ __forceinline__ uint32_t code_pair(uint32_t x);
template <> __device__ __forceinline__ uint32_t code_pair<fp8>(uint32_t x) {
  return ((x & 0x7F007F00u) >> 1) | (x & 0x80008000u);
}
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
      h[i] = code_pair<fp8>(__byte_perm(w[i / 2], 0u, (i % 2) ? 0x3424u : 0x1404u));  // b << 8
    } else {
      const __half2 v = int8_pair_to_half2(w[i / 2], i % 2);
      h[i] = *reinterpret_cast<const uint32_t*>(&v);
    }
  }
  return make_uint4(h[0], h[1], h[2], h[3]);
}

// Bytes (0, 2) and (1, 3) of one word of a key row.
template <typename P> __device__ __forceinline__ uint32_t code_pair_even(uint32_t w) {
  return code_pair<P>(std::is_same<P, fp8>::value ? w << 8 : w);
}
template <typename P> __device__ __forceinline__ uint32_t code_pair_odd(uint32_t w) {
  return code_pair<P>(std::is_same<P, fp8>::value ? w : w >> 8);
}
// Byte I of word wa (low half) and of word wb (high half): two key rows, one column.
template <typename P, int I>
__device__ __forceinline__ uint32_t code_pair_rows(uint32_t wa, uint32_t wb) {
  constexpr uint32_t sel =
      std::is_same<P, fp8>::value ? (I << 4) | ((4 + I) << 12) : I | ((4 + I) << 8);
  return code_pair<P>(__byte_perm(wa, wb, sel));
}
// 16 bytes of row r of a direct stage (128 codes a row), chunk c (swizzled).
template <typename P>
__device__ __forceinline__ uint4 direct_chunk(const P* st, int r, int c) {
  return *reinterpret_cast<const uint4*>(st + r * 128 + ((c ^ (r & 7)) << 4));
}

// Widens the quantized K and V stage `st` (row-major codes) into the swizzled f16 tile `wide`
// (one warp): a lane takes 8 codes at a time, so the 8 lanes of a store phase write one
// 128-byte run of a row (no bank conflicts).
template <typename P, int D, int kTileKeys>
__device__ __forceinline__ void widen_stage(__half* wide, const P* st, int lane) {
  constexpr int UPR = D / 8, PER = kTileKeys * UPR;  // 8-code units per row, per K (or V) stage
  const prefill::Swizzled<D> swz;
#pragma unroll
  for (int i = 0; i < 2 * PER / 32; ++i) {
    const int u = lane + 32 * i, m = u / PER, r = (u - m * PER) / UPR, col = (u % UPR) * 8;
    const uint2 raw = *reinterpret_cast<const uint2*>(st + m * kTileKeys * D + r * D + col);
    *reinterpret_cast<uint4*>(wide + m * kTileKeys * D + swz(r, col)) = widen8<P>(raw);
  }
}

}  // namespace pa
}  // namespace trtc
