// Per-token quantization of a row held in registers, shared by the quantize kernel and the
// fused RMSNorm / SiluMul epilogues: scale = max|x| / qmax (1 for an all-zero row),
// q = round(x / scale) clamped to +-127 (int8) or x / scale clamped to +-448 -> e4m3 (fp8).
#pragma once

#include <cuda_fp8.h>

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
  __device__ static __nv_fp8_storage_t make(float y) {
    return __nv_cvt_float_to_fp8(fminf(fmaxf(y, -448.f), 448.f), __NV_SATFINITE, __NV_E4M3);
  }
};

template <bool kFp8>
__device__ __forceinline__ float quant_scale(float amax) {
  return amax > 0.f ? __fdiv_rn(amax, QuantCode<kFp8>::kMax) : 1.f;
}

// N codes of one 16-byte vector of T, stored in one access (N bytes).
template <bool kFp8, int N>
__device__ __forceinline__ void store_codes(typename QuantCode<kFp8>::type* dst, const float (&f)[N],
                                            float scale) {
  typename QuantCode<kFp8>::type out[N];
#pragma unroll
  for (int i = 0; i < N; ++i) out[i] = QuantCode<kFp8>::make(__fdiv_rn(f[i], scale));
  if constexpr (N == 8) *reinterpret_cast<uint2*>(dst) = *reinterpret_cast<const uint2*>(out);
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
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    const int v = threadIdx.x + j * blockDim.x;
    if (v < nvec) store_codes<kFp8, N>(q_row + v * N, h[j], scale);
  }
}

}  // namespace trtc
