// PagedAttention launcher: plans the call from shapes alone (CUDA-graph and TensorRT-enqueue
// safe: no device->host reads, no allocation), then
//   1. kv_write: rotary on k (fp32 math), k/v -> pool at slot_mapping (16-byte loads), quantized
//      on the way for an fp8/int8 pool (k and v rounded to the activation type first, then
//      sat(round(x / scale)), as the reference does);
//      one extra block zeroes the split counters (unless the caller keeps them:
//      params.split_counters) and computes the prefill tile prefix sums;
//   2. attention: decode kernel (tensor cores for 16-bit pools with 4 or 8 heads per CTA, else
//      CUDA cores; split-K, merged by the last split) and/or tensor-core prefill kernel. Both
//      rotate q as they load it. Where q rows are not 16-byte aligned and the prefill kernel
//      runs, kv_write also stores rotated q to the workspace and the kernels read that instead.
//      On sm_90+ the decode kernel is a programmatic dependent launch: all decode, it starts
//      while kv_write runs; with prefill rows, the prefill kernel runs right after kv_write and
//      the decode kernel starts while its last CTAs run (Args::write_done).
// Fused decode (T == S, tensor-core kernel on a grid of one wave, q rows 16-byte aligned): the
// decode kernel stores the step's k/v itself (see paged_attention_decode_mma.cu); kv_write runs
// only as the planning block, and only where split counters need zeroing (split-K without
// params.split_counters).
//
// Modes (T tokens, S sequences; every scheduled sequence has >= 1 new token):
//   fp16/bf16, T > S : decode kernel takes sequences with 1 new token, prefill kernel the rest.
//   T == S (all decode), or fp32: the decode kernel takes every sequence, looping over its
//                        tokens (fp32 prefill is slow but exact; it exists for correctness checks).
#include <climits>

#include <cstdlib>

#include "../common/tensor_map.h"
#include "paged_attention.cuh"

namespace trtc {
namespace pa {
namespace {

constexpr int kMaxRotaryHalf = 128;
constexpr int kWriteThreads = 128;

// Prefill tile prefix sums (tiles of bm rows) over sequences with >= 2 new tokens (one warp,
// serial over chunks).
__device__ void plan_tiles(const int32_t* qsl, int num_seqs, int32_t* tile_cum, int bm) {
  if (threadIdx.x >= 32 || threadIdx.y != 0) return;
  const int lane = threadIdx.x;
  int carry = 0;
  if (lane == 0) tile_cum[0] = 0;
  for (int base = 0; base < num_seqs; base += 32) {
    const int s = base + lane;
    int tiles = 0;
    if (s < num_seqs) {
      const int q = qsl[s + 1] - qsl[s];
      tiles = q >= 2 ? (q + bm - 1) / bm : 0;
    }
    int incl = tiles;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += y;
    }
    if (s < num_seqs) tile_cum[s + 1] = carry + incl;
    carry += __shfl_sync(0xffffffffu, incl, 31);
  }
}

// The planning block (blockIdx.x == T of the kv_write grid, blockIdx.y == 0).
__device__ void plan_block(const int32_t* qsl, int num_seqs, int32_t* tile_cum, int32_t* split_done,
                           int counters, int tile_rows) {
  if (blockIdx.y != 0) return;
  const int tid = threadIdx.y * blockDim.x + threadIdx.x, nt = blockDim.x * blockDim.y;
  for (int i = tid; i < counters; i += nt) split_done[i] = 0;
  if (tile_cum != nullptr) plan_tiles(qsl, num_seqs, tile_cum, tile_rows);
}

// Where one head row of token t goes: hh in [0, nq) is q (to qbuf, type T), then Hkv of k,
// Hkv of v (to the pool, type P, divided by `scale` and quantized when P is).
template <typename T, typename P>
struct HeadRow {
  const T* src;
  T* qdst;    // q rows, else null
  P* kvdst;   // k/v rows, else null
  int rot;    // rotary dims applied to this row
  float scale;
};

template <typename T, typename P>
__device__ __forceinline__ bool head_row(const trtc_paged_attention_params& p, int t, int hh, int nq,
                                         const T* q, const T* k, const T* v, int64_t slot, T* qbuf,
                                         P* k_pool, P* v_pool, const float* kv_scales,
                                         HeadRow<T, P>& r) {
  const int hkv = p.num_kv_heads, D = p.head_dim;
  r.rot = p.rotary_dim;
  if (hh < nq) {
    r.src = q + static_cast<int64_t>(t) * p.q_stride + hh * D;
    r.qdst = qbuf + (static_cast<int64_t>(t) * p.num_heads + hh) * D;
    r.kvdst = nullptr;
    return true;
  }
  if (slot < 0) return false;  // padding token: nothing to cache
  const bool is_k = hh < nq + hkv;
  const int h = hh - nq - (is_k ? 0 : hkv);
  r.src = is_k ? k + static_cast<int64_t>(t) * p.k_stride + h * D
               : v + static_cast<int64_t>(t) * p.v_stride + h * D;
  r.qdst = nullptr;
  r.kvdst = (is_k ? k_pool : v_pool) + (slot * hkv + h) * D;
  r.scale = kQuantPool<P> ? pool_scale(kv_scales, is_k ? 0 : 1) : 1.f;
  if (!is_k) r.rot = 0;
  return true;
}

// Stores element e (value x) of a head row.
template <typename T, typename P>
__device__ __forceinline__ void put(const HeadRow<T, P>& r, int e, float x) {
  if (r.qdst != nullptr) r.qdst[e] = from_float<T>(x);
  else r.kvdst[e] = to_pool<T, P>(x, r.scale);
}

// Stores elements [e0, e0 + N) of a head row: 16 bytes of T, or N bytes of a quantized pool.
template <typename T, typename P, int N>
__device__ __forceinline__ void put_vec(const HeadRow<T, P>& r, int e0, const float (&f)[N]) {
  if (kQuantPool<P> && r.qdst == nullptr) {
    struct alignas(N * sizeof(P)) Pack { P e[N]; } pk;
#pragma unroll
    for (int i = 0; i < N; ++i) pk.e[i] = to_pool<T, P>(f[i], r.scale);
    *reinterpret_cast<Pack*>(r.kvdst + e0) = pk;
  } else {
    Vec16<T> a;
    a.from_floats(f);
    a.store(r.qdst != nullptr ? r.qdst + e0 : reinterpret_cast<T*>(r.kvdst) + e0);
  }
}

// Scalar fallback (rows not 16-byte aligned, or rotary_dim / 2 not a multiple of 16 bytes).
// Block = (D/2 threads) x (4 heads of one token). Thread j of a rotated head owns the rotary
// pair (j, j + rot/2) when j < rot/2, else two of the trailing D - rot elements. Matches the
// reference up to cos/sin: x*cos + rotate(x)*sin in fp32 without fma contraction.
constexpr int kHeadsPerBlock = 4;

template <typename T, typename P>
__global__ void kv_write_scalar_kernel(trtc_paged_attention_params p, const T* __restrict__ q,
                                       const T* __restrict__ k, const T* __restrict__ v,
                                       const int32_t* __restrict__ positions,
                                       const int32_t* __restrict__ slot_mapping,
                                       const float* __restrict__ inv_freq, T* __restrict__ qbuf,
                                       P* __restrict__ k_pool, P* __restrict__ v_pool,
                                       const float* __restrict__ kv_scales, int nq,
                                       const int32_t* __restrict__ qsl, int32_t* tile_cum,
                                       int32_t* split_done, int counters, int tile_rows,
                                       float2* __restrict__ rot_cs) {
  allow_next_kernel();
  const int t = blockIdx.x;
  if (t == p.num_tokens) {
    plan_block(qsl, p.num_seqs, tile_cum, split_done, counters, tile_rows);
    return;
  }
  const int hh = blockIdx.y * kHeadsPerBlock + threadIdx.y;
  const int j = threadIdx.x;
  if (hh == nq + 2 * p.num_kv_heads) {  // the row of rotary factors, when asked for
    if (rot_cs != nullptr && j < p.rotary_dim / 2)
      rot_cs[static_cast<int64_t>(t) * (p.rotary_dim / 2) + j] =
          rotary_cs(static_cast<float>(positions[t]), inv_freq[j], p.rotary_scaling);
    return;
  }
  if (hh > nq + 2 * p.num_kv_heads) return;
  HeadRow<T, P> r;
  if (!head_row(p, t, hh, nq, q, k, v, slot_mapping[t], qbuf, k_pool, v_pool, kv_scales, r)) return;
  const int half = r.rot / 2;
  if (j < half) {
    const float2 c = rotary_cs(static_cast<float>(positions[t]), inv_freq[j], p.rotary_scaling);
    const float cs = c.x, sn = c.y;
    const float x1 = to_float(r.src[j]), x2 = to_float(r.src[j + half]);
    put(r, j, __fadd_rn(__fmul_rn(x1, cs), __fmul_rn(-x2, sn)));
    put(r, j + half, __fadd_rn(__fmul_rn(x2, cs), __fmul_rn(x1, sn)));
  } else {
    const int e = r.rot + 2 * (j - half);
    put(r, e, to_float(r.src[e]));
    put(r, e + 1, to_float(r.src[e + 1]));
  }
}

// 16-byte path: one block per token, threads over the 16-byte vectors of its head rows. A
// thread owning vector e0 < rot/2 also owns its rotary partner e0 + rot/2. The token's rotary
// factors are computed once, in shared memory.
template <typename T, typename P>
__global__ void __launch_bounds__(kWriteThreads)
    kv_write_kernel(trtc_paged_attention_params p, const T* __restrict__ q, const T* __restrict__ k,
                    const T* __restrict__ v, const int32_t* __restrict__ positions,
                    const int32_t* __restrict__ slot_mapping, const float* __restrict__ inv_freq,
                    T* __restrict__ qbuf, P* __restrict__ k_pool, P* __restrict__ v_pool,
                    const float* __restrict__ kv_scales, int nq,
                    const int32_t* __restrict__ qsl, int32_t* tile_cum, int32_t* split_done,
                    int counters, int tile_rows, float2* __restrict__ rot_cs) {
  constexpr int VEC = Vec16<T>::N;
  allow_next_kernel();
  const int t = blockIdx.x;
  if (t == p.num_tokens) {
    plan_block(qsl, p.num_seqs, tile_cum, split_done, counters, tile_rows);
    return;
  }
  // The token's rotary factors, once for all its heads (and to rot_cs for the prefill kernels).
  __shared__ float2 s_cs[kMaxRotaryHalf];
  const float pos = static_cast<float>(positions[t]);
  for (int j = threadIdx.x; j < p.rotary_dim / 2; j += kWriteThreads) {
    s_cs[j] = rotary_cs(pos, __ldg(inv_freq + j), p.rotary_scaling);
    if (rot_cs != nullptr) rot_cs[static_cast<int64_t>(t) * (p.rotary_dim / 2) + j] = s_cs[j];
  }
  __syncthreads();
  const int nv = p.head_dim / VEC;
  const int total = (nq + 2 * p.num_kv_heads) * nv;
  const int64_t slot = slot_mapping[t];
  for (int idx = threadIdx.x; idx < total; idx += kWriteThreads) {
    const int hh = idx / nv, e0 = (idx - hh * nv) * VEC;
    HeadRow<T, P> r;
    if (!head_row(p, t, hh, nq, q, k, v, slot, qbuf, k_pool, v_pool, kv_scales, r)) continue;
    const int half = r.rot / 2;
    if (e0 < half) {
      Vec16<T> a, b;
      a.load_nc(r.src + e0);
      b.load_nc(r.src + e0 + half);
      float x1[VEC], x2[VEC], y1[VEC], y2[VEC];
      a.to_floats(x1);
      b.to_floats(x2);
#pragma unroll
      for (int i = 0; i < VEC; ++i) {
        const float cs = s_cs[e0 + i].x, sn = s_cs[e0 + i].y;
        y1[i] = __fadd_rn(__fmul_rn(x1[i], cs), __fmul_rn(-x2[i], sn));
        y2[i] = __fadd_rn(__fmul_rn(x2[i], cs), __fmul_rn(x1[i], sn));
      }
      put_vec(r, e0, y1);
      put_vec(r, e0 + half, y2);
    } else if (e0 >= r.rot) {
      Vec16<T> a;
      a.load_nc(r.src + e0);
      if (kQuantPool<P> && r.qdst == nullptr) {
        float x[VEC];
        a.to_floats(x);
        put_vec(r, e0, x);
      } else {
        a.store(r.qdst != nullptr ? r.qdst + e0 : reinterpret_cast<T*>(r.kvdst) + e0);
      }
    }
  }
}

struct Plan {
  bool prefill;
  int max_decode_qlen, gq, head_chunks, nsplit, tile_rows, tile_bound;
  DecodeKind kind;  // tensor cores or CUDA cores; the wide/hoisted variant where one wave
  bool fusable;     // fused decode may run: the decode grid fits one wave of the kernel of
                    // `kind` (16-bit pools: see the 4-warp kernel's rule in make_plan)
  int counters;  // split counters: S * Hkv * head_chunks
  size_t q_off, cs_off, cum_off, done_off, ml_off, o_off, total;
};

size_t align256(size_t x) { return (x + 255) & ~static_cast<size_t>(255); }

// Programmatic dependent launch needs sm_90+.
bool can_overlap() { return device_capability() >= 90; }

// Query heads per decode CTA. A quantized pool gives each lane 16 elements (not 8): at most
// 4 heads keep q and the accumulators in registers.
int pick_gq(int group, trtc_dtype dtype, trtc_dtype kv_dtype) {
  if (dtype == TRTC_F32) return 1;
  if (group == 1) return 1;
  return group <= 4 || kv_dtype != dtype ? 4 : 8;
}

// The tensor-core decode kernel where it exists (fp16/bf16 activations; pools of the activation
// type, fp8 or int8; 4 or 8 heads per CTA), unless TRTC_PA_DECODE_LEGACY=1 (tuning override,
// for benchmarks).
bool use_mma_decode(const trtc_paged_attention_params& p, int gq) {
  const char* legacy = getenv("TRTC_PA_DECODE_LEGACY");
  return decode_mma_exists(p.dtype, p.kv_dtype, p.head_dim, gq) &&
         !(legacy != nullptr && atoi(legacy) == 1);
}

// Fused decode (Args::fused) for this plan and q: all decode, a grid of one wave on tensor cores
// (where a launch less matters; on many waves the fused kernel measured ~4% slower on H100; 16-bit
// pools at head_dim 64: up to one and a half, see make_plan): the 8-warp kernel, or for 16-bit
// pools the 4-warp one, unless TRTC_PA_DECODE_FUSED=0 (tuning override, for benchmarks).
bool use_fused_decode(const trtc_paged_attention_params& p, const Plan& pl, bool q_direct) {
  const char* v = getenv("TRTC_PA_DECODE_FUSED");
  const bool kind = pl.kind == DecodeKind::kMmaWide || (pl.kind == DecodeKind::kMma && p.kv_dtype == p.dtype);
  return p.num_tokens == p.num_seqs && kind && pl.fusable && q_direct &&
         decode_fusable(p.dtype, p.kv_dtype, p.head_dim, pl.gq, pl.kind) &&
         !(v != nullptr && atoi(v) == 0);
}

Plan make_plan(const trtc_paged_attention_params& p) {
  Plan pl{};
  const int T = p.num_tokens, S = p.num_seqs;
  const int group = p.num_heads / p.num_kv_heads;
  pl.prefill = p.dtype != TRTC_F32 && T > S;
  pl.max_decode_qlen = pl.prefill ? 1 : INT_MAX;
  pl.gq = pick_gq(group, p.dtype, p.kv_dtype);
  pl.head_chunks = (group + pl.gq - 1) / pl.gq;
  pl.nsplit = 1;
  const bool mma = use_mma_decode(p, pl.gq);
  const DecodeKind wide = mma ? DecodeKind::kMmaWide : DecodeKind::kHoist;  // grids of one wave
  const DecodeKind lean = mma ? DecodeKind::kMma : DecodeKind::kLean;
  DecodeKind chosen = lean;  // the variant the quantized-pool planning chose (chosen_set)
  bool chosen_set = false;
  // Split-K only where partials are per sequence (fast mode) or T == S (all decode).
  const char* force = getenv("TRTC_PA_NSPLIT");  // tuning override, e.g. for benchmarks
  if (force != nullptr && (pl.prefill || T == S)) {
    pl.nsplit = std::max(1, std::min(kMaxSplits, atoi(force)));
  } else if (pl.prefill || T == S) {
    // Pick the split count minimizing (waves of CTAs) x (keys per CTA + a fixed cost of two iterations); ties go
    // to fewer splits. Context is bounded by the block table width (shapes only).
    const long base = static_cast<long>(S) * p.num_kv_heads * pl.head_chunks;
    long ctx = static_cast<long>(p.max_blocks_per_seq) * p.block_size;
    if (p.sliding_window > 0 && p.sliding_window < ctx) ctx = p.sliding_window;
    // Tensor-core kernel: each split also costs about 16 keys (its partial, the serial merge;
    // H100, B=1 ctx 4096: 16 splits 13.8 us, 32 splits 14.7 us).
    const long per_split = mma ? 16 : 0;
    const long sms = sm_count();
    // At most 32 splits: the last split merges them serially (64 cost 3.3x SDPA at B=1).
    auto max_splits = [&](long iter) {
      return std::max<long>(1, std::min<long>(32, (ctx + iter - 1) / iter));
    };
    // Keys per CTA with n splits, in whole iterations.
    auto split_keys = [&](long iter, long n) {
      return ((ctx + n - 1) / n + iter - 1) / iter * iter;
    };
    // per_sm: CTAs a SM counted as one wave (0: as many as fit).
    auto best_split = [&](DecodeKind kind, long& waves, long per_sm) {
      const long slots =
          sms * (per_sm > 0 ? per_sm : decode_ctas_per_sm(p.dtype, p.kv_dtype, p.head_dim, pl.gq, kind));
      const long iter = decode_keys_per_iter(p.dtype, p.kv_dtype, p.head_dim, pl.gq, kind);
      long best_cost = LONG_MAX;
      int best = 1;
      waves = 1;
      for (long n = 1; base > 0 && n <= max_splits(iter); ++n) {
        const long w = (base * n + slots - 1) / slots;
        const long cost = w * (split_keys(iter, n) + 2 * iter) + n * per_split;
        if (cost < best_cost) {
          best_cost = cost;
          best = static_cast<int>(n);
          waves = w;
        }
      }
      return best;
    };
    // Quantized pools on tensor cores: the (variant, split count) of least cost, the wide
    // variant on ties. Each SM runs ceil(CTAs / SMs) CTAs, ctas_per_sm at a time, and a round of
    // k CTAs streams its keys at a rate that grows with the bytes its copy rings keep in flight,
    // up to kSatBytes (H100: one 4-warp fp8 CTA, 48 KB, streams at about half the rate of 96 KB):
    // keys * max(k * ring, kSatBytes) / ring per round. Waves alone misjudge these kernels,
    // whose lean variant fits 3 CTAs per SM: 512 CTAs at ctx 4096 made 1.3 waves, the planner
    // split them 3 ways (229.9 us), where the wide variant unsplit takes 210.0 (H100, before the
    // direct path). The wide variant only where its grid is one wave: a SM running it more than
    // once lost to the lean one in every case measured on the H200 (session 27 calls 5-8, fp8,
    // GQA 32/8: head_dim 64 B=32 ctx 1024 25.0 vs 21.9 us split in two, ctx 2048 39.1 vs 32.7;
    // head_dim 128 B=64 ctx 2048 92.1 vs 78.0 unsplit).
    auto best_quantized = [&](DecodeKind& kind) {
      constexpr long kSatBytes = 96 * 1024;
      long best_cost = LONG_MAX;
      int best = 1;
      for (const DecodeKind k : {wide, lean}) {
        const long per_sm = decode_ctas_per_sm(p.dtype, p.kv_dtype, p.head_dim, pl.gq, k);
        const long ring = decode_smem_bytes(p.dtype, p.kv_dtype, p.head_dim, pl.gq, k);
        const long iter = decode_keys_per_iter(p.dtype, p.kv_dtype, p.head_dim, pl.gq, k);
        for (long n = 1; base > 0 && ring > 0 && n <= max_splits(iter); ++n) {
          const long keys = split_keys(iter, n) + 2 * iter;
          const long c = (base * n + sms - 1) / sms;  // CTAs of the busiest SM
          if (k == wide && c > per_sm) continue;
          auto round = [&](long ctas) { return keys * std::max(ctas * ring, kSatBytes) / ring; };
          const long cost = n * per_split + c / per_sm * round(per_sm) +
                            (c % per_sm > 0 ? round(c % per_sm) : 0);
          if (cost < best_cost) {
            best_cost = cost;
            best = static_cast<int>(n);
            kind = k;
          }
        }
      }
      return best;
    };
    if (mma && p.kv_dtype != p.dtype) {
      pl.nsplit = best_quantized(chosen);
      chosen_set = true;
    } else {
      // 16-bit pools and CUDA cores: planned for the one-wave variant (fewer resident CTAs:
      // CUDA cores hoisting the angles, tensor cores with 8 warps) first; where that plan needs
      // more than one wave, for the lean one (B=16 ctx 4096: 3 hoisted splits beat 4 lean).
      // Splits of a grid of at most one CTA a SM (16-bit pools on tensor cores): the 8-warp
      // kernel streams about as fast alone on a SM as two of it do, so splits are counted one CTA
      // a SM to a wave; two a SM ran slower than one unsplit (H200, GQA 32/8, bf16, session 27
      // calls 5-6: head_dim 64 B=16 ctx 512 13.8 -> 8.4 us, ctx 1024 18.1 -> 12.8, B=4 ctx 2048
      // 13.8 -> 10.2; head_dim 128 unchanged).
      const long wide_per_sm = mma && p.kv_dtype == p.dtype && base <= sms ? 1 : 0;
      long waves = 0;
      pl.nsplit = best_split(wide, waves, wide_per_sm);
      if (waves > 1) pl.nsplit = best_split(lean, waves, 0);
      // Three or more waves of at most 1024 keys a CTA, head_dim 128, on sm_90: three CTAs per SM
      // with rings of two stages (H200, tensor copies, GQA 32/8: B=256 ctx 256 78.6 vs 84.6 us,
      // ctx 512 136.7 vs 140.7, B=192 ctx 512 105.2 vs 108.2, B=96 ctx 1024 99.2 vs 100.6; slower
      // on longer ranges, B=128 ctx 4096 495.0 vs 487.2, and on fewer waves, B=64 ctx 1024 75.9
      // vs 69.3). At head_dim 64 (stages of half the bytes) it lost from 256 keys on: B=256
      // ctx 256 44.5 vs 42.9, ctx 512 75.2 vs 73.1.
      const long lean_iter = decode_keys_per_iter(p.dtype, p.kv_dtype, p.head_dim, pl.gq, lean);
      if (mma && device_capability() == 90 && p.head_dim == 128 && waves >= 3 &&
          split_keys(lean_iter, pl.nsplit) <= 1024) {
        chosen = DecodeKind::kMmaShallow;
        chosen_set = true;
      }
    }
  }
  // The one-wave variant wherever the grid fits its one wave (quantized pools on tensor cores:
  // the variant chosen above).
  const long decode_ctas = static_cast<long>(S) * p.num_kv_heads * pl.head_chunks * pl.nsplit;
  const bool one_wave =
      decode_ctas <= static_cast<long>(sm_count()) *
                         decode_ctas_per_sm(p.dtype, p.kv_dtype, p.head_dim, pl.gq, wide);
  pl.fusable = one_wave;
  pl.kind = chosen_set ? chosen : one_wave ? wide : lean;
  // 16-bit pools on tensor cores, a grid of more CTAs than SMs that one wave of the 4-warp kernel
  // holds: that kernel, fused (H200, GQA 32/8, bf16 pool, session 27 calls 5 and 8, against the
  // 8-warp fused kernel or the 4-warp one after kv_write: head_dim 128 B=32 ctx 512 22.9 vs 25.1
  // us, ctx 1024 38.4 vs 40.3; head_dim 64 B=32 ctx 512 13.0 vs 15.4). At head_dim 64 also a
  // grid of up to one and a half waves of it, where the launch it saves outweighs the part-wave
  // (session 28 call 11, against the 4-warp kernel after kv_write: B=64, 1.3 waves, ctx 256
  // 13.8 vs 15.0 us, ctx 512 22.5 vs 23.7, ctx 1024 37.0 vs 38.1; B=96, 1.9 waves, no gain). At
  // head_dim 128 (B=48 and 64: 1.5 and 1.9 waves) it was up to 1.0 us slower.
  if (!chosen_set && mma && p.kv_dtype == p.dtype && decode_ctas > sm_count()) {
    const long slots = static_cast<long>(sm_count()) *
                       decode_ctas_per_sm(p.dtype, p.kv_dtype, p.head_dim, pl.gq, lean, true);
    if (decode_ctas <= (p.head_dim == 64 ? slots * 3 / 2 : slots)) {
      pl.kind = lean;
      pl.fusable = true;
    }
  }
  const long P = std::min<long>(S, T / 2);
  pl.tile_rows = prefill_tile_rows(p.dtype, p.kv_dtype, p.scale, p.head_dim,
                                   static_cast<long>(p.max_blocks_per_seq) * p.block_size);
  pl.tile_bound = static_cast<int>((T + P * (pl.tile_rows - 1)) / pl.tile_rows + 1);
  const size_t elt = static_cast<size_t>(element_size(p.dtype));
  pl.q_off = 0;
  pl.cs_off = align256(static_cast<size_t>(T) * p.num_heads * p.head_dim * elt);
  // rotary factors of the prefill kernels: [T, rotary_dim / 2] float2
  const size_t cs_bytes = pl.prefill ? static_cast<size_t>(T) * (p.rotary_dim / 2) * sizeof(float2) : 0;
  pl.cum_off = pl.cs_off + align256(cs_bytes);
  pl.counters = pl.nsplit > 1 ? S * p.num_kv_heads * pl.head_chunks : 0;
  pl.done_off = pl.cum_off + align256(static_cast<size_t>(S + 1) * sizeof(int32_t));
  pl.ml_off = pl.done_off + align256(static_cast<size_t>(pl.counters) * sizeof(int32_t));
  size_t parts = pl.nsplit > 1 ? static_cast<size_t>(S) * p.num_heads * pl.nsplit : 0;
  pl.o_off = pl.ml_off + align256(parts * 2 * sizeof(float));
  pl.total = pl.o_off + align256(parts * p.head_dim * sizeof(float));
  return pl;
}

bool valid(const trtc_paged_attention_params* p) {
  return p && p->num_tokens >= 0 && p->num_seqs >= 0 && p->num_heads > 0 &&
         p->num_kv_heads > 0 && p->num_heads % p->num_kv_heads == 0 && p->block_size > 0 &&
         (p->block_size & (p->block_size - 1)) == 0 && p->max_blocks_per_seq > 0 &&
         p->rotary_dim >= 0 && p->rotary_dim % 2 == 0 && p->rotary_dim <= p->head_dim &&
         p->rotary_dim / 2 <= kMaxRotaryHalf && p->sliding_window >= 0 &&
         (p->num_seqs > 0 || p->num_tokens == 0);
}

bool quantized_pool(const trtc_paged_attention_params* p) {
  return p->kv_dtype == TRTC_FP8_E4M3 || p->kv_dtype == TRTC_INT8;
}

bool supported(const trtc_paged_attention_params* p) {
  const bool float_type = p->dtype == TRTC_F32 || p->dtype == TRTC_F16 || p->dtype == TRTC_BF16;
  return float_type && (p->kv_dtype == p->dtype || quantized_pool(p)) &&
         (p->head_dim == 64 || p->head_dim == 128);
}

int log2i(int x) {
  int r = 0;
  while ((1 << r) < x) ++r;
  return r;
}

}  // namespace

bool pool_tensor_maps(const Args& a, int head_dim, trtc_dtype kv_dtype, int box_rows, bool whole_rows,
                      CUtensorMap& tmk, CUtensorMap& tmv) {
  const int elem = element_size(kv_dtype);
  const CUtensorMapDataType type = kv_dtype == TRTC_BF16  ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                   : kv_dtype == TRTC_F16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16
                                                          : CU_TENSOR_MAP_DATA_TYPE_UINT8;
  const uint64_t row = static_cast<uint64_t>(head_dim) * elem;  // bytes
  const uint64_t line = 128 / elem, lines = row / 128, hkv = static_cast<uint64_t>(a.num_kv_heads);
  const uint64_t slots = static_cast<uint64_t>(a.pool_slots);
  const uint32_t rows = static_cast<uint32_t>(box_rows);
  // 3D: (column, kv head, slot); 4D: (column in the line, line, kv head, slot)
  TensorMapNd d = whole_rows ? TensorMapNd{nullptr, type, 4, {line, lines, hkv, slots}, {128, row, hkv * row},
                                           {static_cast<uint32_t>(line), static_cast<uint32_t>(lines), 1, rows}}
                             : TensorMapNd{nullptr, type, 3, {static_cast<uint64_t>(head_dim), hkv, slots},
                                           {row, hkv * row}, {static_cast<uint32_t>(line), 1, rows}};
  d.swizzle = CU_TENSOR_MAP_SWIZZLE_128B;
  d.promotion = CU_TENSOR_MAP_L2_PROMOTION_L2_128B;
  TensorMapNd dv = d;
  d.base = a.k_pool;
  dv.base = a.v_pool;
  return tensor_map(d, tmk) && tensor_map(dv, tmv);
}

}  // namespace pa
}  // namespace trtc

extern "C" size_t trtc_paged_attention_workspace_size(const trtc_paged_attention_params* p) {
  if (!trtc::pa::valid(p) || !trtc::pa::supported(p)) return 0;
  return trtc::pa::make_plan(*p).total;
}

extern "C" int trtc_paged_attention(const trtc_paged_attention_params* p, const void* q,
                                    const void* k, const void* v, const int32_t* positions,
                                    const int32_t* query_start_loc, const int32_t* seq_lens,
                                    const int32_t* block_tables, const int32_t* slot_mapping,
                                    void* kv_cache_layer, const float* inv_freq,
                                    const float* kv_scales, void* out, void* workspace,
                                    size_t workspace_size, cudaStream_t stream) {
  using namespace trtc::pa;
  if (!valid(p)) return cudaErrorInvalidValue;
  if (!supported(p)) return cudaErrorNotSupported;
  if (quantized_pool(p) != (kv_scales != nullptr)) return cudaErrorInvalidValue;
  if (p->rotary_dim > 0 && inv_freq == nullptr) return cudaErrorInvalidValue;
  if (p->num_tokens == 0) return cudaSuccess;
  const Plan pl = make_plan(*p);
  if (workspace == nullptr || workspace_size < pl.total) return cudaErrorInvalidValue;

  char* ws = static_cast<char*>(workspace);
  const size_t elt = static_cast<size_t>(trtc::element_size(p->dtype));
  const size_t pool_half = static_cast<size_t>(p->num_blocks) * p->block_size * p->num_kv_heads *
                           p->head_dim * trtc::element_size(p->kv_dtype);
  char* k_pool = static_cast<char*>(kv_cache_layer);
  char* v_pool = k_pool + pool_half;

  // The attention kernels load q rows with 16-byte accesses; where it cannot, q goes through the
  // workspace (rotated by kv_write) and nothing rotates on load.
  const int vec = 16 / static_cast<int>(elt);
  const bool q_direct = trtc::aligned16(q) && p->q_stride % vec == 0;
  const int nq = q_direct ? 0 : p->num_heads;
  void* qbuf = ws + pl.q_off;
  Args a{};
  a.q = q_direct ? q : qbuf;
  a.q_from_write = q_direct ? 0 : 1;
  a.q_stride = q_direct ? p->q_stride : p->num_heads * p->head_dim;
  a.rot = q_direct ? p->rotary_dim : 0;
  a.inv_freq = inv_freq;
  float2* rot_cs = pl.prefill && a.rot > 0 ? reinterpret_cast<float2*>(ws + pl.cs_off) : nullptr;
  a.rot_cs = rot_cs;
  a.rotary_scaling = p->rotary_scaling;
  a.k_pool = k_pool;
  a.v_pool = v_pool;
  a.pool_slots = static_cast<int64_t>(p->num_blocks) * p->block_size;
  a.kv_scales = kv_scales;
  a.positions = positions;
  a.qsl = query_start_loc;
  a.seq_lens = seq_lens;
  a.block_tables = block_tables;
  a.tile_cum = reinterpret_cast<const int32_t*>(ws + pl.cum_off);
  a.out = out;
  a.part_ml = pl.nsplit > 1 ? reinterpret_cast<float*>(ws + pl.ml_off) : nullptr;
  a.part_o = pl.nsplit > 1 ? reinterpret_cast<float*>(ws + pl.o_off) : nullptr;
  // Split counters: the caller's (zero, and left zero), else the workspace's (zeroed by kv_write).
  const bool own_counters = p->split_counters != nullptr;
  a.split_done = own_counters ? p->split_counters : reinterpret_cast<int32_t*>(ws + pl.done_off);
  const int zero_counters = own_counters ? 0 : pl.counters;
  a.num_tokens = p->num_tokens;
  a.num_seqs = p->num_seqs;
  a.num_heads = p->num_heads;
  a.num_kv_heads = p->num_kv_heads;
  a.group = p->num_heads / p->num_kv_heads;
  a.log2_block = log2i(p->block_size);
  a.max_blocks = p->max_blocks_per_seq;
  a.sliding_window = p->sliding_window;
  a.scale_log2 = p->scale * 1.4426950408889634f;
  a.nsplit = pl.nsplit;
  a.max_decode_qlen = pl.max_decode_qlen;
  a.head_chunks = pl.head_chunks;
  a.fused = use_fused_decode(*p, pl, q_direct) ? 1 : 0;
  a.k_new = k;
  a.v_new = v;
  a.k_stride = p->k_stride;
  a.v_stride = p->v_stride;
  a.slot_mapping = slot_mapping;

  const bool kv_vec = trtc::aligned16(q) && trtc::aligned16(k) && trtc::aligned16(v) &&
                      p->q_stride % vec == 0 && p->k_stride % vec == 0 &&
                      p->v_stride % vec == 0 && (p->rotary_dim / 2) % vec == 0;
  int32_t* tile_cum = pl.prefill ? const_cast<int32_t*>(a.tile_cum) : nullptr;
  int err = dispatch_pool(p->dtype, p->kv_dtype, [&](auto tag, auto pool_tag) {
    using T = decltype(tag);
    using P = decltype(pool_tag);
    const auto* qt = static_cast<const T*>(q);
    const auto* kt = static_cast<const T*>(k);
    const auto* vt = static_cast<const T*>(v);
    auto* kp = reinterpret_cast<P*>(k_pool);
    auto* vp = reinterpret_cast<P*>(v_pool);
    const unsigned blocks = static_cast<unsigned>(p->num_tokens + 1);
    if (a.fused) {  // the planning block alone (as block 0 of no tokens), where counters need it
      if (zero_counters == 0) return 0;
      trtc_paged_attention_params none = *p;
      none.num_tokens = 0;
      kv_write_kernel<T, P><<<1, kWriteThreads, 0, stream>>>(
          none, qt, kt, vt, positions, slot_mapping, inv_freq, static_cast<T*>(qbuf), kp, vp,
          kv_scales, nq, query_start_loc, tile_cum, a.split_done, zero_counters, pl.tile_rows,
          rot_cs);
    } else if (kv_vec) {
      kv_write_kernel<T, P><<<blocks, kWriteThreads, 0, stream>>>(
          *p, qt, kt, vt, positions, slot_mapping, inv_freq, static_cast<T*>(qbuf), kp, vp,
          kv_scales, nq,
          query_start_loc, tile_cum, a.split_done, zero_counters, pl.tile_rows, rot_cs);
    } else {
      const int rows = nq + 2 * p->num_kv_heads + (rot_cs != nullptr ? 1 : 0);
      const dim3 grid(blocks, (rows + kHeadsPerBlock - 1) / kHeadsPerBlock);
      kv_write_scalar_kernel<T, P><<<grid, dim3(p->head_dim / 2, kHeadsPerBlock), 0, stream>>>(
          *p, qt, kt, vt, positions, slot_mapping, inv_freq, static_cast<T*>(qbuf), kp, vp,
          kv_scales, nq,
          query_start_loc, tile_cum, a.split_done, zero_counters, pl.tile_rows, rot_cs);
    }
    return static_cast<int>(cudaGetLastError());
  });
  if (err) return err;
  if (pl.prefill) {  // prefill kernel first; the decode kernel fills in behind its last CTAs
    if ((err = launch_prefill(a, p->dtype, p->kv_dtype, p->head_dim, pl.tile_bound, stream)))
      return err;
    a.write_done = 1;
    return launch_decode(a, p->dtype, p->kv_dtype, p->head_dim, pl.gq, pl.kind, can_overlap(),
                         stream);
  }
  const bool after_write = !a.fused || zero_counters > 0;  // a kv_write launch precedes it
  if ((err = launch_decode(a, p->dtype, p->kv_dtype, p->head_dim, pl.gq, pl.kind,
                           can_overlap() && after_write, stream)))
    return err;
  return cudaSuccess;
}
