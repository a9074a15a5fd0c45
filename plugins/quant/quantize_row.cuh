// Per-token quantization of a row held in registers, shared by the quantize kernel and the
// fused RMSNorm / SiluMul epilogues: scale = max|x| / qmax (1 for an all-zero row),
// q = round(x / scale) clamped to +-127 (int8) or x / scale clamped to +-448 -> e4m3 (fp8).
#pragma once

#include <cuda_fp8.h>

#include <type_traits>

#include "../common/trtc_cuda.cuh"

namespace trtc {

template <bool kFp8> struct QuantCode;
template <> struct QuantCode<false> {
  using type = int8_t;
  static constexpr float kMax = 127.f;
  __device__ static int8_t make(float y) { return static_cast<int8_t>(fminf(fmaxf(rintf(y), -127.f), 127.f)); }
};
template <> struct QuantCode<true> {
  using type = __nv_fp8_storage_t;
  static constexpr float kMax = 448.f;
  // the clamp to +-448: satfinite below +448 and above, fmaxf maps NaN to -448
  __device__ static float clamp(float y) { return fmaxf(y, -448.f); }
  __device__ static __nv_fp8_storage_t make(float y) {
    return __nv_cvt_float_to_fp8(clamp(y), __NV_SATFINITE, __NV_E4M3);
  }
  // two codes, a in the low byte
  __device__ static __nv_fp8x2_storage_t make2(float a, float b) {
    return __nv_cvt_float2_to_fp8x2(make_float2(clamp(a), clamp(b)), __NV_SATFINITE, __NV_E4M3);
  }
};

template <bool kFp8>
__device__ __forceinline__ float quant_scale(float amax) {
  return amax > 0.f ? __fdiv_rn(amax, QuantCode<kFp8>::kMax) : 1.f;
}

// x / s rounded to nearest, the bits of __fdiv_rn(x, s), for many x and one s > 0 without a
// division each: y = RN(1/s) once, then q0 = RN(x y) and two FMA corrections q += (x - s q) y
// (the first leaves q within an ulp of x / s, the second, Markstein's, rounds it correctly).
// The residuals are exact while s is in [2^-80, 2^80] (no underflow, as |x| <= 448 s); other s
// (and inf / NaN) divide. |x| and copysign: x = -0 gives -0, as the division does.
// Callers branch once on the path: dispatch(f) calls f(std::true_type{}) on the reciprocal path.
class Divider {
 public:
  __device__ explicit Divider(float s) {
    s_ = s;
    y_ = __frcp_rn(s);
    fast_ = s >= 0x1p-80f && s <= 0x1p80f;
  }
  template <typename F>
  __device__ __forceinline__ void dispatch(F&& f) const {
    if (fast_) f(std::true_type{});
    else f(std::false_type{});
  }
  template <bool kFast>
  __device__ __forceinline__ float operator()(float x, std::integral_constant<bool, kFast>) const {
    if constexpr (!kFast) {
      return __fdiv_rn(x, s_);
    } else {
      const float a = fabsf(x);
      float q = __fmul_rn(a, y_);
      q = __fmaf_rn(__fmaf_rn(-s_, q, a), y_, q);
      q = __fmaf_rn(__fmaf_rn(-s_, q, a), y_, q);
      return copysignf(q, x);
    }
  }

 private:
  float s_, y_;
  bool fast_;
};

// N codes of one 16-byte vector of T, stored in one access (N bytes); `path` from
// Divider::dispatch.
template <bool kFp8, int N, typename Path>
__device__ __forceinline__ void store_codes(typename QuantCode<kFp8>::type* dst, const float (&f)[N],
                                            const Divider& div, Path path) {
  using C = QuantCode<kFp8>;
  alignas(16) typename C::type out[N];
  if constexpr (kFp8 && N % 2 == 0) {
#pragma unroll
    for (int i = 0; i < N / 2; ++i)
      reinterpret_cast<__nv_fp8x2_storage_t*>(out)[i] =
          C::make2(div(f[2 * i], path), div(f[2 * i + 1], path));
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) out[i] = C::make(div(f[i], path));
  }
  if constexpr (N == 16) *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(out);
  else if constexpr (N == 8) *reinterpret_cast<uint2*>(dst) = *reinterpret_cast<const uint2*>(out);
  else if constexpr (N == 4) *reinterpret_cast<uint32_t*>(dst) = *reinterpret_cast<const uint32_t*>(out);
  else {
#pragma unroll
    for (int i = 0; i < N; ++i) dst[i] = out[i];
  }
}

// The row's vectors h[j] (vector index threadIdx.x + j * blockDim.x, valid below nvec) are
// rounded to T first, so the codes and scale are those of quantizing the T row a plain kernel
// would have written. Writes q_row and *scale_out = float(T(scale)) (the scale the graph
// carries in the model dtype, widened for the GEMM). Every thread of the block must call it.
template <typename T, bool kFp8, int NV, int N>
__device__ __forceinline__ void quantize_row_regs(float (&h)[NV][N], int nvec,
                                                  typename QuantCode<kFp8>::type* q_row,
                                                  float* scale_out, float* scratch) {
  float amax = 0.f;
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    if (static_cast<int>(threadIdx.x) + j * static_cast<int>(blockDim.x) < nvec) {
#pragma unroll
      for (int i = 0; i < N; ++i) {
        h[j][i] = to_float(from_float<T>(h[j][i]));
        amax = fmaxf(amax, fabsf(h[j][i]));
      }
    }
  }
  const float scale = quant_scale<kFp8>(block_max(amax, scratch));
  if (threadIdx.x == 0) *scale_out = to_float(from_float<T>(scale));
  const Divider div(scale);
  div.dispatch([&](auto path) {
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      const int v = threadIdx.x + j * blockDim.x;
      if (v < nvec) store_codes<kFp8, N>(q_row + v * N, h[j], div, path);
    }
  });
}

}  // namespace trtc
