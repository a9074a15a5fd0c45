// Dynamic per-token quantization: scale = max|x| / qmax per row (1 for an all-zero row),
// q = round(x / scale) clamped to +-127 (int8) or x / scale clamped to +-448 -> e4m3 (fp8).
// One block per row: an absmax pass, then a quantize pass (the second read hits L2).
#include <cuda_fp8.h>

#include "../common/trtc_cuda.cuh"

namespace trtc {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < kThreads / 32 ? scratch[lane] : 0.f;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

template <bool kFp8> struct Code;
template <> struct Code<false> {
  using type = int8_t;
  static constexpr float kMax = 127.f;
  __device__ static int8_t make(float y) { return static_cast<int8_t>(fminf(fmaxf(rintf(y), -127.f), 127.f)); }
};
template <> struct Code<true> {
  using type = __nv_fp8_storage_t;
  static constexpr float kMax = 448.f;
  __device__ static __nv_fp8_storage_t make(float y) {
    return __nv_cvt_float_to_fp8(fminf(fmaxf(y, -448.f), 448.f), __NV_SATFINITE, __NV_E4M3);
  }
};

// kVec: rows are read as 16-byte vectors (K % N == 0, aligned) and q written N bytes at a time.
template <typename T, bool kFp8, bool kVec>
__global__ void __launch_bounds__(kThreads) quantize_kernel(const T* __restrict__ x, int64_t x_stride,
                                                            typename Code<kFp8>::type* __restrict__ q,
                                                            T* __restrict__ scale_out, int k) {
  using C = Code<kFp8>;
  using V = Vec16<T>;
  constexpr int N = V::N;
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * x_stride;
  typename C::type* qr = q + row * k;

  float amax = 0.f;
  if constexpr (kVec) {
    for (int c = threadIdx.x * N; c < k; c += kThreads * N) {
      V v;
      v.load_nc(xr + c);
      float f[N];
      v.to_floats(f);
#pragma unroll
      for (int i = 0; i < N; ++i) amax = fmaxf(amax, fabsf(f[i]));
    }
  } else {
    for (int c = threadIdx.x; c < k; c += kThreads) amax = fmaxf(amax, fabsf(to_float(xr[c])));
  }
  amax = block_max(amax, scratch);
  const float scale = amax > 0.f ? __fdiv_rn(amax, C::kMax) : 1.f;
  if (threadIdx.x == 0) scale_out[row] = from_float<T>(scale);

  if constexpr (kVec) {
    for (int c = threadIdx.x * N; c < k; c += kThreads * N) {
      V v;
      v.load_nc(xr + c);
      float f[N];
      v.to_floats(f);
      typename C::type out[N];
#pragma unroll
      for (int i = 0; i < N; ++i) out[i] = C::make(__fdiv_rn(f[i], scale));
      if constexpr (N == 8) *reinterpret_cast<uint2*>(qr + c) = *reinterpret_cast<const uint2*>(out);
      else *reinterpret_cast<uint32_t*>(qr + c) = *reinterpret_cast<const uint32_t*>(out);
    }
  } else {
    for (int c = threadIdx.x; c < k; c += kThreads) qr[c] = C::make(__fdiv_rn(to_float(xr[c]), scale));
  }
}

template <typename T, bool kFp8>
int launch(const T* x, int64_t x_stride, void* q, T* scale, int64_t rows, int k, cudaStream_t stream) {
  using Q = typename Code<kFp8>::type;
  constexpr int N = Vec16<T>::N;
  const bool vec = k % N == 0 && x_stride % N == 0 && aligned16(x) &&
                   (reinterpret_cast<uintptr_t>(q) % N) == 0;
  const unsigned grid = static_cast<unsigned>(rows);
  Q* qt = static_cast<Q*>(q);
  if (vec) quantize_kernel<T, kFp8, true><<<grid, kThreads, 0, stream>>>(x, x_stride, qt, scale, k);
  else quantize_kernel<T, kFp8, false><<<grid, kThreads, 0, stream>>>(x, x_stride, qt, scale, k);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace
}  // namespace trtc

extern "C" int trtc_quantize_per_token(const void* x, int64_t x_stride, void* q, void* scale,
                                       int64_t rows, int32_t k, trtc_dtype dtype,
                                       trtc_dtype target, cudaStream_t stream) {
  if (rows < 0 || k <= 0 || x_stride < k || rows > 0x7fffffff) return cudaErrorInvalidValue;
  if (target != TRTC_INT8 && target != TRTC_FP8_E4M3) return cudaErrorNotSupported;
  if (rows == 0) return cudaSuccess;
  return trtc::dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* xt = static_cast<const T*>(x);
    T* s = static_cast<T*>(scale);
    return target == TRTC_INT8 ? trtc::launch<T, false>(xt, x_stride, q, s, rows, k, stream)
                               : trtc::launch<T, true>(xt, x_stride, q, s, rows, k, stream);
  });
}
