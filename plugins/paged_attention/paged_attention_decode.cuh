// The end of both decode kernels (internal): merging the CTA's partial softmax states of one
// token, writing out or a split partial, and the last split's merge of the partials.
#pragma once

#include "paged_attention.cuh"

namespace trtc {
namespace pa {

// Keys [kbeg, kend) that split `split` of a query at position qpos attends to (causal, within
// the sliding window), the splits' lengths rounded up to whole loop iterations of ITER keys.
template <int ITER>
__device__ __forceinline__ void split_key_range(const Args& a, int n, int qpos, int split,
                                                int& kbeg, int& kend) {
  const int hi = min(n, qpos + 1);
  const int lo = a.sliding_window > 0 ? max(0, qpos - a.sliding_window + 1) : 0;
  const int len = max(0, hi - lo);
  const int per = ((len + a.nsplit - 1) / a.nsplit + ITER - 1) / ITER * ITER;
  kbeg = lo + split * per;
  kend = min(hi, kbeg + per);
}

// Shared-memory floats finish_decode needs for NP parts of GQ heads of D columns (with
// CLUSTER, then the CTA's split partial that the cluster reads: GQ * D outputs, GQ (max, sum)).
template <int D, int GQ, int NP, bool CLUSTER = false>
constexpr int finish_floats() {
  return NP * GQ * D + 2 * NP * GQ + (CLUSTER ? GQ * D + 2 * GQ : 0);
}

// Thread-block clusters (sm_90+; fused decode only, never reached on older devices).
// cluster_sync: barrier of every thread of the cluster; what each wrote to shared memory
// before it is visible to all after it.
__device__ __forceinline__ void cluster_sync() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n"
               ::: "memory");
#endif
}
// Address of `p` (this CTA's shared memory) in the shared memory of cluster CTA `rank`.
__device__ __forceinline__ uint32_t cluster_addr(const void* p, int rank) {
  uint32_t r = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n"
               : "=r"(r) : "r"(static_cast<uint32_t>(__cvta_generic_to_shared(p))), "r"(rank));
#endif
  return r;
}
__device__ __forceinline__ float4 cluster_ld4(uint32_t addr) {
  float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];\n"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "r"(addr));
#endif
  return v;
}
__device__ __forceinline__ float2 cluster_ld2(uint32_t addr) {
  float2 v = make_float2(0.f, 0.f);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("ld.shared::cluster.v2.f32 {%0, %1}, [%2];\n" : "=f"(v.x), "=f"(v.y) : "r"(addr));
#endif
  return v;
}

// Merges the nsplit partials of heads h0 + g (g < ng) of token t into out, 4 columns an item,
// items first, first + step, ... of GQ * D / 4. load(g, d, i, ml, o) gives split i's (max, sum)
// and outputs d..d+3 of head g. Out = sum_i w_i o_i / sum_i w_i, w_i = l_i * 2^(m_i - max m);
// kBatch splits are loaded together and folded in with a running max.
template <typename T, int D, int GQ, typename Load>
__device__ __forceinline__ void merge_splits(const Args& a, int t, int h0, int ng, int first,
                                             int step, Load&& load) {
  constexpr int kBatch = 8;
  for (int idx = first; idx < GQ * D / 4; idx += step) {
    const int g = idx / (D / 4), d = (idx - g * (D / 4)) * 4;
    if (g >= ng) continue;
    float M = -1e30f, L = 0.f;
    float4 O = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int i0 = 0; i0 < a.nsplit; i0 += kBatch) {
      float2 mi[kBatch];
      float4 oi[kBatch];
#pragma unroll
      for (int k = 0; k < kBatch; ++k) {
        mi[k] = make_float2(-1e30f, 0.f);
        oi[k] = make_float4(0.f, 0.f, 0.f, 0.f);
        if (i0 + k < a.nsplit) load(g, d, i0 + k, mi[k], oi[k]);
      }
      float mx = M;
#pragma unroll
      for (int k = 0; k < kBatch; ++k) mx = fmaxf(mx, mi[k].x);
      const float c = exp2f(M - mx);
      M = mx;
      L *= c;
      O.x *= c;
      O.y *= c;
      O.z *= c;
      O.w *= c;
#pragma unroll
      for (int k = 0; k < kBatch; ++k) {
        const float w = mi[k].y * exp2f(mi[k].x - mx);
        L += w;
        O.x += w * oi[k].x;
        O.y += w * oi[k].y;
        O.z += w * oi[k].z;
        O.w += w * oi[k].w;
      }
    }
    const float inv = L > 0.f ? 1.f / L : 0.f;
    T* dst = static_cast<T*>(a.out) + (static_cast<int64_t>(t) * a.num_heads + h0 + g) * D + d;
    dst[0] = from_float<T>(O.x * inv);
    dst[1] = from_float<T>(O.y * inv);
    dst[2] = from_float<T>(O.z * inv);
    dst[3] = from_float<T>(O.w * inv);
  }
}

// The CTA (NT threads) holds NP partial states of each of its ng heads h0 + g of token t:
//   sm_o[(j * GQ + g) * D + d]   output of part j, unnormalized (sum of p * v)
//   sm_m[j * GQ + g]             its running max (log2 units), sm_l its sum of p
// Merges them into out (nsplit 1) or into the split partial (normalized output, max, sum),
// then merges the splits' partials:
//   a.fused (needs CLUSTER; the splits are one cluster, rank = split): partials in shared
//     memory (sm_part, finish_floats), each CTA merges every nsplit-th item from all ranks;
//   else: partials in the workspace (part_o, part_ml); the last split to finish (a counter)
//     merges them.
// Every thread calls it; it ends with a barrier (the buffers are free again).
template <typename T, int D, int GQ, int NP, int NT, bool CLUSTER = false>
__device__ __forceinline__ void finish_decode(const Args& a, float* sm_o, const float* sm_m,
                                              const float* sm_l, int t, int s, int split, int h0,
                                              int ng, float vscale, float* sm_part = nullptr) {
  __shared__ int s_last;
  const int tid = threadIdx.x;
  const bool cluster = CLUSTER && a.fused;
  for (int idx = tid; idx < GQ * D; idx += NT) {
    const int g = idx / D, d = idx - g * D;
    if (g >= ng) continue;
    float mx = -1e30f;
#pragma unroll
    for (int j = 0; j < NP; ++j) mx = fmaxf(mx, sm_m[j * GQ + g]);
    float L = 0.f, O = 0.f;
#pragma unroll
    for (int j = 0; j < NP; ++j) {
      const float w = exp2f(sm_m[j * GQ + g] - mx);
      L += sm_l[j * GQ + g] * w;
      O += sm_o[(j * GQ + g) * D + d] * w;
    }
    const int h = h0 + g;
    const float o = L > 0.f ? O / L * vscale : 0.f;
    if (a.nsplit == 1) {
      static_cast<T*>(a.out)[(static_cast<int64_t>(t) * a.num_heads + h) * D + d] =
          from_float<T>(o);
    } else if (cluster) {
      sm_part[idx] = o;
      if (d == 0) *reinterpret_cast<float2*>(sm_part + GQ * D + 2 * g) = make_float2(mx, L);
    } else {  // nsplit > 1 only when every sequence here has one new token: row s
      const int64_t pi = (static_cast<int64_t>(s) * a.num_heads + h) * a.nsplit + split;
      a.part_o[pi * D + d] = o;
      if (d == 0) {
        a.part_ml[pi * 2] = mx;
        a.part_ml[pi * 2 + 1] = L;
      }
    }
  }
  if (a.nsplit > 1 && cluster) {
    cluster_sync();  // every split's partial is written
    merge_splits<T, D, GQ>(a, t, h0, ng, split + a.nsplit * tid, a.nsplit * NT,
                           [&](int g, int d, int i, float2& ml, float4& o) {
                             ml = cluster_ld2(cluster_addr(sm_part + GQ * D + 2 * g, i));
                             o = cluster_ld4(cluster_addr(sm_part + g * D + d, i));
                           });
    cluster_sync();  // no CTA leaves (or reuses sm_part) while another reads it
  } else if (a.nsplit > 1) {
    __threadfence();
    __syncthreads();
    if (tid == 0) {
      wait_for_write();  // kv_write zeroes the counters
      const int c = atomicAdd(a.split_done + s * gridDim.x + blockIdx.x, 1);
      s_last = c == a.nsplit - 1;
    }
    __syncthreads();
    if (s_last) {
      __threadfence();
      merge_splits<T, D, GQ>(a, t, h0, ng, tid, NT,
                             [&](int g, int d, int i, float2& ml, float4& o) {
                               const int64_t pi =
                                   (static_cast<int64_t>(s) * a.num_heads + h0 + g) * a.nsplit + i;
                               ml = __ldcg(reinterpret_cast<const float2*>(a.part_ml) + pi);
                               o = __ldcg(reinterpret_cast<const float4*>(a.part_o + pi * D + d));
                             });
    }
  }
  __syncthreads();
}

// The decode kernel of a call's types, query heads per CTA and variant, with its dynamic
// shared memory; fn null where none exists. max_cluster: the most splits fused mode may put in
// one cluster (0: the kernel has no fused mode).
struct DecodeFn {
  void (*fn)(Args);
  int smem;
  int threads;
  int max_cluster = 0;
};

// Tensor-core kernel (paged_attention_decode_mma.cu): 16-bit pools of the activation type,
// gq 4 or 8; null fn otherwise. Keys per CTA iteration of one of its kernels (split planning).
DecodeFn decode_mma_fn(trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim, int gq);
int decode_mma_keys_per_iter(const DecodeFn& f);

}  // namespace pa
}  // namespace trtc
