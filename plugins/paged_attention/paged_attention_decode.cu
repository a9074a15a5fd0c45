// PagedAttention decode, CUDA-core kernel (few new tokens per sequence): fp32 and quantized
// pools, one head per CTA, and 16-bit pools where the tensor-core kernel does not run
// (paged_attention_decode_mma.cu). The end (key-lane merge, split-K) is finish_decode.
//
// CTA = (kv head, chunk of GQ query heads of its group, sequence, split). The CTA's keys are
// dealt to "key lanes": LPK threads share one key, each holding one 16-byte slice of it, so a
// K/V block is read once for all GQ heads. Every thread keeps its own online-softmax state
// (max, sum, 16-byte slice of the output) over the keys it saw; the key lanes are merged in
// shared memory at the end.
//
// Loads: each thread streams its own K/V slices through a private ring of STAGES shared-memory
// stages with cp.async (KPT keys' K and V per stage), STAGES - 1 iterations ahead of the math.
// A thread reads back only what it copied itself, so the key loop needs no barrier.
//
//   ring[stage][i][k|v][thread]   (a warp's 16-byte slots are contiguous: no bank conflicts)
//
// Quantized pool (fp8/int8, P): a lane's 16-byte slice holds 16 elements, so a key takes half
// the lanes of a bf16 one. q * k is taken in packed f16x2 (q pre-multiplied by the k scale, so
// the products are those of the real values; k codes convert exactly to f16, 8 products per
// half, then summed in fp32): its rounding is far below fp8's own. V slices are widened to
// fp32 in registers; the v scale is applied to the output.
//
// Split-K (finish_decode): each split writes its normalized partial (o, max, sum); the last
// split of a (sequence, head chunk) to finish (a counter in the workspace) merges them.
//
// Overlap with kv_write (sm_90+, programmatic dependent launch): a CTA reads its sequence's
// metadata, q rows and cached keys while kv_write still runs; it waits for kv_write only
// before the keys of this step's tokens, the split counter, or q copied to the workspace.
#include <algorithm>

#include "paged_attention_decode.cuh"

namespace trtc {
namespace pa {
namespace {

constexpr int kThreads = 128;
constexpr int kStages = 3;

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

template <typename P, int D, int GQ, int KPT>
struct DecodeCfg {
  static constexpr int VEC = PoolVec<P>::N;  // pool elements per 16-byte slice
  static constexpr int LPK = D / VEC;        // lanes per key
  static constexpr int KL = kThreads / LPK;  // key lanes
  static constexpr int ITER = KL * KPT;      // keys per CTA iteration
  static constexpr int RING = kStages * KPT * 2 * kThreads * 16;
  static constexpr int MERGE = finish_floats<D, GQ, KL>() * 4;
  static constexpr int SMEM = (RING > MERGE ? RING : MERGE) + kSmemAlign;  // see align_smem
};

// q elements [e0, e0 + N) of a row into floats (16-byte loads of T).
template <typename T, int N>
__device__ __forceinline__ void load_q(const T* row, float (&f)[N]) {
  constexpr int QV = Vec16<T>::N;
  static_assert(N % QV == 0, "a slice is whole q vectors");
#pragma unroll
  for (int j = 0; j < N / QV; ++j) {
    Vec16<T> x;
    x.load_nc(row + j * QV);
    float g[QV];
    x.to_floats(g);
#pragma unroll
    for (int e = 0; e < QV; ++e) f[j * QV + e] = g[e];
  }
}

// HOIST: compute this lane's rotary angles once for its GQ heads (always on quantized pools).
template <typename T, typename P, int D, int GQ, int KPT, bool HOIST>
__global__ void __launch_bounds__(kThreads) decode_kernel(const Args a) {
  using Cfg = DecodeCfg<P, D, GQ, KPT>;
  constexpr int VEC = Cfg::VEC, LPK = Cfg::LPK, KL = Cfg::KL, ITER = Cfg::ITER;
  static_assert(LPK <= 32 && KL >= 1, "bad tiling");
  extern __shared__ __align__(16) unsigned char smem_base[];
  uint4* ring = reinterpret_cast<uint4*>(align_smem(smem_base));  // [kStages][KPT][2][kThreads];
                                                                  // later the merge buffers
  float* sm_o = reinterpret_cast<float*>(ring);  // [KL][GQ][D]
  float* sm_m = sm_o + KL * GQ * D;               // [KL][GQ]
  float* sm_l = sm_m + KL * GQ;
  allow_next_kernel();  // the output projection's GEMV may start loading its weights

  const int hkv = blockIdx.x / a.head_chunks;
  const int chunk = blockIdx.x - hkv * a.head_chunks;
  const int s = blockIdx.y, split = blockIdx.z;
  const int q0 = a.qsl[s], q1 = a.qsl[s + 1];
  const int n = a.seq_lens[s];
  if (q1 <= q0 || q1 - q0 > a.max_decode_qlen) {
    wait_before_exit(a);
    return;
  }
  const int tid = threadIdx.x;
  const int lane = tid % LPK, kl = tid / LPK;
  const int h0 = hkv * a.group + chunk * GQ;
  const int ng = min(GQ, a.group - chunk * GQ);
  const int32_t* bt = a.block_tables + static_cast<int64_t>(s) * a.max_blocks;
  const int64_t slot_stride = static_cast<int64_t>(a.num_kv_heads) * D;
  const P* kp = static_cast<const P*>(a.k_pool) + hkv * D + lane * VEC;
  const P* vp = static_cast<const P*>(a.v_pool) + hkv * D + lane * VEC;
  constexpr bool kQuant = kQuantPool<P>;
  // fp32 path: q carries the softmax scale; f16x2 path: q carries the k scale, scores get
  // the softmax scale after the sum.
  const float qscale = kQuant ? pool_scale(a.kv_scales, 0) : a.scale_log2;
  const float vscale = kQuant ? pool_scale(a.kv_scales, 1) : 1.f;  // a constant: fewer registers
  const int bmask = (1 << a.log2_block) - 1;
  const int e0 = lane * VEC;
  wait_for_write_if(a, a.q_from_write);

  for (int t = q0; t < q1; ++t) {
    const int qpos = a.positions[t];
    int kbeg, kend;
    split_key_range<ITER>(a, n, qpos, split, kbeg, kend);
    const int nit = kend > kbeg ? (kend - kbeg + ITER - 1) / ITER : 0;
    wait_for_write_if(a, kend > n - (q1 - q0));  // keys [n - new tokens, n) come from kv_write

    // Block ids of iteration it's keys (read one iteration before they are needed, so the
    // block-table latency hides behind the math), then the copies of its K/V slices into
    // stage it % kStages (an empty group past the end).
    auto fetch_blocks = [&](int it, int32_t (&blk)[KPT]) {
#pragma unroll
      for (int i = 0; i < KPT; ++i) {
        const int key = kbeg + it * ITER + kl + i * KL;
        blk[i] = it < nit && key < kend ? __ldg(bt + (key >> a.log2_block)) : -1;
      }
    };
    auto issue = [&](int it, const int32_t (&blk)[KPT]) {
      if (it < nit) {
        uint4* st = ring + (it % kStages) * KPT * 2 * kThreads + tid;
#pragma unroll
        for (int i = 0; i < KPT; ++i) {
          const int key = kbeg + it * ITER + kl + i * KL;
          const bool ok = blk[i] >= 0;
          const int64_t slot = (static_cast<int64_t>(ok ? blk[i] : 0) << a.log2_block) | (key & bmask);
          cp_async16(st + (2 * i) * kThreads, kp + slot * slot_stride, ok);
          cp_async16(st + (2 * i + 1) * kThreads, vp + slot * slot_stride, ok);
        }
      }
      cp_async_commit();
    };
    int32_t blk[KPT];
#pragma unroll
    for (int it = 0; it < kStages - 1; ++it) {
      fetch_blocks(it, blk);
      issue(it, blk);
    }
    fetch_blocks(kStages - 1, blk);

    float qf[GQ][VEC];
    // This lane's rotary angles (rot is a multiple of 2; a slice may straddle it), computed
    // once for its GQ heads with kHoist. Over 16-bit pools the hoisted angles (and even `half`
    // kept live from here) take GQ 4 from 127 to 155-168 registers (-Xptxas -v): 3 CTAs/SM
    // instead of 4, which only grids of one wave can afford.
    constexpr bool kHoist = kQuant || HOIST;
    const float qposf = static_cast<float>(qpos);
    auto angle = [&](int c, float& cs, float& sn) {
      const int half = a.rot / 2;
      sincosf(qposf * __ldg(a.inv_freq + (c < half ? c : c - half)), &sn, &cs);
      cs *= a.rotary_scaling;
      sn *= a.rotary_scaling;
    };
    float rc[kHoist ? VEC : 1], rs[kHoist ? VEC : 1];
    if (kHoist && e0 < a.rot) {
#pragma unroll
      for (int e = 0; e < VEC; ++e)
        if (e0 + e < a.rot) angle(e0 + e, rc[kHoist ? e : 0], rs[kHoist ? e : 0]);
    }
#pragma unroll
    for (int g = 0; g < GQ; ++g) {
      if (g < ng) {
        const T* row = static_cast<const T*>(a.q) + static_cast<int64_t>(t) * a.q_stride + (h0 + g) * D;
        load_q<T>(row + e0, qf[g]);
        if (e0 < a.rot) {
          const int half = a.rot / 2;
#pragma unroll
          for (int e = 0; e < VEC; ++e) {
            const int c = e0 + e;
            if (c < a.rot) {
              const bool first = c < half;
              float cs, sn;
              if constexpr (kHoist) {
                cs = rc[e];
                sn = rs[e];
              } else {
                angle(c, cs, sn);
              }
              qf[g][e] = rotate_q_cs<T>(qf[g][e], to_float(row[first ? c + half : c - half]), first,
                                        cs, sn);
            }
          }
        }
#pragma unroll
        for (int e = 0; e < VEC; ++e) qf[g][e] *= qscale;
      } else {
#pragma unroll
        for (int e = 0; e < VEC; ++e) qf[g][e] = 0.f;
      }
    }
    __half2 qh[kQuant ? GQ : 1][VEC / 2];
    if constexpr (kQuant) {
#pragma unroll
      for (int g = 0; g < GQ; ++g)
#pragma unroll
        for (int e = 0; e < VEC / 2; ++e) qh[g][e] = __floats2half2_rn(qf[g][2 * e], qf[g][2 * e + 1]);
    }
    float m[GQ], l[GQ], acc[GQ][VEC];
#pragma unroll
    for (int g = 0; g < GQ; ++g) {
      m[g] = -1e30f;
      l[g] = 0.f;
#pragma unroll
      for (int e = 0; e < VEC; ++e) acc[g][e] = 0.f;
    }

    for (int it = 0; it < nit; ++it) {
      cp_async_wait<kStages - 2>();
      const uint4* st = ring + (it % kStages) * KPT * 2 * kThreads + tid;
      uint4 kr[KPT];
#pragma unroll
      for (int i = 0; i < KPT; ++i) kr[i] = st[(2 * i) * kThreads];
      // The stage overwritten next was read (into registers) in the previous iteration.
      issue(it + kStages - 1, blk);
      fetch_blocks(it + kStages, blk);
      const int kb = kbeg + it * ITER;
      float sc[KPT][GQ];
#pragma unroll
      for (int i = 0; i < KPT; ++i) {
        float dots[GQ];
        if constexpr (kQuant) {
          __half2 kh[VEC / 2];
          to_half2<P>(kr[i], kh);
#pragma unroll
          for (int g = 0; g < GQ; ++g) {
            __half2 h = __hmul2(qh[g][0], kh[0]);
#pragma unroll
            for (int e = 1; e < VEC / 2; ++e) h = __hfma2(qh[g][e], kh[e], h);
            const float2 f = __half22float2(h);
            dots[g] = f.x + f.y;
          }
        } else {
          float kf[VEC];
          PoolVec<P>::to_floats(kr[i], kf);
#pragma unroll
          for (int g = 0; g < GQ; ++g) {
            float d = 0.f;
#pragma unroll
            for (int e = 0; e < VEC; ++e) d = fmaf(qf[g][e], kf[e], d);
            dots[g] = d;
          }
        }
#pragma unroll
        for (int g = 0; g < GQ; ++g) {
          float d = dots[g];
#pragma unroll
          for (int o = LPK / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
          if constexpr (kQuant) d *= a.scale_log2;
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
        PoolVec<P>::to_floats(st[(2 * i + 1) * kThreads], vf);
#pragma unroll
        for (int g = 0; g < GQ; ++g)
#pragma unroll
          for (int e = 0; e < VEC; ++e) acc[g][e] = fmaf(sc[i][g], vf[e], acc[g][e]);
      }
    }
    cp_async_wait<0>();
    __syncthreads();  // every thread is done with its ring before it becomes the merge buffer

    // Merge the key lanes.
#pragma unroll
    for (int g = 0; g < GQ; ++g) {
      if (lane == 0) {
        sm_m[kl * GQ + g] = m[g];
        sm_l[kl * GQ + g] = l[g];
      }
#pragma unroll
      for (int e = 0; e < VEC; ++e) sm_o[(kl * GQ + g) * D + e0 + e] = acc[g][e];
    }
    __syncthreads();
    finish_decode<T, D, GQ, KL, kThreads>(a, sm_o, sm_m, sm_l, t, s, split, h0, ng, vscale);
  }
  wait_before_exit(a);
}

template <typename T, typename P, int D, int GQ, int KPT, bool HOIST = false>
DecodeFn make_fn() {
  constexpr int smem = DecodeCfg<P, D, GQ, KPT>::SMEM;
  static const bool raised = [] {  // > 48 KB of dynamic shared memory needs an opt-in
    return cudaFuncSetAttribute(decode_kernel<T, P, D, GQ, KPT, HOIST>,
                                cudaFuncAttributeMaxDynamicSharedMemorySize, smem) == cudaSuccess;
  }();
  if (!raised) cudaGetLastError();
  return {decode_kernel<T, P, D, GQ, KPT, HOIST>, smem, kThreads};
}

template <typename T, typename P, int D>
DecodeFn decode_fn(int gq, bool hoist) {
  if constexpr (sizeof(T) == 4) {  // fp32 is a correctness path: one head per CTA
    return gq == 1 ? make_fn<T, P, D, 1, 4>() : DecodeFn{nullptr, 0, 0};
  } else {
    switch (gq) {
      case 1: return make_fn<T, P, D, 1, 4>();
      case 4:  // the hoisting variant only where it differs (16-bit pools)
        if constexpr (kQuantPool<P>) return make_fn<T, P, D, 4, 4>();
        else return hoist ? make_fn<T, P, D, 4, 4, true>() : make_fn<T, P, D, 4, 4>();
      case 8:  // not for a quantized pool (pick_gq): 16-element slices would spill
        if constexpr (kQuantPool<P>) return {nullptr, 0, 0};
        else return make_fn<T, P, D, 8, 4>();
      default: return {nullptr, 0, 0};
    }
  }
}

// fused: the tensor-core kernel's fused instantiation (none for CUDA cores).
DecodeFn pick(trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim, int gq, DecodeKind kind,
              bool fused = false) {
  if (mma_kind(kind))
    return decode_mma_fn(dtype, kv_dtype, head_dim, gq, kind, fused);
  if (fused) return {nullptr, 0, 0};
  const bool hoist = kind == DecodeKind::kHoist;
  DecodeFn f{nullptr, 0, 0};
  dispatch_pool(dtype, kv_dtype, [&](auto tag, auto pool_tag) {
    using T = decltype(tag);
    using P = decltype(pool_tag);
    f = head_dim == 64 ? decode_fn<T, P, 64>(gq, hoist) : decode_fn<T, P, 128>(gq, hoist);
    return 0;
  });
  return f;
}

}  // namespace

int launch_decode(const Args& a, trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim, int gq,
                  DecodeKind kind, bool overlap, cudaStream_t stream) {
  if (a.num_seqs == 0) return cudaSuccess;
  const DecodeFn f = pick(dtype, kv_dtype, head_dim, gq, kind, a.fused != 0);
  if (f.fn == nullptr) return cudaErrorNotSupported;
  LaunchOptions o;
  o.smem = static_cast<size_t>(f.smem);
  o.pdl = overlap;
  const dim3 grid(a.num_kv_heads * a.head_chunks, a.num_seqs, a.nsplit);
  // Tensor copies: a tile must lie in one block (blocks of >= 16 slots; key ranges start at
  // multiples of 16, which a sliding window breaks) and fit the maps' int32 coordinates.
  if (f.tma_fn != nullptr && a.log2_block >= 4 && a.sliding_window == 0 && a.pool_slots <= INT_MAX) {
    CUtensorMap tmk, tmv;
    if (pool_tensor_maps(a, head_dim, kv_dtype, kDecodeTileKeys, true, tmk, tmv)) {
      o.smem = static_cast<size_t>(f.tma_smem);
      return launch_ex(f.tma_fn, grid, dim3(f.threads), stream, o, a, tmk, tmv);
    }
  }
  return launch_ex(f.fn, grid, dim3(f.threads), stream, o, a);
}

int decode_keys_per_iter(trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim, int gq,
                         DecodeKind kind) {
  if (mma_kind(kind))
    return decode_mma_keys_per_iter(pick(dtype, kv_dtype, head_dim, gq, kind));
  const int vec = 16 / element_size(kv_dtype);
  return kThreads / (head_dim / vec) * 4;
}

bool decode_fusable(trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim, int gq, DecodeKind kind) {
  return pick(dtype, kv_dtype, head_dim, gq, kind, true).fn != nullptr;
}

int decode_smem_bytes(trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim, int gq, DecodeKind kind) {
  return pick(dtype, kv_dtype, head_dim, gq, kind).smem;
}

int decode_ctas_per_sm(trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim, int gq,
                       DecodeKind kind, bool fused) {
  const DecodeFn f = pick(dtype, kv_dtype, head_dim, gq, kind, fused);
  auto resident = [&](const void* fn, int smem) {
    int n = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, fn, f.threads, smem) != cudaSuccess) {
      cudaGetLastError();
      return 1;
    }
    return n > 0 ? n : 1;
  };
  if (f.fn == nullptr) return 1;
  // Quantized pools: the tensor-copy kernel's residency where it runs (blocks of >= 16 slots, no
  // sliding window; its registers differ: int8 4 x 3, 124 against 152, 4 CTAs a SM against 3).
  if (f.tma_fn != nullptr && kv_dtype != dtype) return resident(reinterpret_cast<const void*>(f.tma_fn), f.tma_smem);
  const int n = resident(reinterpret_cast<const void*>(f.fn), f.smem);
  // A fused kernel of a one-wave plan: the fewer of its two forms' (either may run).
  if (fused && f.tma_fn != nullptr) return std::min(n, resident(reinterpret_cast<const void*>(f.tma_fn), f.tma_smem));
  return n;
}

}  // namespace pa
}  // namespace trtc
