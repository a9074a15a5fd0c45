// SwiGLU: y[r, i] = silu(x[r, i]) * x[r, inter + i], fp32 math, 16-byte accesses.
// The quantizing variant writes y's per-token codes and scale instead of y (quantize_row.cuh):
// one block per row holding the row in registers; the same bits as this kernel followed by
// the quantize kernel.
#include <algorithm>

#include "../common/trtc_cuda.cuh"
#include "../quant/quantize_row.cuh"

namespace trtc {
namespace {

__device__ __forceinline__ float silu(float g) { return g / (1.f + __expf(-g)); }

// One 16-byte vector of y per thread (grid-stride), both halves of x read with 16-byte loads.
template <typename T>
__global__ void silu_mul_vec_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                    int inter) {
  using V = Vec16<T>;
  constexpr int N = V::N;
  const int vpr = inter / N;  // vectors per row
  const int64_t total = rows * vpr;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / vpr;
    const int c = static_cast<int>(idx - r * vpr) * N;
    const T* xr = x + r * 2 * inter;
    V g, u;
    g.load_nc(xr + c);
    u.load_nc(xr + inter + c);
    float gf[N], uf[N];
    g.to_floats(gf);
    u.to_floats(uf);
#pragma unroll
    for (int i = 0; i < N; ++i) gf[i] = silu(gf[i]) * uf[i];
    V o;
    o.from_floats(gf);
    o.store(y + r * inter + c);
  }
}

// NV: 16-byte vectors of y per thread; the row has <= NV * blockDim vectors.
template <typename T, bool kFp8, int NV>
__global__ void __launch_bounds__(1024) silu_mul_quant_kernel(const T* __restrict__ x, typename QuantCode<kFp8>::type* __restrict__ q,
                                      float* __restrict__ scale, int inter) {
  using V = Vec16<T>;
  constexpr int N = V::N;
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const int nvec = inter / N;
  const T* xr = x + row * 2 * inter;
  float h[NV][N];
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    const int v = threadIdx.x + j * blockDim.x;
    if (v < nvec) {
      V g, u;
      g.load_nc(xr + v * N);
      u.load_nc(xr + inter + v * N);
      float uf[N];
      g.to_floats(h[j]);
      u.to_floats(uf);
#pragma unroll
      for (int i = 0; i < N; ++i) h[j][i] = silu(h[j][i]) * uf[i];
    }
  }
  quantize_row_regs<T, kFp8>(h, nvec, q + row * inter, scale + row, scratch);
}

template <typename T>
__global__ void silu_mul_scalar_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                       int inter) {
  const int64_t total = rows * inter;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / inter;
    const int c = static_cast<int>(idx - r * inter);
    y[idx] = from_float<T>(silu(to_float(x[r * 2 * inter + c])) * to_float(x[r * 2 * inter + inter + c]));
  }
}

template <typename T>
int launch(const T* x, T* y, int64_t rows, int inter, cudaStream_t stream) {
  constexpr int N = Vec16<T>::N;
  const int threads = 256;
  int device = 0, sms = 132;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int64_t max_blocks = static_cast<int64_t>(sms) * 16;
  if (inter % N == 0 && aligned16(x) && aligned16(y)) {
    const int64_t work = rows * (inter / N);
    const int64_t blocks = std::min<int64_t>((work + threads - 1) / threads, max_blocks);
    silu_mul_vec_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(x, y, rows, inter);
  } else {
    const int64_t work = rows * inter;
    const int64_t blocks = std::min<int64_t>((work + threads - 1) / threads, max_blocks);
    silu_mul_scalar_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(x, y, rows, inter);
  }
  return static_cast<int>(cudaGetLastError());
}

template <typename T, bool kFp8>
int launch_quant(const T* x, void* q, float* scale, int64_t rows, int inter, cudaStream_t stream) {
  using Q = typename QuantCode<kFp8>::type;
  const int nvec = inter / Vec16<T>::N;
  // Up to 1024 threads a row: with 256-thread blocks (8 vectors a thread at 14336) 8192 rows
  // ran 1.1x slower than SiluMul + quantize (H100).
  const int nv = vectors_per_thread(nvec, 1024);
  if (inter % 16 != 0 || !aligned16(x) || !aligned16(q) || nv == 0) return cudaErrorNotSupported;
  const int threads = ((nvec + nv - 1) / nv + 31) / 32 * 32;
  const unsigned grid = static_cast<unsigned>(rows);
  Q* qt = static_cast<Q*>(q);
  switch (nv) {
    case 1: silu_mul_quant_kernel<T, kFp8, 1><<<grid, threads, 0, stream>>>(x, qt, scale, inter); break;
    case 2: silu_mul_quant_kernel<T, kFp8, 2><<<grid, threads, 0, stream>>>(x, qt, scale, inter); break;
    case 4: silu_mul_quant_kernel<T, kFp8, 4><<<grid, threads, 0, stream>>>(x, qt, scale, inter); break;
    default: silu_mul_quant_kernel<T, kFp8, 8><<<grid, threads, 0, stream>>>(x, qt, scale, inter); break;
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace
}  // namespace trtc

extern "C" int trtc_silu_mul(const void* x, void* y, int64_t rows, int32_t inter, trtc_dtype dtype,
                             cudaStream_t stream) {
  if (rows < 0 || inter <= 0) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  return trtc::dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    return trtc::launch<T>(static_cast<const T*>(x), static_cast<T*>(y), rows, inter, stream);
  });
}

extern "C" int trtc_silu_mul_quantize(const void* x, void* q, float* scale, int64_t rows,
                                      int32_t inter, trtc_dtype dtype, trtc_dtype target,
                                      cudaStream_t stream) {
  if (rows < 0 || inter <= 0 || rows > 0x7fffffff) return cudaErrorInvalidValue;
  if (target != TRTC_INT8 && target != TRTC_FP8_E4M3) return cudaErrorNotSupported;
  if (rows == 0) return cudaSuccess;
  return trtc::dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x);
    return target == TRTC_FP8_E4M3 ? trtc::launch_quant<T, true>(xp, q, scale, rows, inter, stream)
                                   : trtc::launch_quant<T, false>(xp, q, scale, rows, inter, stream);
  });
}
