// Hopper warpgroup MMA (wgmma, sm_90a) helpers shared by the kernels that use it: fences,
// commit/wait, shared-memory descriptors of 128-byte-swizzled tiles and the mma_async shapes
// in use, and what warp-specialized kernels synchronize with (mbarriers, named barriers,
// setmaxnreg). Compiled for sm_90a alone (elsewhere the kernels that call them trap); launchers
// pick those kernels only where wgmma_binary_ready() holds.
#pragma once

#include <atomic>

#include "trtc_cuda.cuh"

namespace trtc {

// Element (r, col) of a tile of `rows` rows of 16-bit elements in wgmma's 128-byte swizzle:
// columns in slabs of 64 (one 128-byte row each, slabs rows * 64 elements apart); 16-byte
// chunk c of row r stored at chunk c ^ (r & 7). The tile must start 1024-byte aligned.
template <int ROWS>
struct Swizzled128 {
  __device__ __forceinline__ int operator()(int r, int col) const {
    return (col >> 6) * (ROWS * 64) + r * 64 + ((((col >> 3) & 7) ^ (r & 7)) << 3) + (col & 7);
  }
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ void fence_async_shared() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N> __device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// mbarrier in shared memory (CTA scope): init (before a __syncthreads), arrive, and wait for the
// completion of the phase of the given parity.
__device__ __forceinline__ void mbar_init(uint64_t* bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(bar)) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t* bar, int parity) {
  asm volatile(
      "{\n.reg .pred p;\nWAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
      "@!p bra WAIT;\n}\n" ::"r"(smem_u32(bar)),
      "r"(parity)
      : "memory");
}
// Bulk copies (TMA without a tensor map) that complete on an mbarrier: the arriving thread
// first announces the bytes of the phase (arrive + expect_tx), then any threads copy them
// (contiguous, 16-byte aligned, sizes multiples of 16); fence_mbarrier_init publishes
// mbarrier.init to the copy engine.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)),
               "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void bulk_copy_g2s(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
          smem_u32(dst)),
      "l"(src), "r"(bytes), "r"(smem_u32(bar))
      : "memory");
}
__device__ __forceinline__ void fence_mbarrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
// Tensor copy (TMA) of one box of a 2-dimensional tensor map at coordinates (c0, c1), as
// tma_load_3d below.
__device__ __forceinline__ void tma_load_2d(void* dst, const void* map, int c0, int c1, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], "
      "[%4];\n" ::"r"(smem_u32(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(smem_u32(bar))
      : "memory");
}
// Tensor copy (TMA) of one box of a 3-dimensional tensor map at coordinates (c0, c1, c2) into
// shared memory, completing on an mbarrier like bulk_copy_g2s. `map`: a __grid_constant__
// kernel parameter (its generic address).
__device__ __forceinline__ void tma_load_3d(void* dst, const void* map, int c0, int c1, int c2, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, "
      "%4}], [%5];\n" ::"r"(smem_u32(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(smem_u32(bar))
      : "memory");
}
// The same for a 4-dimensional tensor map.
__device__ __forceinline__ void tma_load_4d(void* dst, const void* map, int c0, int c1, int c2, int c3,
                                            uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, "
      "%4, %5}], [%6];\n" ::"r"(smem_u32(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(smem_u32(bar))
      : "memory");
}
// Registers per thread of the calling warpgroup from here on (warp-specialized kernels: the
// producer gives registers back, the consumers take them).
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}
// Barrier `id` (1..15) of `threads` threads (a subset of the CTA, whole warps): sync waits
// until that many arrived (itself included), arrive counts this warp and goes on.
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Pins the registers of an MMA operand array in program order against the fences, commits and
// waits (the compiler sees the MMAs as plain register writes and could move their reads or
// writes past a wait).
template <int N>
__device__ __forceinline__ void wgmma_fence_operand(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
// The same for an A operand held in registers: keeps them live (not reused by the register
// allocator) until this point, after the wait of the MMAs that read them.
template <int N>
__device__ __forceinline__ void wgmma_fence_operand(uint32_t (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+r"(r[i])::"memory");
}

// Descriptor of an operand in 128-byte-swizzled shared memory: 8-row atoms 1024 bytes apart
// (stride byte offset). K-major: rows of 128 bytes along k (the address must sit in a
// 1024-aligned atom, plus k offsets); the leading offset is unused. MN-major (transposed B):
// rows of 64 elements along n, one per k; `lead` bytes between 64-wide slabs along n.
__device__ __forceinline__ uint64_t swizzled_desc(uint32_t smem_addr, uint32_t lead = 16) {
  return static_cast<uint64_t>((smem_addr & 0x3FFFF) >> 4) | (static_cast<uint64_t>(lead >> 4) << 16) |
         (uint64_t{1024 >> 4} << 32) | (uint64_t{1} << 62);
}

// Accumulator operand lists ("+f" of d[0..n)) and their placeholders.
#define TRTC_WG_ACC8(o)                                                                      \
  "+f"(d[o]), "+f"(d[o + 1]), "+f"(d[o + 2]), "+f"(d[o + 3]), "+f"(d[o + 4]), "+f"(d[o + 5]), \
      "+f"(d[o + 6]), "+f"(d[o + 7])
#define TRTC_WG_ACC32 TRTC_WG_ACC8(0), TRTC_WG_ACC8(8), TRTC_WG_ACC8(16), TRTC_WG_ACC8(24)
#define TRTC_WG_ACC64 \
  TRTC_WG_ACC32, TRTC_WG_ACC8(32), TRTC_WG_ACC8(40), TRTC_WG_ACC8(48), TRTC_WG_ACC8(56)
#define TRTC_WG_ACC128                                                                   \
  TRTC_WG_ACC64, TRTC_WG_ACC8(64), TRTC_WG_ACC8(72), TRTC_WG_ACC8(80), TRTC_WG_ACC8(88), \
      TRTC_WG_ACC8(96), TRTC_WG_ACC8(104), TRTC_WG_ACC8(112), TRTC_WG_ACC8(120)
#define TRTC_WG_REGS32                                                                          \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define TRTC_WG_REGS64                                                                          \
  TRTC_WG_REGS32 ", %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, "   \
                 "%46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, " \
                 "%61, %62, %63"
#define TRTC_WG_REGS128                                                                          \
  TRTC_WG_REGS64 \
  ", %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77" \
  ", %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91" \
  ", %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105" \
  ", %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119" \
  ", %120, %121, %122, %123, %124, %125, %126, %127"

// D (+)= A x B, A from registers (4 x 2 elements), B by descriptor; i0..i5: the operand
// numbers of a[0..3], desc_b and scale_d (strings); tb: "1" for a transposed (MN-major) B.
#define TRTC_WGMMA_RS(shape, ty, tb, regs, acc, i0, i1, i2, i3, i4, i5)                        \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" i5 ", 0;\n"                                \
               "wgmma.mma_async.sync.aligned." shape ".f32." ty "." ty " {" regs "}, {%" i0     \
               ", %" i1 ", %" i2 ", %" i3 "}, %" i4 ", p, 1, 1, " tb ";\n}\n"                    \
               : acc                                                                          \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d))
// m64n128k16, A in registers; B K-major, or MN-major (transposed) where kTransB;
// scale_d == 0 ignores (overwrites) d.
template <typename T, bool kTransB = false>
__device__ __forceinline__ void wgmma_m64n128k16_rs(float (&d)[64], const uint32_t (&a)[4],
                                                    uint64_t desc_b, int scale_d) {
  constexpr bool f16 = std::is_same<T, __half>::value;
  if constexpr (f16 && kTransB)
    TRTC_WGMMA_RS("m64n128k16", "f16", "1", TRTC_WG_REGS64, TRTC_WG_ACC64, "64", "65", "66", "67", "68", "69");
  else if constexpr (f16)
    TRTC_WGMMA_RS("m64n128k16", "f16", "0", TRTC_WG_REGS64, TRTC_WG_ACC64, "64", "65", "66", "67", "68", "69");
  else if constexpr (kTransB)
    TRTC_WGMMA_RS("m64n128k16", "bf16", "1", TRTC_WG_REGS64, TRTC_WG_ACC64, "64", "65", "66", "67", "68", "69");
  else
    TRTC_WGMMA_RS("m64n128k16", "bf16", "0", TRTC_WG_REGS64, TRTC_WG_ACC64, "64", "65", "66", "67", "68", "69");
}

// D (+)= A x B, both by descriptor, both K-major (16-bit types); ia, ib, is: the operand
// numbers of desc_a, desc_b and scale_d (strings).
#define TRTC_WGMMA_SS(shape, ty, regs, acc, ia, ib, is)                                          \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" is ", 0;\n"                                \
               "wgmma.mma_async.sync.aligned." shape ".f32." ty "." ty " {" regs "}, %" ia ", %" ib \
               ", p, 1, 1, 0, 0;\n}\n"                                                          \
               : acc                                                                           \
               : "l"(desc_a), "l"(desc_b), "r"(scale_d))
// m64n128k16, A and B K-major in shared memory; scale_d == 0 ignores (overwrites) d.
template <typename T>
__device__ __forceinline__ void wgmma_m64n128k16_ss(float (&d)[64], uint64_t desc_a, uint64_t desc_b,
                                                    int scale_d) {
  if constexpr (std::is_same<T, __half>::value)
    TRTC_WGMMA_SS("m64n128k16", "f16", TRTC_WG_REGS64, TRTC_WG_ACC64, "64", "65", "66");
  else
    TRTC_WGMMA_SS("m64n128k16", "bf16", TRTC_WG_REGS64, TRTC_WG_ACC64, "64", "65", "66");
}

// m64n64k16, A in registers; B K-major, or MN-major (transposed) where kTransB.
template <typename T, bool kTransB>
__device__ __forceinline__ void wgmma_m64n64k16_rs(float (&d)[32], const uint32_t (&a)[4],
                                                   uint64_t desc_b, int scale_d) {
  constexpr bool f16 = std::is_same<T, __half>::value;
  if constexpr (f16 && kTransB)
    TRTC_WGMMA_RS("m64n64k16", "f16", "1", TRTC_WG_REGS32, TRTC_WG_ACC32, "32", "33", "34", "35", "36", "37");
  else if constexpr (f16)
    TRTC_WGMMA_RS("m64n64k16", "f16", "0", TRTC_WG_REGS32, TRTC_WG_ACC32, "32", "33", "34", "35", "36", "37");
  else if constexpr (kTransB)
    TRTC_WGMMA_RS("m64n64k16", "bf16", "1", TRTC_WG_REGS32, TRTC_WG_ACC32, "32", "33", "34", "35", "36", "37");
  else
    TRTC_WGMMA_RS("m64n64k16", "bf16", "0", TRTC_WG_REGS32, TRTC_WG_ACC32, "32", "33", "34", "35", "36", "37");
}

// D (+)= A x B for fp8 e4m3 operands, both by descriptor (K-major: fp8 MMAs take no
// transpose); ia, ib, is: the operand numbers of desc_a, desc_b and scale_d (strings).
#define TRTC_WGMMA_SS_E4M3(shape, regs, acc, ia, ib, is)                                      \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" is ", 0;\n"                             \
               "wgmma.mma_async.sync.aligned." shape ".f32.e4m3.e4m3 {" regs "}, %" ia ", %" ib \
               ", p, 1, 1;\n}\n"                                                             \
               : acc                                                                        \
               : "l"(desc_a), "l"(desc_b), "r"(scale_d))
// m64nNk32, fp8 e4m3 x e4m3 -> f32, N = 64, 128 or 256; scale_d == 0 ignores (overwrites) d.
template <int N>
__device__ __forceinline__ void wgmma_m64k32_e4m3_ss(float (&d)[N / 2], uint64_t desc_a,
                                                     uint64_t desc_b, int scale_d) {
  static_assert(N == 64 || N == 128 || N == 256, "instantiated widths");
  if constexpr (N == 64)
    TRTC_WGMMA_SS_E4M3("m64n64k32", TRTC_WG_REGS32, TRTC_WG_ACC32, "32", "33", "34");
  else if constexpr (N == 128)
    TRTC_WGMMA_SS_E4M3("m64n128k32", TRTC_WG_REGS64, TRTC_WG_ACC64, "64", "65", "66");
  else
    TRTC_WGMMA_SS_E4M3("m64n256k32", TRTC_WG_REGS128, TRTC_WG_ACC128, "128", "129", "130");
}

#undef TRTC_WGMMA_SS_E4M3
#undef TRTC_WGMMA_SS
#undef TRTC_WGMMA_RS
#undef TRTC_WG_REGS128
#undef TRTC_WG_REGS64
#undef TRTC_WG_REGS32
#undef TRTC_WG_ACC128
#undef TRTC_WG_ACC64
#undef TRTC_WG_ACC32
#undef TRTC_WG_ACC8
#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// Whether the library holds sm_90a code of `kernel` for the current device (binaryVersion
// 90: the code wgmma needs), remembered per device in the bits of `checked` / `ready`.
template <typename Kernel>
bool wgmma_binary_ready(Kernel kernel, std::atomic<uint64_t>& checked, std::atomic<uint64_t>& ready) {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  const uint64_t bit = uint64_t{1} << (device & 63);
  if (checked.load() & bit) return (ready.load() & bit) != 0;
  cudaFuncAttributes attr{};
  bool ok = device_capability() == 90 && cudaFuncGetAttributes(&attr, kernel) == cudaSuccess &&
            attr.binaryVersion == 90;
  cudaGetLastError();
  if (ok) ready.fetch_or(bit);
  checked.fetch_or(bit);
  return ok;
}

}  // namespace trtc
