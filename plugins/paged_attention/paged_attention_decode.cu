// PagedAttention decode kernel (few new tokens per sequence) and the split-K reduce.
//
// CTA = (kv head, chunk of GQ query heads of its group, sequence, split). The CTA's keys are
// dealt to "key lanes": LPK threads share one key, each holding one 16-byte slice of it, so a
// K/V block is read once for all GQ heads. Every thread keeps its own online-softmax state
// (max, sum, 16-byte slice of the output) over the keys it saw; the key lanes are merged in
// shared memory at the end. No barrier inside the key loop: each warp streams on its own, with
// KPT keys' K and V loads (2 * KPT 16-byte loads per thread) in flight per iteration.
#include "paged_attention.cuh"

namespace trtc {
namespace pa {
namespace {

constexpr int kThreads = 128;

template <typename T, int D, int GQ, int KPT>
__global__ void __launch_bounds__(kThreads) decode_kernel(const Args a) {
  constexpr int VEC = Vec16<T>::N;
  constexpr int LPK = D / VEC;         // lanes per key
  constexpr int KL = kThreads / LPK;   // key lanes
  constexpr int ITER = KL * KPT;       // keys per CTA iteration
  static_assert(LPK <= 32 && KL >= 1, "bad tiling");
  __shared__ float sm_o[KL][GQ][D];
  __shared__ float sm_m[KL][GQ], sm_l[KL][GQ];

  const int hkv = blockIdx.x / a.head_chunks;
  const int chunk = blockIdx.x - hkv * a.head_chunks;
  const int s = blockIdx.y, split = blockIdx.z;
  const int q0 = a.qsl[s], q1 = a.qsl[s + 1];
  if (q1 <= q0 || q1 - q0 > a.max_decode_qlen) return;
  const int n = a.seq_lens[s];
  const int lane = threadIdx.x % LPK, kl = threadIdx.x / LPK;
  const int h0 = hkv * a.group + chunk * GQ;
  const int ng = min(GQ, a.group - chunk * GQ);
  const int32_t* bt = a.block_tables + static_cast<int64_t>(s) * a.max_blocks;
  const int64_t slot_stride = static_cast<int64_t>(a.num_kv_heads) * D;
  const T* kp = static_cast<const T*>(a.k_pool) + hkv * D + lane * VEC;
  const T* vp = static_cast<const T*>(a.v_pool) + hkv * D + lane * VEC;
  const int bmask = (1 << a.log2_block) - 1;

  for (int t = q0; t < q1; ++t) {
    const int qpos = a.positions[t];
    const int hi = min(n, qpos + 1);
    const int lo = a.sliding_window > 0 ? max(0, qpos - a.sliding_window + 1) : 0;
    const int len = max(0, hi - lo);
    const int per = ((len + a.nsplit - 1) / a.nsplit + ITER - 1) / ITER * ITER;
    const int kbeg = lo + split * per;
    const int kend = min(hi, kbeg + per);

    float qf[GQ][VEC];
#pragma unroll
    for (int g = 0; g < GQ; ++g) {
      if (g < ng) {
        Vec16<T> x;
        x.load_nc(static_cast<const T*>(a.qbuf) +
                  (static_cast<int64_t>(t) * a.num_heads + h0 + g) * D + lane * VEC);
        x.to_floats(qf[g]);
#pragma unroll
        for (int e = 0; e < VEC; ++e) qf[g][e] *= a.scale_log2;
      } else {
#pragma unroll
        for (int e = 0; e < VEC; ++e) qf[g][e] = 0.f;
      }
    }
    float m[GQ], l[GQ], acc[GQ][VEC];
#pragma unroll
    for (int g = 0; g < GQ; ++g) {
      m[g] = -1e30f;
      l[g] = 0.f;
#pragma unroll
      for (int e = 0; e < VEC; ++e) acc[g][e] = 0.f;
    }

    for (int kb = kbeg; kb < kend; kb += ITER) {
      Vec16<T> kr[KPT], vr[KPT];
#pragma unroll
      for (int i = 0; i < KPT; ++i) {
        const int key = kb + kl + i * KL;
        if (key < kend) {
          const int64_t slot = (static_cast<int64_t>(__ldg(bt + (key >> a.log2_block))) << a.log2_block) |
                               (key & bmask);
          kr[i].load_nc(kp + slot * slot_stride);
          vr[i].load_nc(vp + slot * slot_stride);
        } else {
          kr[i].raw = make_uint4(0, 0, 0, 0);
          vr[i].raw = make_uint4(0, 0, 0, 0);
        }
      }
      float sc[KPT][GQ];
#pragma unroll
      for (int i = 0; i < KPT; ++i) {
        float kf[VEC];
        kr[i].to_floats(kf);
#pragma unroll
        for (int g = 0; g < GQ; ++g) {
          float d = 0.f;
#pragma unroll
          for (int e = 0; e < VEC; ++e) d = fmaf(qf[g][e], kf[e], d);
#pragma unroll
          for (int o = LPK / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
          sc[i][g] = (kb + kl + i * KL < kend) ? d : -INFINITY;
        }
      }
#pragma unroll
      for (int g = 0; g < GQ; ++g) {
        float mx = m[g];
#pragma unroll
        for (int i = 0; i < KPT; ++i) mx = fmaxf(mx, sc[i][g]);
        const float corr = exp2f(m[g] - mx);
        m[g] = mx;
        l[g] *= corr;
#pragma unroll
        for (int e = 0; e < VEC; ++e) acc[g][e] *= corr;
#pragma unroll
        for (int i = 0; i < KPT; ++i) {
          sc[i][g] = exp2f(sc[i][g] - mx);
          l[g] += sc[i][g];
        }
      }
#pragma unroll
      for (int i = 0; i < KPT; ++i) {
        float vf[VEC];
        vr[i].to_floats(vf);
#pragma unroll
        for (int g = 0; g < GQ; ++g)
#pragma unroll
          for (int e = 0; e < VEC; ++e) acc[g][e] = fmaf(sc[i][g], vf[e], acc[g][e]);
      }
    }

    // Merge the key lanes.
#pragma unroll
    for (int g = 0; g < GQ; ++g) {
      if (lane == 0) {
        sm_m[kl][g] = m[g];
        sm_l[kl][g] = l[g];
      }
#pragma unroll
      for (int e = 0; e < VEC; ++e) sm_o[kl][g][lane * VEC + e] = acc[g][e];
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < GQ * D; idx += kThreads) {
      const int g = idx / D, d = idx - g * D;
      if (g >= ng) continue;
      float mx = -1e30f;
#pragma unroll
      for (int j = 0; j < KL; ++j) mx = fmaxf(mx, sm_m[j][g]);
      float L = 0.f, O = 0.f;
#pragma unroll
      for (int j = 0; j < KL; ++j) {
        const float w = exp2f(sm_m[j][g] - mx);
        L += sm_l[j][g] * w;
        O += sm_o[j][g][d] * w;
      }
      const int h = h0 + g;
      if (a.nsplit == 1) {
        static_cast<T*>(a.out)[(static_cast<int64_t>(t) * a.num_heads + h) * D + d] =
            from_float<T>(L > 0.f ? O / L : 0.f);
      } else {
        const int row = a.max_decode_qlen == 1 ? s : t;
        const int64_t pi = (static_cast<int64_t>(row) * a.num_heads + h) * a.nsplit + split;
        a.part_o[pi * D + d] = L > 0.f ? O / L : 0.f;
        if (d == 0) {
          a.part_ml[pi * 2] = mx;
          a.part_ml[pi * 2 + 1] = L;
        }
      }
    }
    __syncthreads();
  }
}

// out[t, h, :] = sum_i w_i o_i / sum_i w_i, w_i = l_i * 2^(m_i - max m). Grid (S, Hq), D threads.
template <typename T, int D>
__global__ void __launch_bounds__(D) split_reduce_kernel(const Args a) {
  __shared__ float w[kMaxSplits];
  __shared__ float total;
  const int s = blockIdx.x, h = blockIdx.y;
  const int q0 = a.qsl[s], q1 = a.qsl[s + 1];
  if (q1 <= q0 || q1 - q0 > a.max_decode_qlen) return;
  for (int t = q0; t < q1; ++t) {
    const int row = a.max_decode_qlen == 1 ? s : t;
    const int64_t base = (static_cast<int64_t>(row) * a.num_heads + h) * a.nsplit;
    if (threadIdx.x < 32) {  // one warp: weights of all splits
      float m[kMaxSplits / 32], mx = -1e30f;
#pragma unroll
      for (int j = 0; j < kMaxSplits / 32; ++j) {
        const int i = threadIdx.x + 32 * j;
        m[j] = i < a.nsplit ? a.part_ml[(base + i) * 2] : -1e30f;
        mx = fmaxf(mx, m[j]);
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < kMaxSplits / 32; ++j) {
        const int i = threadIdx.x + 32 * j;
        const float wi = i < a.nsplit ? a.part_ml[(base + i) * 2 + 1] * exp2f(m[j] - mx) : 0.f;
        w[i] = wi;
        sum += wi;
      }
      sum = warp_sum(sum);
      if (threadIdx.x == 0) total = sum;
    }
    __syncthreads();
    float O = 0.f;
#pragma unroll 8
    for (int i = 0; i < a.nsplit; ++i) O += w[i] * a.part_o[(base + i) * D + threadIdx.x];
    static_cast<T*>(a.out)[(static_cast<int64_t>(t) * a.num_heads + h) * D + threadIdx.x] =
        from_float<T>(total > 0.f ? O / total : 0.f);
    __syncthreads();
  }
}

using DecodeFn = void (*)(Args);

template <typename T, int D>
DecodeFn decode_fn(int gq) {
  if constexpr (sizeof(T) == 4) {  // fp32 is a correctness path: one head per CTA
    return gq == 1 ? decode_kernel<T, D, 1, 4> : nullptr;
  } else {
    switch (gq) {
      case 1: return decode_kernel<T, D, 1, 8>;
      case 4: return decode_kernel<T, D, 4, 8>;
      case 8: return decode_kernel<T, D, 8, 4>;
      default: return nullptr;
    }
  }
}

DecodeFn pick(trtc_dtype dtype, int head_dim, int gq) {
  const bool d64 = head_dim == 64;
  switch (dtype) {
    case TRTC_F32: return d64 ? decode_fn<float, 64>(gq) : decode_fn<float, 128>(gq);
    case TRTC_F16: return d64 ? decode_fn<__half, 64>(gq) : decode_fn<__half, 128>(gq);
    case TRTC_BF16: return d64 ? decode_fn<__nv_bfloat16, 64>(gq) : decode_fn<__nv_bfloat16, 128>(gq);
    default: return nullptr;
  }
}

}  // namespace

int launch_decode(const Args& a, trtc_dtype dtype, int head_dim, int gq, cudaStream_t stream) {
  if (a.num_seqs == 0) return cudaSuccess;
  const DecodeFn fn = pick(dtype, head_dim, gq);
  if (fn == nullptr) return cudaErrorNotSupported;
  fn<<<dim3(a.num_kv_heads * a.head_chunks, a.num_seqs, a.nsplit), kThreads, 0, stream>>>(a);
  return static_cast<int>(cudaGetLastError());
}

int decode_keys_per_iter(trtc_dtype dtype, int head_dim, int gq) {
  const int vec = 16 / element_size(dtype);
  const int kpt = dtype == TRTC_F32 || gq == 8 ? 4 : 8;
  return kThreads / (head_dim / vec) * kpt;
}

int decode_ctas_per_sm(trtc_dtype dtype, int head_dim, int gq) {
  const DecodeFn fn = pick(dtype, head_dim, gq);
  int n = 0;
  if (fn == nullptr || cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, fn, kThreads, 0) != cudaSuccess) {
    cudaGetLastError();
    return 1;
  }
  return n > 0 ? n : 1;
}

int launch_split_reduce(const Args& a, trtc_dtype dtype, int head_dim, cudaStream_t stream) {
  return dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    const dim3 grid(a.num_seqs, a.num_heads);
    if (head_dim == 64) split_reduce_kernel<T, 64><<<grid, 64, 0, stream>>>(a);
    else split_reduce_kernel<T, 128><<<grid, 128, 0, stream>>>(a);
    return static_cast<int>(cudaGetLastError());
  });
}

}  // namespace pa
}  // namespace trtc
