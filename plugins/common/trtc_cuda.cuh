// Device helpers shared by the trtcompile kernels: element types, 16-byte vectors, reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include <type_traits>
#include <utility>

#include "trtc_launch.h"

namespace trtc {

// Compute capability of the current device as 10 * major + minor (0 when it cannot be read).
inline int device_capability() {
  int device = 0, major = 0, minor = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return 10 * major + minor;
}

// Multiprocessors of the current device (132, an H100's, when it cannot be read).
inline int sm_count() {
  int device = 0, sms = 132;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    cudaGetLastError();
    sms = 132;
  }
  return sms;
}

// Dynamic shared memory (bytes) for a CTA that must have its SM to itself: smem raised to just
// over half of what an SM holds, where a CTA may ask for that much (else smem as it is).
inline int smem_alone_on_sm(int smem) {
  int device = 0, per_sm = 0, optin = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess) {
    cudaGetLastError();
    return smem;
  }
  const int half = per_sm / 2 + 1;
  return smem < half && half <= optin ? half : smem;
}

// What launch_ex asks of a launch besides grid, block and stream.
struct LaunchOptions {
  size_t smem = 0;               // dynamic shared memory, bytes
  dim3 cluster = dim3(1, 1, 1);  // thread-block cluster shape (sm_90+); 1 x 1 x 1: none asked
  bool pdl = false;              // programmatic dependent launch: the kernel may start while the
                                 // one before it in the stream is still running (sm_90+)
};

// cudaLaunchKernelEx with the attributes `o` asks for; the cudaError_t as an int.
template <typename... Params, typename... Args>
inline int launch_ex(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream,
                     const LaunchOptions& o, Args&&... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = o.smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[2];
  unsigned n = 0;
  if (o.pdl) {
    attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[n++].val.programmaticStreamSerializationAllowed = 1;
  }
  if (o.cluster.x * o.cluster.y * o.cluster.z > 1) {
    attr[n].id = cudaLaunchAttributeClusterDimension;
    attr[n].val.clusterDim.x = o.cluster.x;
    attr[n].val.clusterDim.y = o.cluster.y;
    attr[n++].val.clusterDim.z = o.cluster.z;
  }
  cfg.attrs = attr;
  cfg.numAttrs = n;
  return static_cast<int>(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

// Dynamic shared memory starts after a kernel's static __shared__ variables, 16-byte aligned
// only. Kernels that cp.async 16 bytes a lane into it start their buffers at the next kSmemAlign
// bytes (align_smem; their launchers ask for kSmemAlign bytes more): a 32-byte global sector
// whose two halves land in different 32-byte granules of shared memory is read from L2 twice
// (H100: the decode kernel read twice its bytes from L2, 200 us at B=64 ctx 2048).
constexpr int kSmemAlign = 128;
// (An offset added to the __shared__ array, not a rounded integer cast back to a pointer: the
// compiler keeps the shared address space, and with it 32-bit addressing and its registers.)
// kAlign: a power of two (1024 for wgmma's 128-byte-swizzled tiles).
template <unsigned kAlign = kSmemAlign>
__device__ __forceinline__ unsigned char* align_smem(unsigned char* p) {
  const unsigned at = static_cast<unsigned>(__cvta_generic_to_shared(p));
  return p + ((kAlign - (at & (kAlign - 1))) & (kAlign - 1));
}

template <typename T> __device__ __forceinline__ float to_float(T x);
template <> __device__ __forceinline__ float to_float<float>(float x) { return x; }
template <> __device__ __forceinline__ float to_float<__half>(__half x) { return __half2float(x); }
template <> __device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// A 16-byte vector of N = 16 / sizeof(T) elements, loaded and stored in one access.
template <typename T>
struct Vec16 {
  static constexpr int N = 16 / sizeof(T);
  uint4 raw;

  __device__ __forceinline__ void load(const T* p) { raw = *reinterpret_cast<const uint4*>(p); }
  __device__ __forceinline__ void load_nc(const T* p) {
    raw = __ldg(reinterpret_cast<const uint4*>(p));
  }
  __device__ __forceinline__ void store(T* p) const { *reinterpret_cast<uint4*>(p) = raw; }
  __device__ __forceinline__ void to_floats(float (&f)[N]) const {
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {  // bf16 is the top half of a float
      const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        f[2 * i] = __uint_as_float(w[i] << 16);
        f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
      }
    } else {
      const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
      for (int i = 0; i < N; ++i) f[i] = to_float<T>(e[i]);
    }
  }
  // 16-bit types round pairs in one conversion (the same bits as one at a time)
  __device__ __forceinline__ void from_floats(const float (&f)[N]) {
    if constexpr (sizeof(T) == 2) {
      using T2 = std::conditional_t<std::is_same_v<T, __half>, __half2, __nv_bfloat162>;
      T2* e = reinterpret_cast<T2*>(&raw);
#pragma unroll
      for (int i = 0; i < N / 2; ++i) {
        if constexpr (std::is_same_v<T, __half>) e[i] = __floats2half2_rn(f[2 * i], f[2 * i + 1]);
        else e[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
      }
    } else {
      T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
      for (int i = 0; i < N; ++i) e[i] = from_float<T>(f[i]);
    }
  }
};

// ldmatrix .x4: four 8x8 tiles of 16-bit elements from shared memory (lanes 8i..8i+7 give the
// row addresses of tile i), into r[0..3] of every lane.
__device__ __forceinline__ void ldmatrix_x4(uint32_t* r, uint32_t smem_addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
  ldmatrix_x4(r, static_cast<uint32_t>(__cvta_generic_to_shared(smem)));
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block; every thread gets the result. `scratch` holds >= 32 floats.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.f;
  return warp_sum(v);
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Maximum over the block; every thread gets the result. `scratch` holds >= 32 floats.
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = warp_max(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

inline int element_size(trtc_dtype t) {
  switch (t) {
    case TRTC_F32: return 4;
    case TRTC_F16:
    case TRTC_BF16: return 2;
    case TRTC_FP8_E4M3:
    case TRTC_INT8: return 1;
  }
  return 0;
}

// Calls f(T{}) with T the CUDA type of `t` (f32, f16, bf16); returns cudaErrorNotSupported else.
template <typename F>
inline int dispatch_float_type(trtc_dtype t, F&& f) {
  switch (t) {
    case TRTC_F32: return f(float{});
    case TRTC_F16: return f(__half{});
    case TRTC_BF16: return f(__nv_bfloat16{});
    default: return cudaErrorNotSupported;
  }
}

// Programmatic dependent launch (sm_90+; no-ops below). allow_next_kernel: a kernel launched
// after this one with cudaLaunchAttributeProgrammaticStreamSerialization may begin once every
// block of this one has run it. wait_for_prior_grid: in such a kernel, returns once the kernel
// before it has finished and its writes are visible (at once without such a launch).
__device__ __forceinline__ void allow_next_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wait_for_prior_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Row kernels holding a row of nvec 16-byte vectors in registers (one block per row): the
// fewest vectors per thread, a power of two <= 8, that keep the block at <= max_threads
// (more for rows above 8 * max_threads vectors); 0 when the row has over 8192 vectors.
inline int vectors_per_thread(int nvec, int max_threads) {
  if (nvec > 8 * 1024) return 0;
  int nv = 1;
  while (nv < 8 && nvec > nv * max_threads) nv *= 2;
  return nv;
}

}  // namespace trtc
