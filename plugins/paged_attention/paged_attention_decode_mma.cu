// PagedAttention decode, tensor-core kernel (16-bit pools of the activation type, or fp8 /
// int8 pools; GQ >= 2 query heads per CTA): mma.sync m16n8k16, fp32 accumulate.
//
// CTA = (kv head, chunk of GQ <= 8 query heads, sequence, split), NW warps. The GQ heads are
// rows 0..GQ-1 of the mma A operand (rows 8..15 are zero registers): S = Q K^T over a tile of
// 16 keys is 2 n-tiles x D/16 k-steps, O += P V is D/8 n-tiles of one k-step, P (rounded to T)
// taken straight from the S accumulators as in the prefill kernel.
//
// Each warp owns every NW-th 16-key tile of the CTA's key range and streams it with cp.async
// through its own ring of STAGES swizzled K/V stages (no CTA barrier in the key loop):
//
//   ring[warp][stage][K|V][16 keys][D]      (copied a whole row per D / 8 lanes)
//
// q is rotated once per token into shared memory (rounded to T, as the separate rotary pass
// would store it) and held as A fragments. Warps are merged, splits written and merged by
// finish_decode (shared with the CUDA-core kernel); in fused mode the step's key is part NW.
//
// PDL (sm_90+): a warp waits for kv_write only before copying a tile that holds keys of this
// step's tokens; finish_decode waits before the split counter.
//
// Fused mode (FUSED instantiation, Args::fused: one new token per sequence, token s; kv_write
// stores nothing): q, k and v rows are loaded before the sequence's length and position arrive;
// the split whose key range holds key n - 1 (the step's token) rotates k as kv_write would
// (rounded to T), stores k and v to the pool (head chunk 0 only) and keeps them in shared
// memory: its tile loop stops at n - 1 and the key joins the merge as part NW (max = its score,
// sum 1, output v). No CTA reads that slot from the pool. The other instantiation is the kernel
// as it was before fused mode (its main loop compiles differently with the fused code).
// Quantized pools (8-warp kernel only): the step's k and v are stored as the codes kv_write
// would store, and its score and output are those of the codes' values.
//
// Quantized pools (P = fp8 / int8): the stages hold the codes (half the bytes of a 16-bit
// pool); after a stage lands its warp widens it into one f16 K/V tile (exact: every code times
// kWiden<P> is an f16; integer ops only, the f16x2 <- e4m3x2 conversion instruction was 1.5x
// slower on H100) and the mma run in f16. q goes in as f16 too, each head divided by a power
// of two that puts its largest element in [2^14, 2^15) (exact, no overflow); S is scaled back
// by that factor times the k scale / kWiden, the v scale / kWiden is applied once at the end.
//
// Quantized pools at D = 128 skip the widened tile ("direct", direct_tile): each lane builds its
// mma fragments in registers from 16-byte reads of the landed codes, and the products run
// transposed, the keys (S^T = K Q^T) and head dims (O^T += V^T P^T) as the mma rows and the GQ
// heads as its 8 columns: 16 mma a tile where the heads as rows (8 of 16 rows zero) took 32, no
// zero registers, half the accumulators. P^T goes from the scores' fragments to B fragments by
// movmatrix. The order of k inside an mma is free as long as A and B agree (q's fragments are
// staged in the codes' order), and so is the order of O's head dims (undone at the store).
// Each pair of fp8 codes becomes an f16x2 in three integer operations (prmt, shift, and).
// H200, bench_kv_quant's shapes against the earlier direct path (heads as rows, same call): fp8
// B=64 ctx 4096 143.5 vs 170.0 us, B=256 ctx 512 92.8 vs 125.6, B=1 13.4 vs 15.1; int8 B=64
// 150.8 vs 163.2.
//
// Tensor copies (decode_mma_tma_kernel, sm_90a; blocks of >= 16 slots, no sliding window): lane 0
// of each warp fills the warp's stages with one tensor copy each of K and V (a box of the tile's
// 16 slots of the kv head, whole rows), completing on an mbarrier per stage, instead of 32
// lanes issuing 16-byte copies (a third fewer instructions at B=64 ctx 2048). The boxes land in
// the 128-byte swizzle as 128-byte lines, key r's h-th 128 bytes in line r * H + h (the
// 16-byte-copy layouts at D = 64 and for the direct codes). The whole box is copied, so V rows
// past the key range (stale or never-written slots: 0 * NaN is NaN) are zeroed once landed.
// H200 (same process, against the 16-byte copies): B=64 ctx 2048 127.5 vs 129.1 us, B=256
// ctx 1024 251.9 vs 255.2; no faster on grids of one wave (the 16-bit 8-warp kernel keeps its
// copies) and 0.4 % slower at B=128 ctx 4096.
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "../common/wgmma.cuh"
#include "paged_attention_decode_codes.cuh"
#include "paged_attention_decode.cuh"
#include "paged_attention_prefill.cuh"

namespace trtc {
namespace pa {
namespace {

using prefill::cp_async16;
using prefill::cp_async_commit;
using prefill::cp_async_wait;

constexpr int kTileKeys = kDecodeTileKeys;  // keys per warp tile
constexpr int kMaxRows = 8;    // query heads per CTA at most (A rows 0..7)

template <typename P, int D, int GQ, int NW, int STAGES, bool FUSED, bool TMA = false>
struct MmaCfg {
  static constexpr bool kQuant = kQuantPool<P>;
  static constexpr bool kDirect = kQuant && D == 128;  // B fragments from the codes
  static constexpr int TILE = kTileKeys * D;  // elements of one K (or V) stage
  static constexpr int STAGE = 2 * TILE * static_cast<int>(sizeof(P));  // bytes: K and V
  static constexpr int WIDE = kQuant && !kDirect ? 2 * TILE * 2 : 0;  // bytes: widened f16 K/V
  static constexpr int WARP = STAGES * STAGE + WIDE;       // bytes per warp
  static constexpr int RING = NW * WARP;
  static constexpr int NP = FUSED ? NW + 1 : NW;  // merge parts: warps (, the step's key)
  static constexpr int MERGE = finish_floats<D, GQ, NP>() * 4;
  static constexpr int ALIGN = TMA ? 1024 : kSmemAlign;  // the copy engine's 128-byte swizzle
  static constexpr int SMEM = (RING > MERGE ? RING : MERGE) + ALIGN;  // see align_smem
};

// Tensor copies of a stage (TMA kernel): one box of kTileKeys whole rows each of K and V, stored
// as 128-byte lines in the 128-byte swizzle (16-byte chunk c of line L at c ^ (L & 7)), key r's
// half h in line r * H + h (H = row bytes / 128): 16-bit tiles of D = 64 and the codes of
// D = 128 (the direct path's rows) keep the copy kernel's layouts.
template <typename P, int D>
constexpr bool kTmaStage = !kQuantPool<P> || D == 128;
template <typename P, int D>
constexpr int kTmaLines = D * static_cast<int>(sizeof(P)) / 128;  // H

// The TMA kernel's copy and barrier steps (wgmma.cuh), compiled where the sm_90a code is; the
// kernel traps on other targets before it reaches them.
struct TmaSteps {
  __device__ __forceinline__ static void init(uint64_t* bars, int n) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    for (int i = 0; i < n; ++i) mbar_init(bars + i, 1);
    fence_mbarrier_init();
#endif
  }
  __device__ __forceinline__ static void wait(uint64_t* bar, int parity) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    mbar_wait(bar, parity);
#endif
  }
  // the generic accesses of the calling thread (and those ordered before them) before copies
  __device__ __forceinline__ static void fence() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    fence_async_shared();
#endif
  }
  __device__ __forceinline__ static void expect(uint64_t* bar, uint32_t bytes) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    mbar_arrive_expect_tx(bar, bytes);
#endif
  }
  // the box of kv head hkv's rows from `slot` (pool maps of whole rows: pool_tensor_maps)
  __device__ __forceinline__ static void load(void* dst, const CUtensorMap* map, int hkv, int slot,
                                              uint64_t* bar) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    tma_load_4d(dst, map, 0, 0, hkv, slot, bar);
#endif
  }
};

// The transpose of an 8 x 8 matrix of 16-bit elements held as an mma fragment (lane (g, t): row
// g, columns 2t, 2t + 1).
__device__ __forceinline__ uint32_t transpose8x8(uint32_t x) {
  uint32_t y;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(y) : "r"(x));
  return y;
}

// What a warp keeps of its tiles on the direct path (quantized pools, D = 128), transposed: the
// mma rows are keys (S^T = K Q^T) and head dims (O^T += V^T P^T), the columns the CTA's heads.
// Lane (g, t) holds heads 2t, 2t + 1 (columns past GQ are zero heads, dropped at the store).
template <int D>
struct DirectState {
  float o[D / 16][4];  // m-tile mt: O of heads 2t, 2t + 1 at d = 16 g + 2 mt (0, 1), + 1 (2, 3)
  float m[2] = {-1e30f, -1e30f};  // running max of each head (log2 units)
  float l[2] = {0.f, 0.f};        // this lane's part of each head's sum
  float scale[2];                 // S to log2 units: softmax scale, k scale, q's range factor
};

// One 16-key tile of the direct path: stage st holds the tile's K then V codes (swizzled rows),
// qa the heads' q as B fragments in the codes' k order (see the kernel's header), tb the tile's
// first key, keys from kend on are masked.
//   S^T = K Q^T: lane (g, t) reads words 8t..8t+7 of key rows g and g + 8 (its A rows); k-step
//     kk takes word 8t + kk, bytes (0, 2) as a0 / a1, bytes (1, 3) as a2 / a3. The 8 mma of a
//     tile (against 16 with the heads as rows) run as two chains of four.
//   P^T: the scores' fragments (rows keys, columns heads) rounded to C and transposed with
//     movmatrix into B fragments (rows heads, columns keys).
//   O^T += V^T P^T: lane (g, t) reads bytes 16g..16g+15 of key rows 2t, 2t+1, 2t+8, 2t+9;
//     m-tile mt takes byte 2 mt % 4 of word mt / 2 as A row g (d = 16 g + 2 mt) and the next
//     byte as row g + 8 (d + 1), undone at the store.
// O is rescaled only where a head's max grew (a warp vote): rescaling by 2^0 changes nothing.
template <typename P, typename C, int D>
__device__ __forceinline__ void direct_tile(DirectState<D>& ds, const P* st, const uint32_t (&qa)[D / 16][2],
                                            int lane, int tb, int kend) {
  static_assert(D == 128, "direct tiles: 128 codes a row");
  constexpr int TILE = kTileKeys * D;
  const int g = lane >> 2, t4 = lane & 3;
  const uint4 ka0 = direct_chunk(st, g, 2 * t4), ka1 = direct_chunk(st, g, 2 * t4 + 1);
  const uint4 kb0 = direct_chunk(st, g + 8, 2 * t4), kb1 = direct_chunk(st, g + 8, 2 * t4 + 1);
  const uint32_t kg[8] = {ka0.x, ka0.y, ka0.z, ka0.w, ka1.x, ka1.y, ka1.z, ka1.w};
  const uint32_t kh[8] = {kb0.x, kb0.y, kb0.z, kb0.w, kb1.x, kb1.y, kb1.z, kb1.w};
  const P* vs = st + TILE;
  const uint4 r0 = direct_chunk(vs, 2 * t4, g), r1 = direct_chunk(vs, 2 * t4 + 1, g);
  const uint4 r8 = direct_chunk(vs, 2 * t4 + 8, g), r9 = direct_chunk(vs, 2 * t4 + 9, g);
  float s[2][4] = {};  // chains of even and odd k-steps
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const uint32_t ka[4] = {code_pair_even<P>(kg[kk]), code_pair_even<P>(kh[kk]),
                            code_pair_odd<P>(kg[kk]), code_pair_odd<P>(kh[kk])};
    prefill::mma16816<C>(s[kk & 1], ka, qa[kk][0], qa[kk][1]);
  }
  // s[0][e]: key g (e < 2) or g + 8, head 2t + e % 2
  const bool in0 = tb + g < kend, in8 = tb + g + 8 < kend;
  float sc[4];
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const bool in = e < 2 ? in0 : in8;
    sc[e] = in ? (s[0][e] + s[1][e]) * ds.scale[e & 1] : -INFINITY;
  }
  float mx[2] = {fmaxf(sc[0], sc[2]), fmaxf(sc[1], sc[3])};
#pragma unroll
  for (int off = 4; off < 32; off <<= 1) {
    mx[0] = fmaxf(mx[0], __shfl_xor_sync(0xffffffffu, mx[0], off));
    mx[1] = fmaxf(mx[1], __shfl_xor_sync(0xffffffffu, mx[1], off));
  }
  mx[0] = fmaxf(ds.m[0], mx[0]);
  mx[1] = fmaxf(ds.m[1], mx[1]);
  if (__any_sync(0xffffffffu, mx[0] > ds.m[0] || mx[1] > ds.m[1])) {
    const float c0 = prefill::ex2(ds.m[0] - mx[0]), c1 = prefill::ex2(ds.m[1] - mx[1]);
#pragma unroll
    for (int mt = 0; mt < D / 16; ++mt) {
      ds.o[mt][0] *= c0;
      ds.o[mt][1] *= c1;
      ds.o[mt][2] *= c0;
      ds.o[mt][3] *= c1;
    }
    ds.l[0] *= c0;
    ds.l[1] *= c1;
    ds.m[0] = mx[0];
    ds.m[1] = mx[1];
  }
#pragma unroll
  for (int e = 0; e < 4; ++e) sc[e] = prefill::ex2(sc[e] - ds.m[e & 1]);
  ds.l[0] += sc[0] + sc[2];
  ds.l[1] += sc[1] + sc[3];
  const uint32_t pb0 = transpose8x8(prefill::pack2<C>(sc[0], sc[1]));  // keys 2t, 2t + 1 of head g
  const uint32_t pb1 = transpose8x8(prefill::pack2<C>(sc[2], sc[3]));  // keys 2t + 8, 2t + 9
  const uint32_t w0[4] = {r0.x, r0.y, r0.z, r0.w}, w1[4] = {r1.x, r1.y, r1.z, r1.w};
  const uint32_t w8[4] = {r8.x, r8.y, r8.z, r8.w}, w9[4] = {r9.x, r9.y, r9.z, r9.w};
#pragma unroll
  for (int wi = 0; wi < 4; ++wi) {
    const uint32_t va[4] = {code_pair_rows<P, 0>(w0[wi], w1[wi]), code_pair_rows<P, 1>(w0[wi], w1[wi]),
                            code_pair_rows<P, 0>(w8[wi], w9[wi]), code_pair_rows<P, 1>(w8[wi], w9[wi])};
    prefill::mma16816<C>(ds.o[2 * wi], va, pb0, pb1);
    const uint32_t vb[4] = {code_pair_rows<P, 2>(w0[wi], w1[wi]), code_pair_rows<P, 3>(w0[wi], w1[wi]),
                            code_pair_rows<P, 2>(w8[wi], w9[wi]), code_pair_rows<P, 3>(w8[wi], w9[wi])};
    prefill::mma16816<C>(ds.o[2 * wi + 1], vb, pb0, pb1);
  }
}

// The kernel's body. TMA (sm_90a): lane 0 of each warp fills the warp's stages with tensor copies
// (tmk, tmv: the pools' maps, boxes of kTileKeys slots) completing on one mbarrier a stage,
// instead of every lane copying 16-byte chunks; V rows past the key range are zeroed once landed.
template <typename T, typename P, int D, int GQ, int NW, int STAGES, bool FUSED, bool TMA>
__device__ __forceinline__ void decode_mma_body(const Args& a, const CUtensorMap* tmk,
                                                const CUtensorMap* tmv) {
  static_assert(GQ >= 2 && GQ <= kMaxRows, "heads are A rows 0..7");
  static_assert(!TMA || kTmaStage<P, D>, "tensor copies: 16-bit tiles or direct codes");
  using Cfg = MmaCfg<P, D, GQ, NW, STAGES, FUSED, TMA>;
  constexpr bool kQuant = Cfg::kQuant, kDirect = Cfg::kDirect;
  using C = std::conditional_t<kQuant, __half, T>;  // the mma operand type
  constexpr int NT = NW * 32, TILE = Cfg::TILE, ITER = NW * kTileKeys, NP = Cfg::NP;
  constexpr int QPT = kMaxRows * D / NT;  // q elements per thread (unfused staging)
  static_assert(QPT * NT == kMaxRows * D && D % 32 == 0, "a warp's q elements are one head's");
  const prefill::Swizzled<D> swz;
  extern __shared__ __align__(16) unsigned char smem_base[];
  unsigned char* smem_raw = align_smem<Cfg::ALIGN>(smem_base);
  __shared__ alignas(8) uint64_t s_full[TMA ? NW * STAGES : 1];  // TMA: stage landed
  __shared__ __align__(16) C s_q[kMaxRows * D];  // swizzled rows of the heads, zero past ng
  __shared__ float2 s_cs[D / 2];                  // rotary factors of the token
  __shared__ unsigned s_qmax[kMaxRows];           // quantized pool: max |q| of each head (bits)
  using KV = std::conditional_t<kQuant, P, T>;  // pool elements
  __shared__ __align__(16) KV s_kv[FUSED ? 2 * D : 16 / sizeof(KV)];  // fused: the step's k (rotated), v
  __shared__ float s_snew[kMaxRows];                   // fused: its scores (log2 units)
  float* sm_o = reinterpret_cast<float*>(smem_raw);  // merge buffers, over the rings
  float* sm_m = sm_o + NP * GQ * D;
  float* sm_l = sm_m + NP * GQ;
  allow_next_kernel();  // the output projection's GEMV may start loading its weights

  const int hkv = blockIdx.x / a.head_chunks;
  const int chunk = blockIdx.x - hkv * a.head_chunks;
  const int s = blockIdx.y, split = blockIdx.z;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, t4 = lane & 3;
  const int32_t* bt = a.block_tables + static_cast<int64_t>(s) * a.max_blocks;
  // Loaded with the sequence's lengths, before its key range is known: the block ids of the
  // warp's first STAGES tiles counted from key 0 (where split 0's range starts without a
  // sliding window), and the position of token s (token s is the sequence's one new token in a
  // decode-only batch). Used where they turn out to be the right ones: the first copies then
  // wait for one round trip to global memory instead of three (lengths, position, block ids).
  int32_t spec_blk[STAGES];
#pragma unroll
  for (int j = 0; j < STAGES; ++j) {
    const int b = ((warp + j * NW) * kTileKeys + (TMA ? 0 : lane & (kTileKeys - 1))) >> a.log2_block;
    spec_blk[j] = split == 0 && b < a.max_blocks ? __ldg(bt + b) : -1;
  }
  const int spec_pos = __ldg(a.positions + min(s, a.num_tokens - 1));
  const int q0 = FUSED ? s : a.qsl[s], q1 = FUSED ? s + 1 : a.qsl[s + 1];
  const int n = a.seq_lens[s];
  if (q1 <= q0 || q1 - q0 > a.max_decode_qlen) {
    wait_before_exit(a);
    return;
  }
  const int h0 = hkv * a.group + chunk * GQ;
  const int ng = min(GQ, a.group - chunk * GQ);
  const int64_t slot_stride = static_cast<int64_t>(a.num_kv_heads) * D;
  constexpr int EPC = 16 / static_cast<int>(sizeof(P));  // pool elements per 16-byte chunk
  constexpr int CPR = D / EPC, RPI = 32 / CPR;  // chunks per row, rows per copy instruction
  const int kcol = (lane % CPR) * EPC;          // the column this lane copies
  const P* kpool = static_cast<const P*>(a.k_pool) + hkv * D + kcol;
  const P* vpool = static_cast<const P*>(a.v_pool) + hkv * D + kcol;
  P* ring = reinterpret_cast<P*>(smem_raw + warp * Cfg::WARP);
  __half* wide = reinterpret_cast<__half*>(smem_raw + warp * Cfg::WARP + STAGES * Cfg::STAGE);
  const int bmask = (1 << a.log2_block) - 1;
  const int nnew = q1 - q0;
  // Lane parts of the ldmatrix addresses (see the prefill kernel): K tiles, V tiles (trans).
  const int krow = (lane & 7) + ((lane >> 4) << 3), kchunk = ((lane >> 3) & 1) * 8;
  const int vrow = (lane & 7) + (((lane >> 3) & 1) << 3), vchunk = (lane >> 4) * 8;
  // ldmatrix addresses of k-step kk (or V column pair dp): the lane's part for each half of
  // the row (TMA: lines r * H + h), then the 16-column group's chunk pair by an XOR
  constexpr int H = TMA ? kTmaLines<P, D> : 1;
  auto line_off = [](int line, int chunk) { return line * 64 + (((chunk >> 3) ^ (line & 7)) << 3); };
  int koff[H], voff[H];
#pragma unroll
  for (int h = 0; h < H; ++h) {
    koff[h] = TMA ? line_off(krow * H + h, kchunk) : swz(krow, kchunk);
    voff[h] = TMA ? line_off(vrow * H + h, vchunk) : swz(vrow, vchunk);
  }
  auto kv_at = [](const int (&off)[H], int kk) {
    return TMA ? off[(kk >> 2) % H] ^ ((kk & 3) * 16) : off[0] ^ (kk * 16);
  };
  uint32_t used = 0;  // TMA: the warp's tiles of earlier tokens (stage and phase of tile j)
  if constexpr (TMA) {
    if (lane == 0) {
      TmaSteps::init(&s_full[warp * STAGES], STAGES);
    }
    __syncwarp();
  }
  wait_for_write_if(a, a.q_from_write);

  for (int t = q0; t < q1; ++t) {
    // Rows staged to shared memory: q of the heads (zero past ng), then (fused) the step's k and
    // v (rows kMaxRows, + 1). Fused: each thread's elements, their rotary partners and the
    // rotary frequency are loaded first, before the sequence's length and position arrive.
    constexpr int ROWS = kMaxRows + 2, NSTAGE = (ROWS * D + NT - 1) / NT;
    const int half = a.rot / 2;
    const T* qrow = static_cast<const T*>(a.q) + static_cast<int64_t>(t) * a.q_stride + h0 * D;
    T xs[NSTAGE], ys[NSTAGE];
    int64_t new_slot = -1;
    float inv_freq = 0.f;
    if constexpr (FUSED) {
      const T* krow =
          static_cast<const T*>(a.k_new) + static_cast<int64_t>(t) * a.k_stride + hkv * D;
      const T* vrow =
          static_cast<const T*>(a.v_new) + static_cast<int64_t>(t) * a.v_stride + hkv * D;
      new_slot = chunk == 0 ? a.slot_mapping[t] : -1;
      inv_freq = tid < half ? __ldg(a.inv_freq + tid) : 0.f;  // half <= D / 2 < NT
#pragma unroll
      for (int i = 0; i < NSTAGE; ++i) {
        const int idx = tid + i * NT, g = idx / D, c = idx - g * D;
        const T* row = g < ng ? qrow + g * D
                       : g == kMaxRows ? krow
                       : g == kMaxRows + 1 ? vrow
                                           : nullptr;
        xs[i] = ys[i] = from_float<T>(0.f);
        if (row != nullptr) {
          xs[i] = row[c];
          if (c < a.rot && g <= kMaxRows) ys[i] = row[c < half ? c + half : c - half];
        }
      }
    }
    const int qpos = t == s ? spec_pos : a.positions[t];
    int kbeg, kend;
    split_key_range<ITER>(a, n, qpos, split, kbeg, kend);
    const bool mine = FUSED && kbeg <= n - 1 && n - 1 < kend;  // holds the step's key
    kend -= mine;
    const int ntiles = kend > kbeg ? (kend - kbeg + kTileKeys - 1) / kTileKeys : 0;
    const int nmine = ntiles > warp ? (ntiles - warp + NW - 1) / NW : 0;  // tiles warp + NW j

    // Block id of key lane % 16 of the warp's tile j (-1 past the end), then the copies of
    // the tile's K/V rows into stage j % STAGES (an empty group past the end): whole rows per
    // instruction (32 lanes, RPI rows of CPR 16-byte chunks), block ids passed by shuffles.
    auto block_of = [&](int j) {
      const int key = kbeg + (warp + j * NW) * kTileKeys + (TMA ? 0 : lane & (kTileKeys - 1));
      return j < nmine && key < kend ? __ldg(bt + (key >> a.log2_block)) : -1;
    };
    auto stage_of = [&](int j) { return TMA ? static_cast<int>((used + j) % STAGES) : j % STAGES; };
    auto issue = [&](int j, int32_t blk) {
      if constexpr (TMA) {
        // One expect_tx and one box each of K and V, by lane 0 (the tile lies in one block: key
        // ranges start at a multiple of 16 without a sliding window, blocks hold >= 16 slots).
        if (j < nmine && lane == 0) {
          const int tb = kbeg + (warp + j * NW) * kTileKeys;
          if constexpr (!FUSED) wait_for_write_if(a, tb + kTileKeys > n - nnew);
          const int st = stage_of(j);
          P* ks = ring + st * 2 * TILE;
          uint64_t* bar = &s_full[warp * STAGES + st];
          const int slot = (blk << a.log2_block) | (tb & bmask);
          TmaSteps::fence();  // the warp's generic reads of this stage before the copy
          TmaSteps::expect(bar, Cfg::STAGE);
          TmaSteps::load(ks, tmk, hkv, slot, bar);
          TmaSteps::load(ks + TILE, tmv, hkv, slot, bar);
        }
        return;
      }
      if (j < nmine) {
        const int tb = kbeg + (warp + j * NW) * kTileKeys;
        // the keys of this step come from kv_write (fused: from no CTA's pool copy)
        if constexpr (!FUSED) wait_for_write_if(a, tb + kTileKeys > n - nnew);
        P* ks = ring + stage_of(j) * 2 * TILE;
#pragma unroll
        for (int i = 0; i < kTileKeys / RPI; ++i) {
          const int r = i * RPI + lane / CPR;
          const int32_t b = __shfl_sync(0xffffffffu, blk, r);
          const bool ok = b >= 0;
          const int64_t slot =
              (static_cast<int64_t>(ok ? b : 0) << a.log2_block) | ((tb + r) & bmask);
          // codes: swizzled chunks (direct) or row-major (widened)
          const int so = kDirect ? r * D + (((lane % CPR) ^ (r & 7)) << 4)
                         : kQuant ? r * D + kcol
                                  : swz(r, kcol);
          cp_async16(ks + so, kpool + slot * slot_stride, ok);
          cp_async16(ks + TILE + so, vpool + slot * slot_stride, ok);
        }
      }
      cp_async_commit();
    };
    int32_t blk[STAGES];
    const bool spec = t == q0 && kbeg == 0;  // split 0 from key 0 (a later split there has no keys)
#pragma unroll
    for (int j = 0; j < STAGES; ++j) {
      const int key = (warp + j * NW) * kTileKeys + (lane & (kTileKeys - 1));
      blk[j] = !spec ? block_of(j) : j < nmine && key < kend ? spec_blk[j] : -1;
    }

#pragma unroll
    for (int j = 0; j < STAGES - 1; ++j) issue(j, blk[j]);
    int32_t next = blk[STAGES - 1];  // block of tile j + STAGES - 1 at iteration j

    // Rotated and rounded to T (q as the separate rotary pass would store it, k as kv_write).
    auto rotated = [&](float x, float partner, int c) {
      const bool first = c < half;
      const float2 cs = s_cs[first ? c : c - half];
      return rotate_q_cs<T>(x, partner, first, cs.x, cs.y);
    };
    if constexpr (FUSED) {
      if (tid < half) s_cs[tid] = rotary_cs(static_cast<float>(qpos), inv_freq, a.rotary_scaling);
      if (kQuant && tid < kMaxRows) s_qmax[tid] = 0u;
      __syncthreads();
      float xq[NSTAGE];  // quantized pool: this thread's q elements (rounded to T)
#pragma unroll
      for (int i = 0; i < NSTAGE; ++i) {
        const int idx = tid + i * NT, g = idx / D, c = idx - g * D;
        if (g >= ROWS) continue;  // (whole warps: a warp's elements are one row's)
        float x = to_float(xs[i]);
        if (c < a.rot && g <= kMaxRows) x = rotated(x, to_float(ys[i]), c);
        if constexpr (kQuant) {
          // q: its heads' largest magnitudes first (as unfused); k, v: the codes kv_write stores
          xq[i] = x;
          if (g < kMaxRows) {
            const float mx = warp_max(fabsf(x));
            if (lane == 0) atomicMax(s_qmax + g, __float_as_uint(mx));
          } else {
            s_kv[(g - kMaxRows) * D + c] = to_pool<T, P>(x, pool_scale(a.kv_scales, g - kMaxRows));
          }
        } else if (g < kMaxRows) {
          s_q[swz(g, c)] = from_float<T>(x);
        } else {
          s_kv[(g - kMaxRows) * D + c] = from_float<T>(x);
        }
      }
      __syncthreads();
      if constexpr (kQuant) {
#pragma unroll
        for (int i = 0; i < NSTAGE; ++i) {
          const int idx = tid + i * NT, g = idx / D;
          if (g < kMaxRows)
            s_q[swz(g, idx - g * D)] =
                __float2half_rn(xq[i] / f16_range_factor(__uint_as_float(s_qmax[g])));
        }
        __syncthreads();
      }
      if (mine) {
        // The step's k and v to the pool (16 bytes a thread), then its score against each head:
        // fp32 dot of the T-rounded rows (quantized pool: of q as staged, times its range
        // factor, and the k the code stands for).
        constexpr int VEC = 16 / static_cast<int>(sizeof(KV));
        if (new_slot >= 0 && tid < 2 * D / VEC) {
          const int e = tid * VEC, which = e / D;
          KV* dst = const_cast<KV*>(static_cast<const KV*>(which == 0 ? a.k_pool : a.v_pool)) +
                    (new_slot * a.num_kv_heads + hkv) * D + (e - which * D);
          *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(s_kv + e);
        }
        for (int g = warp; g < GQ; g += NW) {
          float acc = 0.f;
          for (int c = lane; c < D; c += 32) {
            if constexpr (kQuant)
              acc += to_float(s_q[swz(g, c)]) * code_value(s_kv[c]);
            else
              acc += to_float(s_q[swz(g, c)]) * to_float(s_kv[c]);
          }
          acc = warp_sum(acc);
          if (lane == 0)
            s_snew[g] = kQuant ? acc * a.scale_log2 * pool_scale(a.kv_scales, 0) *
                                     f16_range_factor(__uint_as_float(s_qmax[g]))
                               : acc * a.scale_log2;
        }
      }
    } else {
      for (int j = tid; j < half; j += NT)
        s_cs[j] = rotary_cs(static_cast<float>(qpos), __ldg(a.inv_freq + j), a.rotary_scaling);
      if (kQuant && tid < kMaxRows) s_qmax[tid] = 0u;
      __syncthreads();
      float xq[QPT];  // quantized pool: this thread's q elements, rounded to T
#pragma unroll
      for (int i = 0; i < QPT; ++i) {
        const int idx = tid + i * NT, g = idx / D, c = idx - g * D;
        float x = 0.f;
        if (g < ng) {
          const T* row = qrow + g * D;
          x = to_float(row[c]);
          if (c < a.rot) x = rotated(x, to_float(row[c < half ? c + half : c - half]), c);
        }
        if constexpr (kQuant) {
          xq[i] = to_float(from_float<T>(x));
          const float mx = warp_max(fabsf(xq[i]));
          if (lane == 0) atomicMax(s_qmax + g, __float_as_uint(mx));  // >= 0: ordered as unsigned
        } else {
          s_q[swz(g, c)] = from_float<T>(x);
        }
      }
      __syncthreads();
      if constexpr (kQuant) {
#pragma unroll
        for (int i = 0; i < QPT; ++i) {
          const int idx = tid + i * NT, g = idx / D;
          s_q[swz(g, idx - g * D)] =
              __float2half_rn(xq[i] / f16_range_factor(__uint_as_float(s_qmax[g])));
        }
        __syncthreads();
      }
    }
    uint32_t qa[D / 16][2];  // A registers 0 and 2 (rows 0..7) of each k-step
    if constexpr (kDirect) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {  // q[4w .. 4w + 3], w = 8 t + kk: (0, 2), (1, 3)
        const uint2 u = *reinterpret_cast<const uint2*>(s_q + swz(lane >> 2, 4 * (8 * t4 + kk)));
        qa[kk][0] = __byte_perm(u.x, u.y, 0x5410);
        qa[kk][1] = __byte_perm(u.x, u.y, 0x7632);
      }
    } else {
#pragma unroll
      for (int kk = 0; kk < D / 16; kk += 2) {
        uint32_t r[4];
        ldmatrix_x4(r, s_q + swz(lane & 7, kk * 16 + (lane >> 3) * 8));
        qa[kk][0] = r[0];
        qa[kk][1] = r[1];
        qa[kk + 1][0] = r[2];
        qa[kk + 1][1] = r[3];
      }
    }

    float o[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    float m = -1e30f, l = 0.f;  // of row lane / 4 (log2 units); l: this lane's columns
    // quantized pool: row lane / 4 of q was divided by its f16 range factor
    const float scale = kQuant ? times_widened_scale<P>(a.scale_log2, a.kv_scales, 0) *
                                     f16_range_factor(__uint_as_float(s_qmax[lane >> 2]))
                               : a.scale_log2;
    DirectState<D> ds;  // the direct path's state (heads 2t, 2t + 1 of lane (g, t))
    if constexpr (kDirect) {
#pragma unroll
      for (int mt = 0; mt < D / 16; ++mt) ds.o[mt][0] = ds.o[mt][1] = ds.o[mt][2] = ds.o[mt][3] = 0.f;
#pragma unroll
      for (int h = 0; h < 2; ++h)
        ds.scale[h] = times_widened_scale<P>(a.scale_log2, a.kv_scales, 0) *
                      f16_range_factor(__uint_as_float(s_qmax[2 * t4 + h]));
    }

    for (int j = 0; j < nmine; ++j) {
      const int tb = kbeg + (warp + j * NW) * kTileKeys;
      if constexpr (TMA) {
        TmaSteps::wait(&s_full[warp * STAGES + stage_of(j)], ((used + j) / STAGES) & 1);
        if (tb + kTileKeys > kend) {  // V rows past the range: stale or unwritten pool slots
          constexpr int RB = D * static_cast<int>(sizeof(P));  // bytes a row (H lines)
          uint4* vz = reinterpret_cast<uint4*>(ring + stage_of(j) * 2 * TILE + TILE);
          for (int c = (kend - tb) * (RB / 16) + lane; c < kTileKeys * (RB / 16); c += 32)
            vz[c] = make_uint4(0u, 0u, 0u, 0u);
        }
      } else {
        cp_async_wait<STAGES - 2>();
      }
      __syncwarp();  // tile j landed for the whole warp; the stage refilled next was read
      issue(j + STAGES - 1, next);
      next = block_of(j + STAGES);
      const P* st = ring + stage_of(j) * 2 * TILE;  // K codes, then V (direct)
      if constexpr (kDirect) {
        direct_tile<P, C, D>(ds, st, qa, lane, tb, kend);
      } else {
        const C* Kt = nullptr;  // the f16 K then V tile (quantized pools: widened)
        if constexpr (kQuant) {
          widen_stage<P, D, kTileKeys>(wide, st, lane);
          __syncwarp();
          Kt = wide;
        } else {
          Kt = st;
        }
        const C* Vt = Kt + TILE;

        float sc[2][4];
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
          uint32_t b[4];
          ldmatrix_x4(b, Kt + kv_at(koff, kk));
          const uint32_t qk[4] = {qa[kk][0], 0u, qa[kk][1], 0u};
          prefill::mma16816<C>(sc[0], qk, b[0], b[1]);
          prefill::mma16816<C>(sc[1], qk, b[2], b[3]);
        }
        float mx = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const bool in = tb + nt * 8 + 2 * t4 + e < kend;
            sc[nt][e] = in ? sc[nt][e] * scale : -INFINITY;
            mx = fmaxf(mx, sc[nt][e]);
          }
        }
        mx = fmaxf(m, prefill::quad_max(mx));
        const float corr = prefill::ex2(m - mx);
        m = mx;
        float ps = 0.f;
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
          sc[nt][0] = prefill::ex2(sc[nt][0] - mx);
          sc[nt][1] = prefill::ex2(sc[nt][1] - mx);
          ps += sc[nt][0] + sc[nt][1];
        }
        l = fmaf(l, corr, ps);
#pragma unroll
        for (int dt = 0; dt < D / 8; ++dt) {
          o[dt][0] *= corr;
          o[dt][1] *= corr;
        }
        const uint32_t pa[4] = {prefill::pack2<C>(sc[0][0], sc[0][1]), 0u,
                                prefill::pack2<C>(sc[1][0], sc[1][1]), 0u};
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
          uint32_t b[4];
          prefill::ldmatrix_x4_trans(b, Vt + kv_at(voff, dp));
          prefill::mma16816<C>(o[2 * dp], pa, b[0], b[1]);
          prefill::mma16816<C>(o[2 * dp + 1], pa, b[2], b[3]);
        }
      }
    }
    if constexpr (!TMA) cp_async_wait<0>();  // (TMA: every issued tile was waited for)
    used += nmine;
    if constexpr (!kDirect) l = prefill::quad_sum(l);
    __syncthreads();  // every warp is done with its ring before it becomes the merge buffer
    const int g = lane >> 2;
    if constexpr (kDirect) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float lh = ds.l[h];  // summed over the lanes of the head (g = 0..7)
#pragma unroll
        for (int off = 4; off < 32; off <<= 1) lh += __shfl_xor_sync(0xffffffffu, lh, off);
        const int head = 2 * t4 + h;
        if (head < GQ) {
          float* dst = sm_o + (warp * GQ + head) * D + 16 * g;
#pragma unroll
          for (int mt = 0; mt < D / 16; ++mt)  // d = 16 g + 2 mt, + 1
            *reinterpret_cast<float2*>(dst + 2 * mt) = make_float2(ds.o[mt][h], ds.o[mt][2 + h]);
          if (g == 0) {
            sm_m[warp * GQ + head] = ds.m[h];
            sm_l[warp * GQ + head] = lh;
          }
        }
      }
    } else if (g < GQ) {
      float* dst = sm_o + (warp * GQ + g) * D;
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt)
        *reinterpret_cast<float2*>(dst + dt * 8 + 2 * t4) = make_float2(o[dt][0], o[dt][1]);
      if (t4 == 0) {
        sm_m[warp * GQ + g] = m;
        sm_l[warp * GQ + g] = l;
      }
    }
    if constexpr (FUSED) {
      for (int idx = tid; idx < GQ * D; idx += NT) {  // part NW: the step's key, or empty
        const int hg = idx / D, d = idx - hg * D;
        float vd = 0.f;  // quantized pool: in the units of the widened codes (see finish_decode)
        if constexpr (kQuant) vd = code_value(s_kv[D + d]) * kWiden<P>;
        else vd = to_float(s_kv[D + d]);
        sm_o[(NW * GQ + hg) * D + d] = mine ? vd : 0.f;
        if (d == 0) {
          sm_m[NW * GQ + hg] = mine ? s_snew[hg] : -1e30f;
          sm_l[NW * GQ + hg] = mine ? 1.f : 0.f;
        }
      }
    }
    __syncthreads();
    // Fused: 16 splits merged in one round trip (the planner's split count at B=1 ctx 4096).
    finish_decode<T, D, GQ, NP, NT, FUSED ? 16 : 8>(
        a, sm_o, sm_m, sm_l, t, s, split, h0, ng, kQuant ? times_widened_scale<P>(1.f, a.kv_scales, 1) : 1.f);
    if constexpr (TMA) TmaSteps::fence();  // the merge's writes before the next token's copies
  }
  wait_before_exit(a);
}

template <typename T, typename P, int D, int GQ, int NW, int STAGES, bool FUSED>
__global__ void __launch_bounds__(NW * 32) decode_mma_kernel(const Args a) {
  decode_mma_body<T, P, D, GQ, NW, STAGES, FUSED, false>(a, nullptr, nullptr);
}

// Launched only where the sm_90a code is loaded (make_mma_fn asks wgmma_binary_ready).
template <typename T, typename P, int D, int GQ, int NW, int STAGES, bool FUSED>
__global__ void __launch_bounds__(NW * 32)
    decode_mma_tma_kernel(const Args a, const __grid_constant__ CUtensorMap tmk,
                          const __grid_constant__ CUtensorMap tmv) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  if constexpr (kTmaStage<P, D>) decode_mma_body<T, P, D, GQ, NW, STAGES, FUSED, true>(a, &tmk, &tmv);
#else
  __trap();
#endif
}

// Tensor copies unless TRTC_PA_DECODE_TMA=0 (tuning override, for benchmarks and tests).
bool decode_tma_enabled() {
  const char* v = getenv("TRTC_PA_DECODE_TMA");
  return !(v != nullptr && atoi(v) == 0);
}

// The quantized pools' 8-warp kernel is the planner's variant of one CTA a SM (grids of one wave),
// but its rings (96 KB) would let two CTAs share an SM, and the block scheduler then doubled CTAs
// up on some SMs while others idled (H200, fp8 B=16 ctx 4096, 128 CTAs: 53.9 against 43.5 us).
// It asks for more than half an SM's shared memory.
template <typename P, int NW>
int mma_smem(int smem) {
  return kQuantPool<P> && NW == 8 ? smem_alone_on_sm(smem) : smem;
}

template <typename T, typename P, int D, int GQ, int NW, int STAGES, bool FUSED = false>
DecodeFn make_mma_fn() {
  static const int smem = mma_smem<P, NW>(MmaCfg<P, D, GQ, NW, STAGES, FUSED>::SMEM);
  auto* fn = decode_mma_kernel<T, P, D, GQ, NW, STAGES, FUSED>;
  static const bool raised = [fn] {  // > 48 KB of dynamic shared memory needs an opt-in
    return cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) ==
           cudaSuccess;
  }();
  if (!raised) cudaGetLastError();
  DecodeFn f{fn, smem, NW * 32};
  if constexpr (kTmaStage<P, D>) {
    static const int tma_smem = mma_smem<P, NW>(MmaCfg<P, D, GQ, NW, STAGES, FUSED, true>::SMEM);
    auto* tfn = decode_mma_tma_kernel<T, P, D, GQ, NW, STAGES, FUSED>;
    static std::atomic<uint64_t> checked{0}, ready{0};
    static const bool traised = [tfn] {
      return cudaFuncSetAttribute(tfn, cudaFuncAttributeMaxDynamicSharedMemorySize, tma_smem) ==
             cudaSuccess;
    }();
    if (!traised) cudaGetLastError();
    if (traised && decode_tma_enabled() && wgmma_binary_ready(tfn, checked, ready)) {
      f.tma_fn = tfn;
      f.tma_smem = tma_smem;
    }
  }
  return f;
}

// Warps x ring stages by kind: kMma 4 x 3 (2 CTAs per SM), kMmaWide 8 x 3 (1 CTA per SM; the
// planner's pick for grids of one wave: H100, B=1 ctx 16 6.2 us vs 7.2, ctx 4096 13.0 vs 13.3;
// slower than 4 x 3 on many waves), kMmaShallow 4 x 2 (3 CTAs per SM; grids of many waves of short
// key ranges). TRTC_PA_DECODE_MMA=4,2, 4,3 or 8,3 overrides the kind (tuning override, for
// benchmarks and tests; 2 x 6 and 2 x 4 were slower). Fused instantiations exist for 16-bit
// pools at 4 x 3 and 8 x 3 (the planner's 4 x 3 for all-decode grids of more CTAs than SMs that
// one wave of it holds), for quantized pools at 8 x 3 (the one-wave variant the fused mode runs
// on; fn null otherwise). Quantized pools: 4 x 3 and 8 x 3 only (4 x 2 means 4 x 3), 4 heads
// a CTA only (pick_gq): fewer kernels to compile.
// Tensor copies (tma_fn) everywhere but the 16-bit 8-warp kernel, where they were no faster on
// the H200 (one-wave grids, fastest of three: B=16 ctx 4096 67.6 vs 67.5 us, B=32 ctx 2048
// 69.6 vs 69.4).
template <typename T, typename P, int D, int GQ>
DecodeFn mma_fn_g(DecodeKind kind, bool fused) {
  constexpr DecodeFn none{nullptr, 0, 0};
  constexpr bool kQuant = kQuantPool<P>;
  const char* v = getenv("TRTC_PA_DECODE_MMA");
  const bool eight = v != nullptr ? strcmp(v, "8,3") == 0 : kind == DecodeKind::kMmaWide;
  const bool two = v != nullptr ? strcmp(v, "4,2") == 0 : kind == DecodeKind::kMmaShallow;
  if constexpr (!kQuant) {
    if (two) return fused ? none : make_mma_fn<T, P, D, GQ, 4, 2>();
    if (eight) {
      DecodeFn f = fused ? make_mma_fn<T, P, D, GQ, 8, 3, true>() : make_mma_fn<T, P, D, GQ, 8, 3>();
      f.tma_fn = nullptr;
      return f;
    }
    return fused ? make_mma_fn<T, P, D, GQ, 4, 3, true>() : make_mma_fn<T, P, D, GQ, 4, 3>();
  } else {
    if (fused) return eight ? make_mma_fn<T, P, D, GQ, 8, 3, true>() : none;
    return eight ? make_mma_fn<T, P, D, GQ, 8, 3>() : make_mma_fn<T, P, D, GQ, 4, 3>();
  }
}

template <typename T, typename P, int D>
DecodeFn mma_fn_d(int gq, DecodeKind kind, bool fused) {
  if (gq == 4) return mma_fn_g<T, P, D, 4>(kind, fused);
  if constexpr (!kQuantPool<P>) {
    if (gq == 8) return mma_fn_g<T, P, D, 8>(kind, fused);
  }
  return {nullptr, 0, 0};
}

template <typename T>
DecodeFn mma_fn_t(trtc_dtype kv_dtype, int head_dim, int gq, DecodeKind kind, bool fused) {
  const bool d64 = head_dim == 64;
  if (kv_dtype == TRTC_FP8_E4M3)
    return d64 ? mma_fn_d<T, fp8, 64>(gq, kind, fused) : mma_fn_d<T, fp8, 128>(gq, kind, fused);
  if (kv_dtype == TRTC_INT8)
    return d64 ? mma_fn_d<T, int8_t, 64>(gq, kind, fused) : mma_fn_d<T, int8_t, 128>(gq, kind, fused);
  return d64 ? mma_fn_d<T, T, 64>(gq, kind, fused) : mma_fn_d<T, T, 128>(gq, kind, fused);
}

}  // namespace

DecodeFn decode_mma_fn(trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim, int gq, DecodeKind kind,
                       bool fused) {
  if (!decode_mma_exists(dtype, kv_dtype, head_dim, gq)) return {nullptr, 0, 0};
  return dtype == TRTC_F16 ? mma_fn_t<__half>(kv_dtype, head_dim, gq, kind, fused)
                           : mma_fn_t<__nv_bfloat16>(kv_dtype, head_dim, gq, kind, fused);
}

int decode_mma_keys_per_iter(const DecodeFn& f) { return f.threads / 32 * kTileKeys; }

bool decode_mma_exists(trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim, int gq) {
  const bool quant = kv_dtype == TRTC_FP8_E4M3 || kv_dtype == TRTC_INT8;
  return (kv_dtype == dtype || quant) && (dtype == TRTC_F16 || dtype == TRTC_BF16) &&
         (head_dim == 64 || head_dim == 128) && (gq == 4 || (gq == 8 && !quant));
}

}  // namespace pa
}  // namespace trtc
