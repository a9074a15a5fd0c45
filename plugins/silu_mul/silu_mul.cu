// SwiGLU: y[r, i] = silu(x[r, i]) * x[r, inter + i], fp32 math, 16-byte accesses.
#include <algorithm>

#include "../common/trtc_cuda.cuh"

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
