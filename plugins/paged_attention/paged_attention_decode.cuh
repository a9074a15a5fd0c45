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

// atomicAdd at gpu scope with acquire-release semantics: the writes ordered before it (this
// thread's, and the CTA's through a preceding barrier) are visible to whoever reads its result
// and then reads them, and it sees the writes released before the values it read.
__device__ __forceinline__ int atomic_add_acq_rel(int32_t* p, int v) {
  int old;
  asm volatile("atom.acq_rel.gpu.global.add.s32 %0, [%1], %2;\n"
               : "=r"(old) : "l"(p), "r"(v) : "memory");
  return old;
}

// Shared-memory floats finish_decode needs for NP parts of GQ heads of D columns.
template <int D, int GQ, int NP>
constexpr int finish_floats() {
  return NP * GQ * D + 2 * NP * GQ;
}

// The CTA (NT threads) holds NP partial states of each of its ng heads h0 + g of token t:
//   sm_o[(j * GQ + g) * D + d]   output of part j, unnormalized (sum of p * v)
//   sm_m[j * GQ + g]             its running max (log2 units), sm_l its sum of p
// Merges them into out (nsplit 1) or into the split partial (part_o normalized, part_ml),
// then with nsplit > 1 the last split to finish (a counter in the workspace) merges the
// partials: out = sum_i w_i o_i / sum_i w_i, w_i = l_i * 2^(m_i - max m), BATCH splits loaded
// together (one round trip for up to BATCH splits).
// Every thread calls it; it ends with a barrier (the buffers are free again).
template <typename T, int D, int GQ, int NP, int NT, int BATCH = 8>
__device__ __forceinline__ void finish_decode(const Args& a, float* sm_o, const float* sm_m,
                                              const float* sm_l, int t, int s, int split, int h0,
                                              int ng, float vscale) {
  __shared__ int s_last;
  const int tid = threadIdx.x;
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
    if (a.nsplit == 1) {
      static_cast<T*>(a.out)[(static_cast<int64_t>(t) * a.num_heads + h) * D + d] =
          from_float<T>(L > 0.f ? O / L * vscale : 0.f);
    } else {  // nsplit > 1 only when every sequence here has one new token: row s
      const int64_t pi = (static_cast<int64_t>(s) * a.num_heads + h) * a.nsplit + split;
      a.part_o[pi * D + d] = L > 0.f ? O / L * vscale : 0.f;
      if (d == 0) {
        a.part_ml[pi * 2] = mx;
        a.part_ml[pi * 2 + 1] = L;
      }
    }
  }
  if (a.nsplit > 1) {
    // The CTA's partial is released by thread 0's counter update after the barrier; the last
    // split's reads follow thread 0's acquire and the barrier (no fence by every thread).
    __syncthreads();
    if (tid == 0) {
      wait_for_write_if(a, true);  // kv_write zeroes the workspace's counters
      int32_t* done = a.split_done + s * gridDim.x + blockIdx.x;
      const int c = atomic_add_acq_rel(done, 1);
      s_last = c == a.nsplit - 1;
      if (s_last) *done = 0;  // every split has counted: zero for the next call
    }
    __syncthreads();
    if (s_last) {
      // 4 columns a thread; the splits' (max, sum) and outputs are loaded together, kBatch
      // splits at a time, and folded in with a running max.
      constexpr int kBatch = BATCH;
      for (int idx = tid; idx < GQ * D / 4; idx += NT) {
        const int g = idx / (D / 4), d = (idx - g * (D / 4)) * 4;
        if (g >= ng) continue;
        const int h = h0 + g;
        const int64_t base = (static_cast<int64_t>(s) * a.num_heads + h) * a.nsplit;
        const float2* ml = reinterpret_cast<const float2*>(a.part_ml) + base;
        const float* po = a.part_o + base * D + d;
        float M = -1e30f, L = 0.f;
        float4 O = make_float4(0.f, 0.f, 0.f, 0.f);
        for (int i0 = 0; i0 < a.nsplit; i0 += kBatch) {
          float2 mi[kBatch];
          float4 oi[kBatch];
#pragma unroll
          for (int k = 0; k < kBatch; ++k) {
            const bool in = i0 + k < a.nsplit;
            mi[k] = in ? __ldcg(ml + i0 + k) : make_float2(-1e30f, 0.f);
            oi[k] = in ? __ldcg(reinterpret_cast<const float4*>(po + (i0 + k) * D))
                       : make_float4(0.f, 0.f, 0.f, 0.f);
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
        T* dst = static_cast<T*>(a.out) + (static_cast<int64_t>(t) * a.num_heads + h) * D + d;
        dst[0] = from_float<T>(O.x * inv);
        dst[1] = from_float<T>(O.y * inv);
        dst[2] = from_float<T>(O.z * inv);
        dst[3] = from_float<T>(O.w * inv);
      }
    }
  }
  __syncthreads();
}

// Keys a tile of the tensor-core decode kernel: the rows of its tensor-copy boxes.
constexpr int kDecodeTileKeys = 16;

// The decode kernel of a call's types, query heads per CTA and variant, with its dynamic
// shared memory; fn null where none exists. tma_fn (tensor-core kernel on sm_90a, else null):
// the same kernel with its tiles copied by tensor copies through the pools' maps (boxes of
// kDecodeTileKeys slots; blocks of >= 16 slots, no sliding window), tma_smem bytes.
struct DecodeFn {
  void (*fn)(Args);
  int smem;
  int threads;
  void (*tma_fn)(Args, CUtensorMap, CUtensorMap) = nullptr;
  int tma_smem = 0;
};

// Tensor-core kernel (paged_attention_decode_mma.cu): pools of the activation type (gq 4 or 8)
// or fp8 / int8 (gq 4); null fn otherwise. Keys per CTA iteration of one of its kernels (split planning).
// kind: kMma (4 warps x 3 stages), kMmaWide (8 x 3), kMmaShallow (4 x 2; 16-bit pools, else
// 4 x 3); fused: the fused instantiation (Args::fused).
DecodeFn decode_mma_fn(trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim, int gq, DecodeKind kind,
                       bool fused);
int decode_mma_keys_per_iter(const DecodeFn& f);

}  // namespace pa
}  // namespace trtc
