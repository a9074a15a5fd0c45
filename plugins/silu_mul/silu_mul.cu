// SwiGLU: y[r, i] = silu(x[r, i]) * x[r, inter + i], fp32 math, 16-byte accesses.
// The quantizing variant writes y's per-token codes and scale instead of y (quantize_row.cuh):
// the row in registers, split over a cluster of CTAs on sm_90+; the same bits as this kernel
// followed by the quantize kernel.
#include <stdlib.h>

#include <algorithm>

#include "../common/cluster.cuh"
#include "../common/trtc_cuda.cuh"
#include "../quant/quantize_row.cuh"

namespace trtc {
namespace {

// silu(g) = g / (1 + e^-g) (e^-g as __expf: ex2.approx of -g log2(e); ftz gives the same d, as
// 1 + a subnormal rounds to 1), the quotient with the bits of the IEEE division g / d.
// The division is the fast path of div.rn.f32 (approximate reciprocal, one Newton step, quotient,
// one FMA correction), exact where that path's range check passes; a vector with an element
// outside a narrower range (g in [-22, 2^32] so d <= 2^32, |g| >= 2^-32: zeros and NaN out)
// divides instead. No branch but that rare one a vector, so the N elements interleave (the
// per-element div.rn branch kept them one at a time). tests/gpu/test_silu_mul_bits.py checks
// the bits against a build with the plain division on every 16-bit g and 8M float32 ones.
__device__ __forceinline__ float exp_neg(float g) {
  float e;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(__fmul_rn(g, -1.4426950408889634f)));
  return e;
}

// max that propagates NaN (fmaxf drops it)
__device__ __forceinline__ float max_nan(float a, float b) {
  float m;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(m) : "f"(a), "f"(b));
  return m;
}

template <int N>
__device__ __forceinline__ void silu_mul(float (&g)[N], const float (&u)[N]) {
  float q[N];
  float lo = g[0], hi = g[0], tiny = fabsf(g[0]);  // the range check, over the N elements
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const float d = __fadd_rn(1.f, exp_neg(g[i]));
    float r;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(d));
    const float y = __fmaf_rn(r, __fmaf_rn(-d, r, 1.f), r);
    const float q0 = __fmaf_rn(g[i], y, 0.f);
    q[i] = __fmaf_rn(y, __fmaf_rn(-d, q0, g[i]), q0);
    lo = fminf(lo, g[i]);
    hi = max_nan(hi, g[i]);
    tiny = fminf(tiny, fabsf(g[i]));
  }
  // g >= -22: d <= 2^32; NaN fails `hi <= 2^32`
  if (!(lo >= -22.f && hi <= 0x1p32f && tiny >= 0x1p-32f)) {
#pragma unroll
    for (int i = 0; i < N; ++i) q[i] = __fdiv_rn(g[i], __fadd_rn(1.f, exp_neg(g[i])));
  }
#pragma unroll
  for (int i = 0; i < N; ++i) g[i] = __fmul_rn(q[i], u[i]);
}

// One 16-byte vector of y per thread (grid-stride), both halves of x read with 16-byte loads.
// Bounds: <= 48 registers (the N interleaved divisions), 5 blocks an SM.
template <typename T>
__global__ void __launch_bounds__(256, 5)
    silu_mul_vec_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int inter) {
  using V = Vec16<T>;
  constexpr int N = V::N;
  allow_next_kernel();  // the down projection's GEMV may start loading its weights
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
    silu_mul(gf, uf);
    V o;
    o.from_floats(gf);
    o.store(y + r * inter + c);
  }
}

// One row per cluster of CTAs (sm_90+; a plain launch is a cluster of one): CTA `rank` holds
// vectors [rank * slice, (rank + 1) * slice) of y, NV per thread, in registers as T (the bits
// the plain kernel writes, which the quantize kernel would read). Row absmax: block_max, then
// each CTA stores its maximum into slot `rank` of every CTA's `part` and one cluster barrier
// publishes them (a CTA leaves only after every store into its shared memory has landed).
template <typename T, bool kFp8, int NV>
__global__ void __launch_bounds__(1024)
    silu_mul_quant_kernel(const T* __restrict__ x, typename QuantCode<kFp8>::type* __restrict__ q,
                          float* __restrict__ scale, int inter, int slice) {
  using V = Vec16<T>;
  constexpr int N = V::N;
  __shared__ float scratch[32];
  __shared__ float part[kMaxClusterCtas];
  allow_next_kernel();  // the fp8 GEMM after it may start loading its weights
  const unsigned ctas = cluster_size(), rank = cluster_rank();
  if (ctas > 1) cluster_arrive_relaxed();  // "started": others may store into `part` after the wait
  const int64_t row = blockIdx.x / ctas;
  const int nvec = inter / N;
  const int first = static_cast<int>(rank) * slice + static_cast<int>(threadIdx.x);
  const int end = min(static_cast<int>(rank + 1) * slice, nvec);
  const T* xr = x + row * 2 * inter;
  V y[NV];
#pragma unroll
  for (int j = 0; j < NV; ++j) {  // y[j] holds the gate half until the second loop
    const int v = first + j * static_cast<int>(blockDim.x);
    if (v < end) y[j].load_nc(xr + v * N);
  }
  V u[NV];
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    const int v = first + j * static_cast<int>(blockDim.x);
    if (v < end) u[j].load_nc(xr + inter + v * N);
  }
  float amax = 0.f;
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    if (first + j * static_cast<int>(blockDim.x) < end) {
      float gf[N], uf[N];
      y[j].to_floats(gf);
      u[j].to_floats(uf);
      silu_mul(gf, uf);
      y[j].from_floats(gf);
      y[j].to_floats(gf);
#pragma unroll
      for (int i = 0; i < N; ++i) amax = fmaxf(amax, fabsf(gf[i]));
    }
  }
  amax = block_max(amax, scratch);
  if (ctas > 1) {
    cluster_wait();
    if (threadIdx.x < ctas) store_shared_remote(&part[rank], threadIdx.x, amax);
    cluster_arrive();
    cluster_wait();
    for (unsigned c = 0; c < ctas; ++c) amax = fmaxf(amax, part[c]);
  }
  const float s = quant_scale<kFp8>(amax);
  if (rank == 0 && threadIdx.x == 0) scale[row] = to_float(from_float<T>(s));
  const Divider div(s);
  typename QuantCode<kFp8>::type* qr = q + row * inter;
  div.dispatch([&](auto path) {
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      const int v = first + j * static_cast<int>(blockDim.x);
      if (v < end) {
        float f[N];
        y[j].to_floats(f);
        store_codes<kFp8, N>(qr + v * N, f, div, path);
      }
    }
  });
}

template <typename T>
__global__ void silu_mul_scalar_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                       int inter) {
  const int64_t total = rows * inter;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / inter;
    const int c = static_cast<int>(idx - r * inter);
    float g[1] = {to_float(x[r * 2 * inter + c])};
    const float u[1] = {to_float(x[r * 2 * inter + inter + c])};
    silu_mul(g, u);
    y[idx] = from_float<T>(g[0]);
  }
}

template <typename T>
int launch(const T* x, T* y, int64_t rows, int inter, cudaStream_t stream) {
  constexpr int N = Vec16<T>::N;
  const int threads = 256;
  const int64_t max_blocks = static_cast<int64_t>(sm_count()) * 16;
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

// How the quantizing kernel splits a row: CTAs per row (a cluster), vectors per CTA and per
// thread, threads per CTA; nv == 0: the row does not fit (the caller runs the two kernels).
struct QuantSplit {
  int ctas, slice, nv, threads;
};

int env_int(const char* name) {
  const char* v = getenv(name);
  return v != nullptr ? atoi(v) : 0;
}

// One CTA of <= 512 threads a row (14336 bf16: 448 threads x 4 vectors; as fast as clusters
// from 256 rows on, and below SiluMul alone from 2048 on, H100 and H200); where the rows leave
// SMs idle, a cluster of up to 8 CTAs a row on sm_90+ (rows * CTAs >= SMs), <= 256 threads each
// (14336 at 1-32 rows: 8 x 224 threads x 1 vector, 1.3-1.4x faster than one CTA).
// TRTC_SILU_QUANT_CTAS / _NV override the CTAs a row (1-8) and vectors a thread (1, 2, 4, 8)
// (tuning, for benchmarks).
QuantSplit split_row(int nvec, int64_t rows) {
  const int cap = device_capability() >= 90 ? kMaxClusterCtas : 1;
  const int sms = sm_count();
  int ctas = 1;
  while (ctas < cap && (rows * ctas < sms || (nvec + ctas - 1) / ctas > 8 * 1024)) ctas *= 2;
  const int force_ctas = env_int("TRTC_SILU_QUANT_CTAS");
  if (force_ctas > 0) ctas = std::min(force_ctas, cap);
  if (rows * ctas > 0x7fffffff) ctas = 1;
  QuantSplit sp{ctas, (nvec + ctas - 1) / ctas, 0, 0};
  sp.nv = vectors_per_thread(sp.slice, ctas > 1 ? 256 : 512);
  const int force_nv = env_int("TRTC_SILU_QUANT_NV");
  if ((force_nv == 1 || force_nv == 2 || force_nv == 4 || force_nv == 8) &&
      (sp.slice + force_nv - 1) / force_nv <= 1024)
    sp.nv = force_nv;
  if (sp.nv > 0) sp.threads = ((sp.slice + sp.nv - 1) / sp.nv + 31) / 32 * 32;
  return sp;
}

template <typename T, bool kFp8>
int launch_quant(const T* x, void* q, float* scale, int64_t rows, int inter, cudaStream_t stream) {
  using Q = typename QuantCode<kFp8>::type;
  if (inter % Vec16<T>::N != 0 || !aligned16(x) || !aligned16(q)) return cudaErrorNotSupported;
  const QuantSplit sp = split_row(inter / Vec16<T>::N, rows);
  void (*kernel)(const T*, Q*, float*, int, int);
  switch (sp.nv) {
    case 1: kernel = silu_mul_quant_kernel<T, kFp8, 1>; break;
    case 2: kernel = silu_mul_quant_kernel<T, kFp8, 2>; break;
    case 4: kernel = silu_mul_quant_kernel<T, kFp8, 4>; break;
    case 8: kernel = silu_mul_quant_kernel<T, kFp8, 8>; break;
    default: return cudaErrorNotSupported;
  }
  LaunchOptions o;
  o.cluster = dim3(static_cast<unsigned>(sp.ctas));
  return launch_ex(kernel, dim3(static_cast<unsigned>(rows * sp.ctas)),
                   dim3(static_cast<unsigned>(sp.threads)), stream, o, x, static_cast<Q*>(q), scale,
                   inter, sp.slice);
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
