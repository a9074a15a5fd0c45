// RMSNorm with an optional fused residual add: h = x + residual; residual_out = h;
// y = h * rsqrt(mean(h^2) + eps) * weight. fp32 math, 16-byte accesses, one block per row;
// the row stays in registers between the reduction and the write.
// The quantizing variant writes y's per-token codes and scale instead of y (quantize_row.cuh):
// the same bits as this kernel followed by the quantize kernel, without y's round trip.
#include "../common/trtc_cuda.cuh"
#include "../quant/quantize_row.cuh"

namespace trtc {
namespace {

enum class Out { kValues, kInt8, kFp8 };

// NV: 16-byte vectors per thread kept in registers; the row has <= NV * blockDim vectors.
// OUT kValues: y is T [rows, hidden]; else y is the codes [rows, hidden], scale float [rows].
template <typename T, int NV, bool RESIDUAL, Out OUT = Out::kValues>
__global__ void rmsnorm_vec_kernel(const T* __restrict__ x, const T* __restrict__ residual,
                                   const T* __restrict__ weight, void* __restrict__ y,
                                   T* __restrict__ residual_out, int hidden, float eps,
                                   float* __restrict__ scale = nullptr) {
  using V = Vec16<T>;
  constexpr int N = V::N;
  allow_next_kernel();  // the GEMM after it may start loading its weights (fp8, int8, weight-only)
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const int nvec = hidden / N;
  const T* xr = x + row * hidden;
  float h[NV][N];
  float ss = 0.f;
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    const int v = threadIdx.x + j * blockDim.x;
    if (v < nvec) {
      V a;
      a.load_nc(xr + v * N);
      a.to_floats(h[j]);
      if (RESIDUAL) {
        V r;
        r.load_nc(residual + row * hidden + v * N);
        float rf[N];
        r.to_floats(rf);
#pragma unroll
        for (int i = 0; i < N; ++i) h[j][i] += rf[i];
        V o;
        o.from_floats(h[j]);
        o.store(residual_out + row * hidden + v * N);
      }
#pragma unroll
      for (int i = 0; i < N; ++i) ss += h[j][i] * h[j][i];
    }
  }
  const float inv = rsqrtf(block_sum(ss, scratch) / hidden + eps);
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    const int v = threadIdx.x + j * blockDim.x;
    if (v < nvec) {
      V w;
      w.load_nc(weight + v * N);
      float wf[N];
      w.to_floats(wf);
#pragma unroll
      for (int i = 0; i < N; ++i) h[j][i] = h[j][i] * inv * wf[i];
      if constexpr (OUT == Out::kValues) {
        V o;
        o.from_floats(h[j]);
        o.store(static_cast<T*>(y) + row * hidden + v * N);
      }
    }
  }
  if constexpr (OUT != Out::kValues) {
    constexpr bool kFp8 = OUT == Out::kFp8;
    quantize_row_regs<T, kFp8>(h, nvec, static_cast<typename QuantCode<kFp8>::type*>(y) + row * hidden,
                               scale + row, scratch);
  }
}

// Any hidden size or alignment: scalar accesses, the row is read twice (second time from L2).
template <typename T, bool RESIDUAL>
__global__ void rmsnorm_scalar_kernel(const T* __restrict__ x, const T* __restrict__ residual,
                                      const T* __restrict__ weight, T* __restrict__ y,
                                      T* __restrict__ residual_out, int hidden, float eps) {
  allow_next_kernel();  // the GEMM after it may start loading its weights
  __shared__ float scratch[32];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * hidden;
  float ss = 0.f;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    float h = to_float(x[base + i]);
    if (RESIDUAL) {
      h += to_float(residual[base + i]);
      residual_out[base + i] = from_float<T>(h);
    }
    ss += h * h;
  }
  const float inv = rsqrtf(block_sum(ss, scratch) / hidden + eps);
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    float h = to_float(x[base + i]);
    if (RESIDUAL) h += to_float(residual[base + i]);
    y[base + i] = from_float<T>(h * inv * to_float(weight[i]));
  }
}

template <typename T, bool RESIDUAL, Out OUT>
int launch_vec(int nv, const T* x, const T* r, const T* w, void* y, T* ro, int64_t rows, int hidden,
               float eps, float* scale, cudaStream_t stream) {
  const int nvec = hidden / Vec16<T>::N;
  const int threads = ((nvec + nv - 1) / nv + 31) / 32 * 32;
  const dim3 grid(static_cast<unsigned>(rows));
  switch (nv) {
    case 1: rmsnorm_vec_kernel<T, 1, RESIDUAL, OUT><<<grid, threads, 0, stream>>>(x, r, w, y, ro, hidden, eps, scale); break;
    case 2: rmsnorm_vec_kernel<T, 2, RESIDUAL, OUT><<<grid, threads, 0, stream>>>(x, r, w, y, ro, hidden, eps, scale); break;
    case 4: rmsnorm_vec_kernel<T, 4, RESIDUAL, OUT><<<grid, threads, 0, stream>>>(x, r, w, y, ro, hidden, eps, scale); break;
    default: rmsnorm_vec_kernel<T, 8, RESIDUAL, OUT><<<grid, threads, 0, stream>>>(x, r, w, y, ro, hidden, eps, scale); break;
  }
  return static_cast<int>(cudaGetLastError());
}

template <typename T, bool RESIDUAL>
bool vec_ok(const T* x, const T* r, const T* w, const void* y, const T* ro, int hidden) {
  return hidden % Vec16<T>::N == 0 && aligned16(x) && aligned16(w) && aligned16(y) &&
         (!RESIDUAL || (aligned16(r) && aligned16(ro)));
}

template <typename T, bool RESIDUAL>
int launch(const T* x, const T* r, const T* w, T* y, T* ro, int64_t rows, int hidden, float eps,
           cudaStream_t stream) {
  const int nv = vectors_per_thread(hidden / Vec16<T>::N, 256);
  if (vec_ok<T, RESIDUAL>(x, r, w, y, ro, hidden) && nv > 0)
    return launch_vec<T, RESIDUAL, Out::kValues>(nv, x, r, w, y, ro, rows, hidden, eps, nullptr, stream);
  rmsnorm_scalar_kernel<T, RESIDUAL><<<static_cast<unsigned>(rows), 256, 0, stream>>>(x, r, w, y, ro, hidden, eps);
  return static_cast<int>(cudaGetLastError());
}

// The quantizing variant has the register kernel only: cudaErrorNotSupported for other rows.
template <typename T, bool RESIDUAL>
int launch_quant(const T* x, const T* r, const T* w, void* q, T* ro, int64_t rows, int hidden,
                 float eps, float* scale, bool fp8, cudaStream_t stream) {
  const int nv = vectors_per_thread(hidden / Vec16<T>::N, 256);
  if (!vec_ok<T, RESIDUAL>(x, r, w, q, ro, hidden) || nv == 0 || hidden % 16 != 0)
    return cudaErrorNotSupported;
  return fp8 ? launch_vec<T, RESIDUAL, Out::kFp8>(nv, x, r, w, q, ro, rows, hidden, eps, scale, stream)
             : launch_vec<T, RESIDUAL, Out::kInt8>(nv, x, r, w, q, ro, rows, hidden, eps, scale, stream);
}

}  // namespace
}  // namespace trtc

extern "C" int trtc_rmsnorm(const void* x, const void* residual, const void* weight, void* y,
                            void* residual_out, int64_t rows, int32_t hidden, float epsilon,
                            trtc_dtype dtype, cudaStream_t stream) {
  if (rows < 0 || hidden <= 0 || rows > 0x7fffffff) return cudaErrorInvalidValue;
  if ((residual == nullptr) != (residual_out == nullptr)) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  return trtc::dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x);
    const T* rp = static_cast<const T*>(residual);
    const T* wp = static_cast<const T*>(weight);
    T* yp = static_cast<T*>(y);
    T* rop = static_cast<T*>(residual_out);
    return residual ? trtc::launch<T, true>(xp, rp, wp, yp, rop, rows, hidden, epsilon, stream)
                    : trtc::launch<T, false>(xp, rp, wp, yp, rop, rows, hidden, epsilon, stream);
  });
}

extern "C" int trtc_rmsnorm_quantize(const void* x, const void* residual, const void* weight,
                                     void* q, float* scale, void* residual_out, int64_t rows,
                                     int32_t hidden, float epsilon, trtc_dtype dtype,
                                     trtc_dtype target, cudaStream_t stream) {
  if (rows < 0 || hidden <= 0 || rows > 0x7fffffff) return cudaErrorInvalidValue;
  if ((residual == nullptr) != (residual_out == nullptr)) return cudaErrorInvalidValue;
  if (target != TRTC_INT8 && target != TRTC_FP8_E4M3) return cudaErrorNotSupported;
  if (rows == 0) return cudaSuccess;
  const bool fp8 = target == TRTC_FP8_E4M3;
  return trtc::dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x);
    const T* rp = static_cast<const T*>(residual);
    const T* wp = static_cast<const T*>(weight);
    T* rop = static_cast<T*>(residual_out);
    return residual
        ? trtc::launch_quant<T, true>(xp, rp, wp, q, rop, rows, hidden, epsilon, scale, fp8, stream)
        : trtc::launch_quant<T, false>(xp, rp, wp, q, rop, rows, hidden, epsilon, scale, fp8, stream);
  });
}
