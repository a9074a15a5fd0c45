// PagedAttention launcher: plans the call from shapes alone (CUDA-graph and TensorRT-enqueue
// safe: no device->host reads, no allocation), then
//   1. rotary_write: rotary on q and k (fp32 math), q -> workspace, k/v -> pool at slot_mapping;
//      one extra block computes the prefill tile prefix sums when the prefill kernel runs;
//   2. attention: decode kernel (split-K + reduce) and/or tensor-core prefill kernel.
//
// Modes (T tokens, S sequences; every scheduled sequence has >= 1 new token):
//   fp16/bf16, T > S : decode kernel takes sequences with 1 new token, prefill kernel the rest.
//   T == S (all decode), or fp32: the decode kernel takes every sequence, looping over its
//                        tokens (fp32 prefill is slow but exact; it exists for correctness checks).
#include <climits>

#include <cstdlib>

#include "paged_attention.cuh"

namespace trtc {
namespace pa {
namespace {

constexpr int kMaxRotaryHalf = 128;


// Prefill tile prefix sums over sequences with >= 2 new tokens (one warp, serial over chunks).
__device__ void plan_tiles(const int32_t* qsl, int num_seqs, int32_t* tile_cum) {
  if (threadIdx.x >= 32) return;
  const int lane = threadIdx.x;
  int carry = 0;
  if (lane == 0) tile_cum[0] = 0;
  for (int base = 0; base < num_seqs; base += 32) {
    const int s = base + lane;
    int tiles = 0;
    if (s < num_seqs) {
      const int q = qsl[s + 1] - qsl[s];
      tiles = q >= 2 ? (q + kPrefillBlockM - 1) / kPrefillBlockM : 0;
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

constexpr int kHeadsPerBlock = 4;

// Block = (D/2 threads) x (4 heads of one token); heads [0, Hq) are q, then Hkv of k, Hkv of v.
// Thread j of a rotated head owns the rotary pair (j, j + rot/2) when j < rot/2, else two of
// the trailing D - rot elements. Matches the reference up to cos/sin: x*cos + rotate(x)*sin
// in fp32 without fma contraction.
template <typename T>
__global__ void rotary_write_kernel(trtc_paged_attention_params p, const T* __restrict__ q,
                                    const T* __restrict__ k, const T* __restrict__ v,
                                    const int32_t* __restrict__ positions,
                                    const int32_t* __restrict__ slot_mapping,
                                    const float* __restrict__ inv_freq, T* __restrict__ qbuf,
                                    T* __restrict__ k_pool, T* __restrict__ v_pool,
                                    const int32_t* __restrict__ qsl, int32_t* __restrict__ tile_cum) {
  const int t = blockIdx.x;
  if (t == p.num_tokens) {  // the planning block
    if (blockIdx.y == 0 && threadIdx.y == 0) plan_tiles(qsl, p.num_seqs, tile_cum);
    return;
  }
  const int hh = blockIdx.y * kHeadsPerBlock + threadIdx.y;
  const int hq = p.num_heads, hkv = p.num_kv_heads, D = p.head_dim;
  if (hh >= hq + 2 * hkv) return;
  const T* src;
  T* dst;
  int rot = p.rotary_dim;
  if (hh < hq) {
    src = q + static_cast<int64_t>(t) * p.q_stride + hh * D;
    dst = qbuf + (static_cast<int64_t>(t) * hq + hh) * D;
  } else {
    const int64_t slot = slot_mapping[t];
    if (slot < 0) return;  // padding token: nothing to cache
    const bool is_k = hh < hq + hkv;
    const int h = hh - hq - (is_k ? 0 : hkv);
    src = is_k ? k + static_cast<int64_t>(t) * p.k_stride + h * D
               : v + static_cast<int64_t>(t) * p.v_stride + h * D;
    dst = (is_k ? k_pool : v_pool) + (slot * hkv + h) * D;
    if (!is_k) rot = 0;
  }
  const int j = threadIdx.x, half = rot / 2;
  if (j < half) {
    const float f = static_cast<float>(positions[t]) * inv_freq[j];
    float sn, cs;
    sincosf(f, &sn, &cs);
    cs *= p.rotary_scaling;
    sn *= p.rotary_scaling;
    const float x1 = to_float(src[j]), x2 = to_float(src[j + half]);
    dst[j] = from_float<T>(__fadd_rn(__fmul_rn(x1, cs), __fmul_rn(-x2, sn)));
    dst[j + half] = from_float<T>(__fadd_rn(__fmul_rn(x2, cs), __fmul_rn(x1, sn)));
  } else {
    const int e = rot + 2 * (j - half);
    dst[e] = src[e];
    dst[e + 1] = src[e + 1];
  }
}

struct Plan {
  bool prefill;
  int max_decode_qlen, gq, head_chunks, nsplit, tile_bound;
  size_t q_off, cum_off, ml_off, o_off, total;
};

size_t align256(size_t x) { return (x + 255) & ~static_cast<size_t>(255); }

int num_sms() {
  int device = 0, sms = 132;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    cudaGetLastError();
    sms = 132;
  }
  return sms;
}

int pick_gq(int group, trtc_dtype dtype) {
  if (dtype == TRTC_F32) return 1;
  if (group == 1) return 1;
  return group <= 4 ? 4 : 8;
}

Plan make_plan(const trtc_paged_attention_params& p) {
  Plan pl{};
  const int T = p.num_tokens, S = p.num_seqs;
  const int group = p.num_heads / p.num_kv_heads;
  pl.prefill = p.dtype != TRTC_F32 && T > S;
  pl.max_decode_qlen = pl.prefill ? 1 : INT_MAX;
  pl.gq = pick_gq(group, p.dtype);
  pl.head_chunks = (group + pl.gq - 1) / pl.gq;
  pl.nsplit = 1;
  // Split-K only where partials are per sequence (fast mode) or T == S (all decode).
  const char* force = getenv("TRTC_PA_NSPLIT");  // tuning override, e.g. for benchmarks
  if (force != nullptr && (pl.prefill || T == S)) {
    pl.nsplit = std::max(1, std::min(kMaxSplits, atoi(force)));
  } else if (pl.prefill || T == S) {
    // Pick the split count minimizing (waves of CTAs) x (keys per CTA + a fixed cost of two iterations); ties go
    // to fewer splits. Context is bounded by the block table width (shapes only).
    const long base = static_cast<long>(S) * p.num_kv_heads * pl.head_chunks;
    const long slots = static_cast<long>(num_sms()) * decode_ctas_per_sm(p.dtype, p.head_dim, pl.gq);
    const long iter = decode_keys_per_iter(p.dtype, p.head_dim, pl.gq);
    long ctx = static_cast<long>(p.max_blocks_per_seq) * p.block_size;
    if (p.sliding_window > 0 && p.sliding_window < ctx) ctx = p.sliding_window;
    const long max_split = std::max<long>(1, std::min<long>(kMaxSplits, (ctx + iter - 1) / iter));
    long best_cost = LONG_MAX;
    for (long n = 1; base > 0 && n <= max_split; ++n) {
      const long waves = (base * n + slots - 1) / slots;
      const long keys = ((ctx + n - 1) / n + iter - 1) / iter * iter;
      const long cost = waves * (keys + 2 * iter);
      if (cost < best_cost) {
        best_cost = cost;
        pl.nsplit = static_cast<int>(n);
      }
    }
  }
  const long P = std::min<long>(S, T / 2);
  pl.tile_bound = static_cast<int>((T + P * (kPrefillBlockM - 1)) / kPrefillBlockM + 1);
  const size_t elt = static_cast<size_t>(element_size(p.dtype));
  pl.q_off = 0;
  pl.cum_off = align256(static_cast<size_t>(T) * p.num_heads * p.head_dim * elt);
  pl.ml_off = pl.cum_off + align256(static_cast<size_t>(S + 1) * sizeof(int32_t));
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

bool supported(const trtc_paged_attention_params* p) {
  const bool float_type = p->dtype == TRTC_F32 || p->dtype == TRTC_F16 || p->dtype == TRTC_BF16;
  return float_type && p->kv_dtype == p->dtype && (p->head_dim == 64 || p->head_dim == 128);
}

int log2i(int x) {
  int r = 0;
  while ((1 << r) < x) ++r;
  return r;
}

}  // namespace
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
  (void)kv_scales;
  if (!valid(p)) return cudaErrorInvalidValue;
  if (!supported(p)) return cudaErrorNotSupported;
  if (p->rotary_dim > 0 && inv_freq == nullptr) return cudaErrorInvalidValue;
  if (p->num_tokens == 0) return cudaSuccess;
  const Plan pl = make_plan(*p);
  if (workspace == nullptr || workspace_size < pl.total) return cudaErrorInvalidValue;

  char* ws = static_cast<char*>(workspace);
  const size_t elt = static_cast<size_t>(trtc::element_size(p->dtype));
  const size_t pool_half = static_cast<size_t>(p->num_blocks) * p->block_size * p->num_kv_heads *
                           p->head_dim * elt;
  char* k_pool = static_cast<char*>(kv_cache_layer);
  char* v_pool = k_pool + pool_half;

  Args a{};
  a.qbuf = ws + pl.q_off;
  a.k_pool = k_pool;
  a.v_pool = v_pool;
  a.positions = positions;
  a.qsl = query_start_loc;
  a.seq_lens = seq_lens;
  a.block_tables = block_tables;
  a.tile_cum = reinterpret_cast<const int32_t*>(ws + pl.cum_off);
  a.out = out;
  a.part_ml = pl.nsplit > 1 ? reinterpret_cast<float*>(ws + pl.ml_off) : nullptr;
  a.part_o = pl.nsplit > 1 ? reinterpret_cast<float*>(ws + pl.o_off) : nullptr;
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

  int err = trtc::dispatch_float_type(p->dtype, [&](auto tag) {
    using T = decltype(tag);
    const dim3 grid(static_cast<unsigned>(p->num_tokens + (pl.prefill ? 1 : 0)),
                    (p->num_heads + 2 * p->num_kv_heads + kHeadsPerBlock - 1) / kHeadsPerBlock);
    rotary_write_kernel<T><<<grid, dim3(p->head_dim / 2, kHeadsPerBlock), 0, stream>>>(
        *p, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
        positions, slot_mapping, inv_freq, static_cast<T*>(const_cast<void*>(a.qbuf)),
        reinterpret_cast<T*>(k_pool), reinterpret_cast<T*>(v_pool), query_start_loc,
        const_cast<int32_t*>(a.tile_cum));
    return static_cast<int>(cudaGetLastError());
  });
  if (err) return err;
  if ((err = launch_decode(a, p->dtype, p->head_dim, pl.gq, stream))) return err;
  if (pl.nsplit > 1 && (err = launch_split_reduce(a, p->dtype, p->head_dim, stream))) return err;
  if (pl.prefill && (err = launch_prefill(a, p->dtype, p->head_dim, pl.tile_bound, stream))) return err;
  return cudaSuccess;
}
