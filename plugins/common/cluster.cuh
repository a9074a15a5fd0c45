// Thread-block clusters (sm_90+): rank, the cluster barrier and stores into (loads from) another
// CTA's shared memory. Compiled for older targets they describe a cluster of one CTA (rank 0,
// size 1, no-op barriers), so a kernel written for clusters also runs as a plain launch there.
#pragma once

#include <stdint.h>

namespace trtc {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define TRTC_HAS_CLUSTERS 1
#else
#define TRTC_HAS_CLUSTERS 0
#endif

constexpr int kMaxClusterCtas = 8;  // the portable cluster size limit

// CTAs in this CTA's cluster (1 for a launch without clusters).
__device__ __forceinline__ unsigned cluster_size() {
#if TRTC_HAS_CLUSTERS
  unsigned n;
  asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(n));
  return n;
#else
  return 1;
#endif
}

// This CTA's rank within its cluster, 0 .. cluster_size() - 1.
__device__ __forceinline__ unsigned cluster_rank() {
#if TRTC_HAS_CLUSTERS
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
  return r;
#else
  return 0;
#endif
}

// Arrive on the cluster barrier without ordering memory (e.g. to say "this CTA has started").
__device__ __forceinline__ void cluster_arrive_relaxed() {
#if TRTC_HAS_CLUSTERS
  asm volatile("barrier.cluster.arrive.relaxed;" ::: "memory");
#endif
}

// Arrive, releasing this thread's earlier writes (shared::cluster included) to the cluster.
__device__ __forceinline__ void cluster_arrive() {
#if TRTC_HAS_CLUSTERS
  asm volatile("barrier.cluster.arrive.release;" ::: "memory");
#endif
}

// Wait until every thread of the cluster has arrived; acquires what they released.
__device__ __forceinline__ void cluster_wait() {
#if TRTC_HAS_CLUSTERS
  asm volatile("barrier.cluster.wait.acquire;" ::: "memory");
#endif
}

// *p = v in the shared memory of CTA `rank` of the cluster (p: this CTA's copy of the variable).
__device__ __forceinline__ void store_shared_remote(float* p, unsigned rank, float v) {
#if TRTC_HAS_CLUSTERS
  const uint32_t local = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(local), "r"(rank));
  asm volatile("st.shared::cluster.f32 [%0], %1;" ::"r"(remote), "f"(v) : "memory");
#else
  if (rank == 0) *p = v;
#endif
}

// The 4 floats at p in the shared memory of CTA `rank` of the cluster (p: this CTA's copy,
// 16-byte aligned). The cluster must have passed a barrier since they were written.
__device__ __forceinline__ float4 load_shared_remote4(const float* p, unsigned rank) {
  float4 v;
#if TRTC_HAS_CLUSTERS
  const uint32_t local = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(local), "r"(rank));
  asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "r"(remote)
               : "memory");
#else
  v = *reinterpret_cast<const float4*>(p);
#endif
  return v;
}

}  // namespace trtc
