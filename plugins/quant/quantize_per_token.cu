// Dynamic per-token quantization: scale = max|x| / qmax per row (1 for an all-zero row),
// q = round(x / scale) clamped to +-127 (int8) or x / scale clamped to +-448 -> e4m3 (fp8).
// One block per row: an absmax pass, then a quantize pass (the second read hits L2).
#include <type_traits>

#include "quantize_row.cuh"

namespace trtc {
namespace {

constexpr int kThreads = 256;

// kVec: rows are read as 16-byte vectors (K % N == 0, aligned) and q written N bytes at a time.
// S: the scale's storage, T or float (then holding the scale rounded to T).
template <typename T, typename S, bool kFp8, bool kVec>
__global__ void __launch_bounds__(kThreads) quantize_kernel(const T* __restrict__ x, int64_t x_stride,
                                                            typename QuantCode<kFp8>::type* __restrict__ q,
                                                            S* __restrict__ scale_out, int k) {
  using C = QuantCode<kFp8>;
  using V = Vec16<T>;
  constexpr int N = V::N;
  allow_next_kernel();  // the W8A8 GEMM after it may start loading its weights
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * x_stride;
  typename C::type* qr = q + row * k;

  // fn(c, f) for each 16-byte vector of the row: f = its N elements from column c
  auto each_vector = [&](auto&& fn) {
    for (int c = threadIdx.x * N; c < k; c += kThreads * N) {
      V v;
      v.load_nc(xr + c);
      float f[N];
      v.to_floats(f);
      fn(c, f);
    }
  };
  float amax = 0.f;
  if constexpr (kVec) {
    each_vector([&](int, const float(&f)[N]) {
#pragma unroll
      for (int i = 0; i < N; ++i) amax = fmaxf(amax, fabsf(f[i]));
    });
  } else {
    for (int c = threadIdx.x; c < k; c += kThreads) amax = fmaxf(amax, fabsf(to_float(xr[c])));
  }
  amax = block_max(amax, scratch);
  const float scale = quant_scale<kFp8>(amax);
  if (threadIdx.x == 0) scale_out[row] = static_cast<S>(from_float<T>(scale));
  const Divider div(scale);
  div.dispatch([&](auto path) {
    if constexpr (kVec) {
      each_vector([&](int c, const float(&f)[N]) { store_codes<kFp8, N>(qr + c, f, div, path); });
    } else {
      for (int c = threadIdx.x; c < k; c += kThreads) qr[c] = C::make(div(to_float(xr[c]), path));
    }
  });
}

template <typename T, bool kFp8, typename S>
int launch(const T* x, int64_t x_stride, void* q, S* scale, int64_t rows, int k, cudaStream_t stream) {
  using Q = typename QuantCode<kFp8>::type;
  constexpr int N = Vec16<T>::N;
  const bool vec = k % N == 0 && x_stride % N == 0 && aligned16(x) &&
                   (reinterpret_cast<uintptr_t>(q) % N) == 0;
  const unsigned grid = static_cast<unsigned>(rows);
  Q* qt = static_cast<Q*>(q);
  if (vec) quantize_kernel<T, S, kFp8, true><<<grid, kThreads, 0, stream>>>(x, x_stride, qt, scale, k);
  else quantize_kernel<T, S, kFp8, false><<<grid, kThreads, 0, stream>>>(x, x_stride, qt, scale, k);
  return static_cast<int>(cudaGetLastError());
}

// Both entry points: the scale stored in x's type, or (kFloatScale) as float holding that value.
template <bool kFloatScale>
int quantize_entry(const void* x, int64_t x_stride, void* q, void* scale, int64_t rows, int32_t k,
                   trtc_dtype dtype, trtc_dtype target, cudaStream_t stream) {
  if (rows < 0 || k <= 0 || x_stride < k || rows > 0x7fffffff) return cudaErrorInvalidValue;
  if (target != TRTC_INT8 && target != TRTC_FP8_E4M3) return cudaErrorNotSupported;
  if (rows == 0) return cudaSuccess;
  return dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    using Out = std::conditional_t<kFloatScale, float, T>;
    const T* xt = static_cast<const T*>(x);
    Out* s = static_cast<Out*>(scale);
    return target == TRTC_INT8 ? launch<T, false>(xt, x_stride, q, s, rows, k, stream)
                               : launch<T, true>(xt, x_stride, q, s, rows, k, stream);
  });
}

}  // namespace
}  // namespace trtc

extern "C" int trtc_quantize_per_token(const void* x, int64_t x_stride, void* q, void* scale,
                                       int64_t rows, int32_t k, trtc_dtype dtype,
                                       trtc_dtype target, cudaStream_t stream) {
  return trtc::quantize_entry<false>(x, x_stride, q, scale, rows, k, dtype, target, stream);
}

extern "C" int trtc_quantize_per_token_f32scale(const void* x, int64_t x_stride, void* q,
                                                float* scale, int64_t rows, int32_t k,
                                                trtc_dtype dtype, trtc_dtype target,
                                                cudaStream_t stream) {
  return trtc::quantize_entry<true>(x, x_stride, q, scale, rows, k, dtype, target, stream);
}
