// PagedAttention prefill, tile kernel: FlashAttention-2 style tiles on tensor cores (mma.sync
// m16n8k16, fp16/bf16 in, fp32 accumulate). It runs what the fast kernels do not take: a
// non-positive softmax scale, and any pool when TRTC_PA_PREFILL_LEGACY=1; the fast kernels
// (paged_attention_prefill_fa.cu; for head_dim 128 on sm_90a paged_attention_prefill_wgmma.cu
// and paged_attention_prefill_wg2.cu, chosen by pick() below) take 16-bit and quantized pools.
//
// CTA = (query head, tile of 128 query rows of one sequence); 8 warps, 16 rows each. q rows
// are copied raw and rotated in shared memory. Keys are read 64 at a time through the block
// table with cp.async into padded shared memory, two K/V stages deep:
//
//   wait tile j, barrier | S = Q K_j^T, online softmax, O += P V_j | barrier | issue tile j+2
//
// A warp skips key tiles that are masked for all its rows (the causal diagonal). Tiles are
// found through tile_cum (prefix sums of tiles per sequence, written by the kv_write planning
// block); grid.y is a shape-only bound, walked from the end so that the long last tiles of
// the sequences start first; surplus CTAs return at once.
//
// Quantized pool (fp8/int8, P): the K/V stages hold the raw bytes (cp.async as above); after
// its wait each thread widens the chunks it copied itself into one K and one V tile of T in
// shared memory (exact), before the barrier that already precedes the math. The k scale is
// folded into the softmax scale, the v scale into the output.
#include <cstdlib>

#include "paged_attention_prefill.cuh"

namespace trtc {
namespace pa {
namespace prefill {
namespace {

constexpr int kBM = kPrefillBlockM, kPad = 8, kWarps = kBM / 16;
constexpr int kThreadsP = kWarps * 32;

// Quantized pool: widens the chunks this thread copied (load_kv_tile<P, D, D>) into T rows.
template <typename T, typename P, int D>
__device__ __forceinline__ void widen_kv_tile(T* kt, T* vt, const P* ks, const P* vs) {
  constexpr int CPR = D / 16, LD = D + kPad;
  const int col = (threadIdx.x % CPR) * 16;
#pragma unroll
  for (int r = threadIdx.x / CPR; r < kBN; r += kThreadsP / CPR) {
#pragma unroll
    for (int m = 0; m < 2; ++m) {
      float f[16];
      PoolVec<P>::to_floats(*reinterpret_cast<const uint4*>((m ? vs : ks) + r * D + col), f);
      T* dst = (m ? vt : kt) + r * LD + col;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        Vec16<T> x;
        x.from_floats(*reinterpret_cast<const float(*)[8]>(f + 8 * h));
        x.store(dst + 8 * h);
      }
    }
  }
}

// MINB: CTAs per SM the registers are capped for. MINB == 1 keeps the q fragments in
// registers (about 220 of them); MINB == 2 (the default: 208 vs 251 us on 8 x 512, H100)
// caps at 128 and reloads q from shared memory.
template <typename T, typename P>
struct PrefillSmem {
  static constexpr bool kQuant = kQuantPool<P>;
  static constexpr int kTStages = kQuant ? 1 : 2;  // K/V tiles of T (the stages themselves if P == T)
  template <int D>
  static constexpr int bytes() {
    return (kBM + 2 * kTStages * kBN) * (D + kPad) * static_cast<int>(sizeof(T)) +
           (kQuant ? 2 * 2 * kBN * D * static_cast<int>(sizeof(P)) : 0) + kSmemAlign;  // align_smem
  }
};

template <typename T, typename P, int D, int MINB>
__global__ void __launch_bounds__(kThreadsP, MINB) prefill_kernel(const Args a) {
  constexpr int LD = D + kPad;
  constexpr bool kQuant = PrefillSmem<T, P>::kQuant;
  constexpr int TST = PrefillSmem<T, P>::kTStages;
  constexpr int LDS = kQuant ? D : LD;     // row stride of a stage
  extern __shared__ __align__(16) unsigned char smem_base[];
  allow_next_kernel();  // the decode kernel after this one (see Args::write_done)
  T* Qs = reinterpret_cast<T*>(align_smem(smem_base));  // [kBM][LD]
  T* Ks = Qs + kBM * LD;                   // [TST][kBN][LD]
  T* Vs = Ks + TST * kBN * LD;             // [TST][kBN][LD]
  // the stages: [2][kBN][LDS] each of K and V (raw bytes of a quantized pool)
  P* Kst = kQuant ? reinterpret_cast<P*>(Vs + TST * kBN * LD) : reinterpret_cast<P*>(Ks);
  P* Vst = kQuant ? Kst + 2 * kBN * LDS : reinterpret_cast<P*>(Vs);
  const int h = blockIdx.x;
  TileRef tr;
  if (!locate_tile(a, kBM, tr)) return;
  const int s = tr.s;
  const int n = a.seq_lens[s];
  const int hkv = h / a.group;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int32_t* bt = a.block_tables + static_cast<int64_t>(s) * a.max_blocks;
  const int64_t slot_stride = static_cast<int64_t>(a.num_kv_heads) * D;
  const P* kpool = static_cast<const P*>(a.k_pool);
  const P* vpool = static_cast<const P*>(a.v_pool);
  const float scale_log2 = a.scale_log2 * pool_scale(a.kv_scales, 0);
  const float vscale = pool_scale(a.kv_scales, 1);

  // Raw q rows first: they do not depend on the key range.
  load_q_rows<T, D, kThreadsP>(Qs, a, tr, h, kBM, RowMajor<LD>{});
  cp_async_commit();
  int minpos, maxpos;
  tile_positions(a, tr, minpos, maxpos);
  const int W = a.sliding_window;
  const int kend = min(n, maxpos + 1);
  const int kstart = (W > 0 ? max(0, minpos - W + 1) : 0) & ~(kBN - 1);

#pragma unroll
  for (int st = 0; st < 2; ++st) {
    if (kstart + st * kBN < kend)
      load_kv_tile<P, D, kThreadsP>(Kst + st * kBN * LDS, Vst + st * kBN * LDS, kpool, vpool, bt,
                                    kstart + st * kBN, kend, a.log2_block, slot_stride, hkv,
                                    RowMajor<LDS>{});
    cp_async_commit();
  }

  const int t4 = lane & 3;
  const int r0 = warp * 16 + (lane >> 2);
  const WarpRows wr = warp_rows(a, tr, r0);
  const int pos0 = wr.pos0, pos1 = wr.pos1, wmax = wr.wmax, wmin = wr.wmin;

  cp_async_wait<2>();
  __syncthreads();
  if (a.rot > 0) {
    rotate_q_rows<T, kThreadsP>(Qs, a, tr, RowMajor<LD>{});
    __syncthreads();
  }
  constexpr bool kQReg = MINB == 1;
  const T* qfrag = Qs + (warp * 16 + (lane & 15)) * LD + (lane >> 4) * 8;
  uint32_t qa[kQReg ? D / 16 : 2][4];
  if constexpr (kQReg) {
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) ldmatrix_x4(qa[kk], qfrag + kk * 16);
  }

  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m0 = -1e30f, m1 = -1e30f, l0 = 0.f, l1 = 0.f;

  for (int kt = kstart, it = 0; kt < kend; kt += kBN, ++it) {
    cp_async_wait<1>();
    if constexpr (kQuant) widen_kv_tile<T, P, D>(Ks, Vs, Kst + (it & 1) * kBN * LDS, Vst + (it & 1) * kBN * LDS);
    __syncthreads();
    const T* Kt = Ks + (TST == 2 ? (it & 1) : 0) * kBN * LD;
    const T* Vt = Vs + (TST == 2 ? (it & 1) : 0) * kBN * LD;
    if (kt <= wmax && (W == 0 || kt + kBN > wmin - W + 1)) {
      float sc[kBN / 8][4];
#pragma unroll
      for (int nt = 0; nt < kBN / 8; ++nt) {
        sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk += 2) {
          uint32_t b[4];
          ldmatrix_x4(b, Kt + (nt * 8 + (lane & 7)) * LD + kk * 16 + (lane >> 3) * 8);
          if constexpr (kQReg) {
            mma16816<T>(sc[nt], qa[kk], b[0], b[1]);
            mma16816<T>(sc[nt], qa[kk + 1], b[2], b[3]);
          } else {
            ldmatrix_x4(qa[0], qfrag + kk * 16);
            ldmatrix_x4(qa[1], qfrag + kk * 16 + 16);
            mma16816<T>(sc[nt], qa[0], b[0], b[1]);
            mma16816<T>(sc[nt], qa[1], b[2], b[3]);
          }
        }
      }
      // Online softmax in log2 units; mask only tiles not fully visible to the warp's rows.
      const bool full = kt + kBN - 1 <= wmin && kt + kBN <= n && (W == 0 || kt > wmax - W);
      float mx0 = m0, mx1 = m1;
#pragma unroll
      for (int nt = 0; nt < kBN / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float v = sc[nt][e] * scale_log2;
          if (!full) {
            const int key = kt + nt * 8 + 2 * t4 + (e & 1);
            const int p = e < 2 ? pos0 : pos1;
            if (key > p || key >= n || (W > 0 && key <= p - W)) v = -INFINITY;
          }
          sc[nt][e] = v;
        }
        mx0 = fmaxf(mx0, fmaxf(sc[nt][0], sc[nt][1]));
        mx1 = fmaxf(mx1, fmaxf(sc[nt][2], sc[nt][3]));
      }
      mx0 = quad_max(mx0);
      mx1 = quad_max(mx1);
      const float c0 = exp2f(m0 - mx0), c1 = exp2f(m1 - mx1);
      m0 = mx0;
      m1 = mx1;
      l0 *= c0;
      l1 *= c1;
#pragma unroll
      for (int nt = 0; nt < kBN / 8; ++nt) {
        sc[nt][0] = exp2f(sc[nt][0] - mx0);
        sc[nt][1] = exp2f(sc[nt][1] - mx0);
        sc[nt][2] = exp2f(sc[nt][2] - mx1);
        sc[nt][3] = exp2f(sc[nt][3] - mx1);
        l0 += sc[nt][0] + sc[nt][1];
        l1 += sc[nt][2] + sc[nt][3];
      }
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        o[dt][0] *= c0;
        o[dt][1] *= c0;
        o[dt][2] *= c1;
        o[dt][3] *= c1;
      }
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) {
        const uint32_t pa[4] = {pack2<T>(sc[2 * kk][0], sc[2 * kk][1]), pack2<T>(sc[2 * kk][2], sc[2 * kk][3]),
                                pack2<T>(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                                pack2<T>(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
        for (int dt = 0; dt < D / 8; dt += 2) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, Vt + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + dt * 8 + (lane >> 4) * 8);
          mma16816<T>(o[dt], pa, b[0], b[1]);
          mma16816<T>(o[dt + 1], pa, b[2], b[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with this stage
    if (kt + 2 * kBN < kend)
      load_kv_tile<P, D, kThreadsP>(Kst + (it & 1) * kBN * LDS, Vst + (it & 1) * kBN * LDS, kpool,
                                    vpool, bt, kt + 2 * kBN, kend, a.log2_block, slot_stride, hkv,
                                    RowMajor<LDS>{});
    cp_async_commit();
  }
  cp_async_wait<0>();
  store_rows<T, D>(a, tr, h, r0, o, l0, l1, vscale);
}

template <typename T, typename P, int D, int MINB>
int prefill_d(const Args& a, int tile_bound, cudaStream_t stream) {
  constexpr int smem = PrefillSmem<T, P>::template bytes<D>();
  auto kernel = prefill_kernel<T, P, D, MINB>;
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return static_cast<int>(e);
  }
  kernel<<<dim3(a.num_heads, tile_bound), kThreadsP, smem, stream>>>(a);
  return static_cast<int>(cudaGetLastError());
}

template <typename T, typename P, int D>
int prefill_t(const Args& a, int tile_bound, cudaStream_t stream) {
  const char* minb = getenv("TRTC_PA_PREFILL_MINB");  // tuning override, for benchmarks
  if (minb != nullptr && atoi(minb) == 1) return prefill_d<T, P, D, 1>(a, tile_bound, stream);
  return prefill_d<T, P, D, 2>(a, tile_bound, stream);
}

enum class Kernel { tile, mma, wg, wg2 };

// The kernel launch_prefill runs for these operands on the current device. head_dim 128 on
// sm_90a: the warp-specialized kernel where a block table spans >= kWg2MinSpan keys (its tiles of
// 128 rows and 128 keys pay off on long contexts: H100, 1 x 4096 new 414 vs 459 us, 8 x 512 over
// 1536 cached 385 vs 442), else the one-warpgroup kernel (short chunks: 8 x 512 new 121 vs 127,
// 32 x 128 new 89 vs 110: its 64-row CTAs, 3 per SM, overlap each other's start). Quantized
// pools take the warp-specialized kernel from kWg2MinSpanQuant keys: its producer widens each
// tile once for 128 rows while the consumers compute, where the one-warpgroup kernel widens
// every tile for 64 rows between its MMAs (H200, fp8: 8 x 512 new 135.9 vs 146.4 us, over 1536
// cached 384 vs 547; 32 x 128 new 112.4 vs 98.9). Elsewhere quantized pools take the mma.sync
// kernel (it widens its codes too), except at head_dim 128 over tables of >= kWg2MinSpan keys,
// where the tile kernel stays; other head sizes the mma.sync kernel. Tuning
// overrides for benchmarks and tests: TRTC_PA_PREFILL_LEGACY=1 the tile kernel,
// TRTC_PA_PREFILL_MMA=1 the mma.sync kernel, TRTC_PA_PREFILL_WG=1 / 2 the one-warpgroup /
// warp-specialized wgmma kernel.
constexpr long kWg2MinSpan = 1024, kWg2MinSpanQuant = 512;
Kernel pick(trtc_dtype dtype, trtc_dtype kv_dtype, float scale, int head_dim, long span) {
  if (!fast_prefill(dtype, kv_dtype, scale)) return Kernel::tile;
  if (head_dim != 128 || !wgmma_prefill()) {
    // quantized pools at head_dim 128 over long block tables: the tile kernel (H100 with the
    // mma.sync kernel forced, 8 x 512 over 1536 cached: int8 757 vs 664 us, fp8 763 vs 744; new
    // tokens 169-170 vs 184-198 us; head_dim 64 gains both ways)
    if (kv_dtype != dtype && head_dim == 128 && span >= kWg2MinSpan) return Kernel::tile;
    return Kernel::mma;
  }
  const char* wg = getenv("TRTC_PA_PREFILL_WG");
  const int forced = wg != nullptr ? atoi(wg) : 0;
  if (forced == 1 || !wg2_prefill()) return Kernel::wg;
  const long min_span = kv_dtype != dtype ? kWg2MinSpanQuant : kWg2MinSpan;
  return forced == 2 || span >= min_span ? Kernel::wg2 : Kernel::wg;
}

}  // namespace
}  // namespace prefill

int prefill_tile_rows(trtc_dtype dtype, trtc_dtype kv_dtype, float scale, int head_dim, long span) {
  switch (prefill::pick(dtype, kv_dtype, scale, head_dim, span)) {
    case prefill::Kernel::tile: return kPrefillBlockM;
    case prefill::Kernel::wg2: return prefill::kWg2Rows;
    default: return prefill::kFaRows;
  }
}

int launch_prefill(const Args& a, trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim,
                   int tile_bound, cudaStream_t stream) {
  if (dtype != TRTC_F16 && dtype != TRTC_BF16) return cudaErrorNotSupported;
  const long span = static_cast<long>(a.max_blocks) << a.log2_block;
  switch (prefill::pick(dtype, kv_dtype, a.scale_log2, head_dim, span)) {
    case prefill::Kernel::wg2: return prefill::launch_prefill_wg2(a, dtype, kv_dtype, tile_bound, stream);
    case prefill::Kernel::wg: return prefill::launch_prefill_wg(a, dtype, kv_dtype, tile_bound, stream);
    case prefill::Kernel::mma:
      return prefill::launch_prefill_fa(a, dtype, kv_dtype, head_dim, tile_bound, stream);
    case prefill::Kernel::tile: break;
  }
  return dispatch_pool(dtype, kv_dtype, [&](auto tag, auto pool_tag) {
    using T = decltype(tag);
    using P = decltype(pool_tag);
    if constexpr (sizeof(T) == 2) {
      return head_dim == 64 ? prefill::prefill_t<T, P, 64>(a, tile_bound, stream)
                            : prefill::prefill_t<T, P, 128>(a, tile_bound, stream);
    } else {
      return static_cast<int>(cudaErrorNotSupported);
    }
  });
}

}  // namespace pa
}  // namespace trtc
