// PagedAttention prefill, fast kernel (16-bit pools of the activation type): FlashAttention-2
// style, mma.sync m16n8k16 (fp16/bf16 in, fp32 accumulate).
//
// CTA = (query head, tile of kFaRows = 64 query rows); 4 warps of 16 rows. q is staged once
// through shared memory, then held in registers as mma A fragments for the whole key loop
// (rotated with kv_write's per-token (cos, sin) table: full rotary in the registers, partial
// rotary in shared memory). K/V tiles of BN = 64 keys stream through a ring of STAGES
// swizzled stages (cp.async, one barrier per tile); the q staging area is the last K stage,
// first overwritten after the barrier of the first iteration, when every warp holds its
// fragments.
//
//   wait tile j, barrier | issue tile j + STAGES - 1 | S = Q K_j^T, online softmax, O += P V_j
//
// Scores stay raw; the softmax scale (log2 units) is folded into one fma per exponent.
//
// Quantized pools (P = fp8 / int8), as in the tensor-core decode kernel: the ring holds the
// codes (half the bytes), each landed tile is widened by the whole CTA into one f16 K/V tile
// (exact: code x kWiden<P>; a second barrier per tile), and the MMAs run in f16. q enters them
// as f16 too, each row divided by a power of two that puts its largest element in [2^14, 2^15)
// (exact, no overflow): each row's softmax scale takes that factor times the k scale / kWiden,
// and the output the v scale / kWiden. The q staging area is then the widened tile.
//
// Tiles are found as in the tile kernel (locate_tile: tile_cum planned with kFaRows rows,
// grid.y walked from the end so the long last tiles of the sequences start first).
#include <cstdlib>

#include "paged_attention_decode_codes.cuh"
#include "paged_attention_prefill.cuh"

namespace trtc {
namespace pa {
namespace prefill {
namespace {

constexpr int kFaWarps = kFaRows / 16, kFaThreads = kFaWarps * 32;

// Shared memory of prefill_fa_kernel in bytes (+ kSmemAlign): K and V stages of BN keys (codes
// of P), a widened f16 K/V tile for a quantized pool, q's kFaRows rows of T where they alias
// nothing.
template <typename T, typename P, int D, int STAGES, int BN>
constexpr int fa_smem_bytes() {
  constexpr int ring = 2 * STAGES * BN * D * static_cast<int>(sizeof(P));
  if constexpr (kQuantPool<P>) {
    static_assert(2 * BN >= kFaRows, "q is staged in the widened tile");
    return ring + 2 * BN * D * 2 + kSmemAlign;
  }
  return ring + (BN >= kFaRows ? 0 : kFaRows * D * static_cast<int>(sizeof(T))) + kSmemAlign;
}

template <typename T, typename P, int D, int STAGES, int MINB, int BN>
__global__ void __launch_bounds__(kFaThreads, MINB) prefill_fa_kernel(const Args a) {
  constexpr bool kQuant = kQuantPool<P>;
  using C = std::conditional_t<kQuant, __half, T>;  // the mma operand type
  constexpr int TILE = BN * D;
  constexpr bool kQAlias = BN >= kFaRows;  // q staged in the last K stage, else after V
  const Swizzled<D> swz;
  extern __shared__ __align__(16) unsigned char smem_base[];
  P* Ks = reinterpret_cast<P*>(align_smem(smem_base));  // [STAGES][BN][D] (swizzled for T)
  P* Vs = Ks + STAGES * TILE;  // [STAGES][BN][D]; a quantized pool's stage s is K then V at Ks + 2 s TILE
  __half* wide = reinterpret_cast<__half*>(Ks + 2 * STAGES * TILE);  // quantized: [2][BN][D] swizzled
  T* Qs = kQuant    ? reinterpret_cast<T*>(wide)
          : kQAlias ? reinterpret_cast<T*>(Ks + (STAGES - 1) * TILE)
                    : reinterpret_cast<T*>(Vs + STAGES * TILE);  // [kFaRows][D] swizzled
  // stage st's K and V: 16-bit pools [STAGES] K then [STAGES] V (swizzled), codes stage by stage
  auto k_stage = [&](int st) { return kQuant ? Ks + 2 * st * TILE : Ks + st * TILE; };
  auto v_stage = [&](int st) { return kQuant ? Ks + (2 * st + 1) * TILE : Vs + st * TILE; };
  allow_next_kernel();  // the decode kernel after this one (see Args::write_done)

  const int h = blockIdx.x;
  TileRef tr;
  if (!locate_tile(a, kFaRows, tr)) return;
  const int n = a.seq_lens[tr.s];
  const int hkv = h / a.group;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int32_t* bt = a.block_tables + static_cast<int64_t>(tr.s) * a.max_blocks;
  const int64_t slot_stride = static_cast<int64_t>(a.num_kv_heads) * D;
  const P* kpool = static_cast<const P*>(a.k_pool);
  const P* vpool = static_cast<const P*>(a.v_pool);
  // > 0 (the launcher checks); a quantized pool's also takes q's factor per row (below)
  const float scale = a.scale_log2 * (kQuant ? times_widened_scale<P>(1.f, a.kv_scales, 0) : 1.f);
  const float vscale = kQuant ? times_widened_scale<P>(1.f, a.kv_scales, 1) : 1.f;
  // K/V rows: swizzled for ldmatrix (16-bit pools), row-major codes (widened later)
  auto load_tile = [&](int st, int key, int bound) {
    if constexpr (kQuant)
      load_kv_tile<P, D, kFaThreads, RowMajor<D>, BN>(k_stage(st), v_stage(st), kpool, vpool, bt, key, bound,
                                                      a.log2_block, slot_stride, hkv, RowMajor<D>{});
    else
      load_kv_tile<P, D, kFaThreads, Swizzled<D>, BN>(k_stage(st), v_stage(st), kpool, vpool, bt, key, bound,
                                                      a.log2_block, slot_stride, hkv, swz);
  };

  int kstart, kend;
  fast_prologue<BN, STAGES>(
      a, tr, n, kstart, kend, [&](int st, int key, int bound) { load_tile(st, key, bound); },
      [&] {
        load_q_rows<T, D, kFaThreads>(Qs, a, tr, h, kFaRows, swz);
        return 0;
      },
      [](int) {});
  const int W = a.sliding_window;

  const int r0 = warp * 16 + (lane >> 2);
  const WarpRows wr = warp_rows(a, tr, r0);

  cp_async_wait<0>();  // q has landed (the prologue's last group)
  __syncthreads();
  if (a.rot > 0 && a.rot < D) {  // partial rotary: in shared memory
    rotate_q_rows<T, kFaThreads>(Qs, a, tr, swz);
    __syncthreads();
  }
  uint32_t qa[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk)
    ldmatrix_x4(qa[kk], Qs + swz(warp * 16 + (lane & 15), kk * 16 + (lane >> 4) * 8));
  if (a.rot == D) rotate_q_frags<T, D>(qa, a, tr, r0);
  float2 rscale{};  // a quantized pool's softmax scale of rows r0, r0 + 8
  if constexpr (kQuant) rscale = q_fragments_to_f16<T, D>(qa, scale);

  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  RowStats rs;

  // Lane parts of the ldmatrix addresses: K (non-transposed B) and V (transposed B). Moving
  // 16 rows keeps r & 7; moving 16 columns flips chunk bit 1: swz(r + 16i, c + 16j) ==
  // 16 i D + (swz(r, c) ^ 16 j) for c < 16, so each address is one xor and one add.
  const int koff = swz((lane & 7) + ((lane >> 4) << 3), ((lane >> 3) & 1) * 8);
  const int voff = swz((lane & 7) + (((lane >> 3) & 1) << 3), (lane >> 4) * 8);

  int stage = 0;
  for (int kt = kstart; kt < kend; kt += BN) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();  // tile kt visible to all; every warp is done with the stage refilled next
    {
      const int nk = kt + (STAGES - 1) * BN;
      const int ns = stage == 0 ? STAGES - 1 : stage - 1;
      if (nk < kend) load_tile(ns, nk, kend);
      cp_async_commit();
    }
    const C* Kt;
    const C* Vt;
    if constexpr (kQuant) {
      // (the barrier above: every warp is done with the widened tile, and, the first time, with q)
      widen_stage<P, D, BN, kFaThreads>(wide, k_stage(stage), threadIdx.x);
      __syncthreads();
      Kt = wide;
      Vt = wide + TILE;
    } else {
      Kt = k_stage(stage);
      Vt = v_stage(stage);
    }
    stage = stage == STAGES - 1 ? 0 : stage + 1;
    if (kt > wr.wmax || (W > 0 && kt + BN <= wr.wmin - W + 1)) continue;  // masked for the warp

    float sc[BN / 8][4];
#pragma unroll
    for (int nt = 0; nt < BN / 8; ++nt) sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int np = 0; np < BN / 16; ++np) {
        uint32_t b[4];
        ldmatrix_x4(b, Kt + np * 16 * D + (koff ^ (kk * 16)));
        mma16816<C>(sc[2 * np], qa[kk], b[0], b[1]);
        mma16816<C>(sc[2 * np + 1], qa[kk], b[2], b[3]);
      }
    }
    if constexpr (kQuant)
      softmax_tile<BN, D>(sc, o, rs, wr, kt, n, W, rscale);
    else
      softmax_tile<BN, D>(sc, o, rs, wr, kt, n, W, scale);
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      uint32_t pa[4];
      p_fragment<C, BN>(sc, kk, pa);
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, Vt + kk * 16 * D + (voff ^ (dp * 16)));
        mma16816<C>(o[2 * dp], pa, b[0], b[1]);
        mma16816<C>(o[2 * dp + 1], pa, b[2], b[3]);
      }
    }
  }
  cp_async_wait<0>();
  store_rows<T, D>(a, tr, h, r0, o, rs.l0, rs.l1, vscale);
}

template <typename T, typename P, int D, int STAGES, int MINB, int BN>
int prefill_fa_d(const Args& a, int tile_bound, cudaStream_t stream) {
  constexpr int smem = fa_smem_bytes<T, P, D, STAGES, BN>();  // see align_smem
  auto kernel = prefill_fa_kernel<T, P, D, STAGES, MINB, BN>;
  // Always: 48 KB of dynamic memory (32-key tiles, D = 128) plus tile_positions' static words
  // need the opt-in too.
  const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return static_cast<int>(e);
  kernel<<<dim3(a.num_heads, tile_bound), kFaThreads, smem, stream>>>(a);
  return static_cast<int>(cudaGetLastError());
}

template <typename T, typename P, int D>
int prefill_fa_t(const Args& a, int tile_bound, cudaStream_t stream) {
  if constexpr (!kQuantPool<P>) {
    const char* stages = getenv("TRTC_PA_PREFILL_STAGES");  // tuning overrides, for benchmarks
    const char* keys = getenv("TRTC_PA_PREFILL_KEYS");
    if (stages != nullptr && atoi(stages) == 3) return prefill_fa_d<T, P, D, 3, 2, 64>(a, tile_bound, stream);
    if (keys != nullptr && atoi(keys) == 32) return prefill_fa_d<T, P, D, 2, 3, 32>(a, tile_bound, stream);
  }
  return prefill_fa_d<T, P, D, 2, 3, 64>(a, tile_bound, stream);
}

}  // namespace

// Takes fp16/bf16 activations over a pool of the same type, fp8 or int8, with a positive scale
// (which keeps the running max of raw scores valid); the tile kernel takes the rest.
bool fast_prefill(trtc_dtype dtype, trtc_dtype kv_dtype, float scale) {
  const char* legacy = getenv("TRTC_PA_PREFILL_LEGACY");  // tuning override, for benchmarks
  return (dtype == TRTC_F16 || dtype == TRTC_BF16) &&
         (kv_dtype == dtype || kv_dtype == TRTC_FP8_E4M3 || kv_dtype == TRTC_INT8) && scale > 0.f &&
         !(legacy != nullptr && atoi(legacy) == 1);
}

int launch_prefill_fa(const Args& a, trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim,
                      int tile_bound, cudaStream_t stream) {
  return dispatch_pool(dtype, kv_dtype, [&](auto tag, auto pool_tag) {
    using T = decltype(tag);
    using P = decltype(pool_tag);
    if constexpr (sizeof(T) == 2) {
      return head_dim == 64 ? prefill_fa_t<T, P, 64>(a, tile_bound, stream)
                            : prefill_fa_t<T, P, 128>(a, tile_bound, stream);
    } else {
      return static_cast<int>(cudaErrorNotSupported);
    }
  });
}

}  // namespace prefill
}  // namespace pa
}  // namespace trtc
