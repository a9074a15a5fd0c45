// Asynchronous global -> shared copies (cp.async, sm_80+) and the one-time opt-in to more than
// 48 KB of dynamic shared memory, shared by the tiled weight-only GEMM kernels.
#pragma once

#include <atomic>

#include "../common/trtc_cuda.cuh"

namespace trtc {
namespace woq {

// 16 (4) bytes, zero-filled past src_bytes (0: nothing read; gmem must still be a valid address).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async4(void* smem, const void* gmem, int src_bytes) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Raises kernel's dynamic shared memory limit to `bytes` once per device (bit per device in
// `opted`); returns a cudaError_t.
template <typename Kernel>
int opt_in_shared_memory(Kernel kernel, size_t bytes, std::atomic<uint64_t>& opted) {
  int device = 0;
  cudaGetDevice(&device);
  const uint64_t bit = uint64_t{1} << (device & 63);
  if (opted.load() & bit) return cudaSuccess;
  const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(bytes));
  if (e == cudaSuccess) opted.fetch_or(bit);
  return static_cast<int>(e);
}

}  // namespace woq
}  // namespace trtc
