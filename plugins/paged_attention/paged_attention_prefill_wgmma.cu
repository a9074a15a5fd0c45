// PagedAttention prefill, Hopper kernel (sm_90a, 16-bit pools of the activation type, head_dim
// 128, block tables spanning < 1024 keys; longer ones go to the warp-specialized kernel of
// paged_attention_prefill_wg2.cu): the fast kernel's tiling (paged_attention_prefill_fa.cu) on
// warpgroup MMAs. head_dim 64
// stays on the mma.sync kernel: this loop's D = 64 instance gave wrong outputs on the H100
// (max error 0.6, every 64-dim prefill test; not understood: D = 128 passes, and a pipelined
// loop of the same MMAs passed at D = 64), so it is not built.
//
// CTA = (query head, tile of kFaRows = 64 query rows) = one warpgroup; warp w owns rows
// 16w..16w+15, so each thread holds the same two rows as in the mma.sync kernel and shares its
// masking, online softmax and output code. q is rotated as it is staged (in the last K stage,
// first overwritten after the first barrier of the loop) and then held in registers as A
// fragments; K/V tiles of 64 keys stream through a ring of STAGES stages (cp.async through the
// block table) in wgmma's 128-byte swizzle (Swizzled128).
//
//   wait tile j, barrier |
//   S = Q K_j^T   (m64n64k16 x D/16; A = q fragments, B = K_j [key][d]: K-major),
//                 issuing tile j + STAGES - 1 while it runs
//   online softmax on S; P -> 16-bit A fragments in registers
//   O += P V_j    (m64n64k16 x BN/16 x D/64; B = V_j [key][d]: MN-major, transposed)
//
// Each MMA batch is waited for before its results are used; two CTAs per SM overlap one's
// softmax with the other's MMAs. The V descriptor's n extent is one 64-wide slab per MMA.
//
// With TMA (16-bit pools, blocks of >= 8 slots): warp 0 copies each K/V tile with tensor copies,
// one box (a block's rows of the kv head, or the tile's part of a longer block) x 64 columns
// a lane, through tensor maps of the two pools (made on the host, per pool, by
// pool_tensor_maps); each stage completes on an mbarrier. The V rows past the tile's key bound
// are zeroed once landed (they may hold stale or never-written pool memory, which a zero
// probability would not cancel if it is not finite). Otherwise every thread copies 16-byte
// chunks (cp.async), zero-filling past the bound.
//
// Quantized pools (P = fp8 / int8) as in the mma.sync kernel: the ring holds codes, each landed
// tile is widened by the warpgroup into one f16 K/V tile in the same swizzle, and the MMAs run
// in f16 with q divided per row by a power of two (paged_attention_prefill_fa.cu). K is widened
// before S = Q K^T, V while it runs (H200, fp8, 8 x 512 new: 145.5 vs 148.4 us for both first).
#include <cuda.h>

#include <cstdlib>

#include "../common/wgmma.cuh"
#include "paged_attention_decode_codes.cuh"
#include "paged_attention_prefill.cuh"

namespace trtc {
namespace pa {
namespace prefill {
namespace {

constexpr int kWgThreads = 128;  // one warpgroup
static_assert(kBN == kFaRows, "q and the K/V tiles share one swizzled layout");

// Shared memory: K and V [STAGES][kBN][D] (q staged in the last K stage), from a 1024-aligned
// base; a quantized pool's codes [STAGES][K, V][kBN][D] then the widened f16 K and V (q staged
// there).
template <typename P, int D, int STAGES>
constexpr int wg_smem_bytes() {
  constexpr int ring = 2 * STAGES * kBN * D * static_cast<int>(sizeof(P));
  return ring + (kQuantPool<P> ? 2 * kBN * D * 2 : 0) + 1024;  // + alignment slack
}

// Rows of a tensor-copy box: a block's slots, at most a tile's keys (the kernel's boxes and the
// host's tensor maps must agree).
__host__ __device__ __forceinline__ int tma_box_rows(int log2_block) { return min(1 << log2_block, kBN); }

// Zeroes rows [r0, BN) of a swizzled 16-bit tile of D columns (whole 128-byte slab rows).
template <int BN, int D, int NT>
__device__ __forceinline__ void zero_rows_from(void* tile, int r0) {
  const int chunks = (BN - r0) * 8;  // 16-byte chunks a slab
  for (int c = threadIdx.x; c < (D / 64) * chunks; c += NT) {
    const int sl = c / chunks, i = c - sl * chunks;
    reinterpret_cast<uint4*>(static_cast<char*>(tile) + sl * BN * 128 + r0 * 128)[i] = make_uint4(0u, 0u, 0u, 0u);
  }
}

// MINB: CTAs per SM the registers are capped for. TMA: tiles by tensor copies (tmk, tmv: the
// K and V pools' maps; unused otherwise).
template <typename T, typename P, int D, int STAGES, int MINB, bool TMA>
__global__ void __launch_bounds__(kWgThreads, MINB)
    prefill_wg_kernel(const Args a, const __grid_constant__ CUtensorMap tmk, const __grid_constant__ CUtensorMap tmv) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr bool kQuant = kQuantPool<P>;
  static_assert(!(TMA && kQuant), "tensor copies of 16-bit pools only");
  using C = std::conditional_t<kQuant, __half, T>;  // the mma operand type
  constexpr int BN = kBN, TILE = BN * D;
  constexpr uint32_t kSlab = BN * 128;  // bytes of one 64-column slab of a tile
  const Swizzled128<BN> swz;
  extern __shared__ unsigned char smem_raw[];
  P* ring = reinterpret_cast<P*>(align_smem<1024>(smem_raw));  // (keeps the shared address space)
  __half* wide = reinterpret_cast<__half*>(ring + 2 * STAGES * TILE);  // quantized: f16 K, V
  // stage st's K and V: 16-bit pools [STAGES] K then [STAGES] V, codes stage by stage
  auto k_stage = [&](int st) { return kQuant ? ring + 2 * st * TILE : ring + st * TILE; };
  P* const vs16 = ring + STAGES * TILE;
  auto v_stage = [&](int st) { return kQuant ? ring + (2 * st + 1) * TILE : vs16 + st * TILE; };
  T* Qs = kQuant ? reinterpret_cast<T*>(wide) : reinterpret_cast<T*>(ring + (STAGES - 1) * TILE);
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
  const float scale = a.scale_log2;  // > 0 (the launcher checks)
  // TMA: stage st's mbarrier, its phase bits (one a stage, flipped at each use) and the rows
  // a box (the block's slots, at most a tile's); warp 0 initializes the barriers before its
  // first copies, the other warps wait on them only after the prologue's barrier.
  __shared__ alignas(8) uint64_t full[STAGES];
  uint32_t phases = 0;
  const int box_rows = tma_box_rows(a.log2_block);
  if constexpr (TMA) {
    if (threadIdx.x == 0) {
#pragma unroll
      for (int st = 0; st < STAGES; ++st) mbar_init(&full[st], 1);
      fence_mbarrier_init();
    }
    __syncwarp();
  }
  // K/V rows: in wgmma's swizzle (16-bit pools), row-major codes (widened later)
  auto load_tile = [&](int st, int key, int bound) {
    if constexpr (TMA) {  // warp 0: lane = (box j, 64-column slab, K or V)
      if (warp != 0) return;
      const int boxes = min(BN / box_rows, (bound - key + box_rows - 1) / box_rows);
      if (lane == 0) mbar_arrive_expect_tx(&full[st], boxes * 2 * (D / 64) * box_rows * 128);
      __syncwarp();
      const int j = lane / (2 * (D / 64)), sl = (lane / 2) % (D / 64), kv = lane & 1;
      if (j < boxes) {
        const int k0 = key + j * box_rows;
        const int slot = (__ldg(bt + (k0 >> a.log2_block)) << a.log2_block) | (k0 & ((1 << a.log2_block) - 1));
        P* dst = (kv ? v_stage(st) : k_stage(st)) + sl * BN * 64 + j * box_rows * 64;
        fence_async_shared();  // generic reads of this stage (q's fragments) before the copy
        tma_load_3d(dst, kv ? &tmv : &tmk, sl * 64, hkv, slot, &full[st]);
      }
    } else if constexpr (kQuant)
      load_kv_tile<P, D, kWgThreads, RowMajor<D>, BN>(k_stage(st), v_stage(st), kpool, vpool, bt, key, bound,
                                                      a.log2_block, slot_stride, hkv, RowMajor<D>{});
    else
      load_kv_tile<P, D, kWgThreads, Swizzled128<BN>, BN>(k_stage(st), v_stage(st), kpool, vpool, bt, key,
                                                          bound, a.log2_block, slot_stride, hkv, swz);
  };

  const bool q_vec = a.rot % 16 == 0;  // q rotated as it is staged, else in place after
  int kstart, kend;
  fast_prologue<BN, STAGES>(
      a, tr, n, kstart, kend, [&](int s, int key, int bound) { load_tile(s, key, bound); },
      [&] {
        QStage<T, D, kWgThreads, kFaRows> q;
        if (q_vec)
          q.load(a, tr, h, threadIdx.x);
        else
          load_q_rows<T, D, kWgThreads>(Qs, a, tr, h, kFaRows, swz);
        return q;
      },
      [&](QStage<T, D, kWgThreads, kFaRows>& q) {
        if (q_vec) q.store(Qs, a, tr, h, swz, threadIdx.x);
      });
  const int W = a.sliding_window;
  const int r0 = warp * 16 + (lane >> 2);
  const WarpRows wr = warp_rows(a, tr, r0);

  cp_async_wait<0>();  // q has landed (the prologue's last group)
  __syncthreads();
  if (!q_vec) {
    rotate_q_rows<T, kWgThreads>(Qs, a, tr, swz);
    __syncthreads();
  }
  uint32_t qa[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk)
    ldmatrix_x4(qa[kk], Qs + swz(warp * 16 + (lane & 15), kk * 16 + (lane >> 4) * 8));
  float2 rscale{};  // a quantized pool's softmax scale of rows r0, r0 + 8
  if constexpr (kQuant)  // times the k scale / kWiden and q's factor per row
    rscale = q_fragments_to_f16<T, D>(qa, times_widened_scale<P>(scale, a.kv_scales, 0));
  // the K (V) tiles the MMAs read: stage st of the ring at + st * TILE * 2, or the widened tile
  void* const k_base = kQuant ? static_cast<void*>(wide) : static_cast<void*>(k_stage(0));
  void* const v_base = kQuant ? static_cast<void*>(wide + TILE) : static_cast<void*>(v_stage(0));
  const uint32_t k_addr = static_cast<uint32_t>(__cvta_generic_to_shared(k_base));
  const uint32_t v_addr = static_cast<uint32_t>(__cvta_generic_to_shared(v_base));

  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float(&o32)[D / 64][32] = *reinterpret_cast<float(*)[D / 64][32]>(&o[0][0]);  // per 64 columns
  RowStats rs;

  // S = Q K^T of the tile in stage st into s (issued and committed, not waited for).
  auto issue_qk = [&](float (&s)[BN / 8][4], int st) {
    float(&s32)[32] = *reinterpret_cast<float(*)[32]>(&s[0][0]);
    const uint32_t kb = k_addr + st * TILE * 2;
    wgmma_fence();
#pragma unroll
    for (int k = 0; k < D / 16; ++k)  // k16 step k: slab k / 4, 32 bytes per step in the slab
      wgmma_m64n64k16_rs<C, false>(s32, qa[k], swizzled_desc(kb + (k >> 2) * kSlab + (k & 3) * 32), k > 0);
    wgmma_commit();
  };
  // O += P V of the tile in stage st (committed, not waited for); pa: P as A fragments.
  auto issue_pv = [&](const uint32_t (&pa)[BN / 16][4], int st) {
    const uint32_t vb = v_addr + st * TILE * 2;
#pragma unroll
    for (int sl = 0; sl < D / 64; ++sl) wgmma_fence_operand(o32[sl]);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk)  // keys 16 kk..: rows 16 kk.. of V (2 atoms)
#pragma unroll
      for (int sl = 0; sl < D / 64; ++sl)  // output columns 64 sl..: V's slab sl
        wgmma_m64n64k16_rs<C, true>(o32[sl], pa[kk], swizzled_desc(vb + sl * kSlab + kk * 16 * 128, 1024), 1);
    wgmma_commit();
  };
  // Tile `key` into stage st where it is in range (one cp.async group either way).
  auto issue_tile = [&](int st, int key) {
    if (key < kend) load_tile(st, key, kend);
    cp_async_commit();
  };

  int stage = 0;
  for (int kt = kstart; kt < kend; kt += BN) {
    if constexpr (TMA) {
      mbar_wait(&full[stage], (phases >> stage) & 1);
      phases ^= 1u << stage;
      if (kt + BN > kend) zero_rows_from<BN, D, kWgThreads>(v_stage(stage), kend - kt);
    } else {
      cp_async_wait<STAGES - 2>();
    }
    fence_async_shared();  // this thread's copies (or zeros), visible to the tensor cores
    __syncthreads();       // ... of every thread; every MMA of the stage refilled next is done
    if constexpr (kQuant) {  // K (every MMA of the widened tiles, and q's reads of them, are done)
      widen_stage<P, D, BN, kWgThreads, Swizzled128<BN>, 0>(wide, k_stage(stage), threadIdx.x);
      fence_async_shared();
      __syncthreads();
    }
    float sc[BN / 8][4];   // accumulator 4 nt + e of m64n64: sc[nt][e]
    issue_qk(sc, kQuant ? 0 : stage);
    // the next tile's copies (block-table reads included) while S is computed
    issue_tile(stage == 0 ? STAGES - 1 : stage - 1, kt + (STAGES - 1) * BN);
    // V widened while S is computed, published by the barrier before O += P V
    if constexpr (kQuant) widen_stage<P, D, BN, kWgThreads, Swizzled128<BN>, 1>(wide, k_stage(stage), threadIdx.x);
    wgmma_wait<0>();
    wgmma_fence_operand(*reinterpret_cast<float(*)[32]>(&sc[0][0]));
    if constexpr (kQuant)
      softmax_tile<BN, D>(sc, o, rs, wr, kt, n, W, rscale);
    else
      softmax_tile<BN, D>(sc, o, rs, wr, kt, n, W, scale);
    uint32_t pa[BN / 16][4];  // all of P first: no register writes between the MMAs
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) p_fragment<C, BN>(sc, kk, pa[kk]);
    if constexpr (kQuant) {  // every thread's widened V
      fence_async_shared();
      __syncthreads();
    }
    issue_pv(pa, kQuant ? 0 : stage);
    wgmma_wait<0>();
#pragma unroll
    for (int sl = 0; sl < D / 64; ++sl) wgmma_fence_operand(o32[sl]);
    stage = stage == STAGES - 1 ? 0 : stage + 1;
  }
  cp_async_wait<0>();
  store_rows<T, D>(a, tr, h, r0, o, rs.l0, rs.l1, kQuant ? times_widened_scale<P>(1.f, a.kv_scales, 1) : 1.f);
#else
  __trap();  // launched only where the sm_90a code is loaded (wgmma_prefill)
#endif
}

template <typename T, typename P, int D, int STAGES, int MINB, bool TMA>
int prefill_wg_d(const Args& a, int tile_bound, const CUtensorMap& tmk, const CUtensorMap& tmv,
                 cudaStream_t stream) {
  constexpr int smem = wg_smem_bytes<P, D, STAGES>();
  auto kernel = prefill_wg_kernel<T, P, D, STAGES, MINB, TMA>;
  const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return static_cast<int>(e);
  kernel<<<dim3(a.num_heads, tile_bound), kWgThreads, smem, stream>>>(a, tmk, tmv);
  return static_cast<int>(cudaGetLastError());
}

// Tensor copies unless TRTC_PA_PREFILL_TMA=0 (tuning override, for benchmarks and tests).
bool tma_enabled() {
  const char* v = getenv("TRTC_PA_PREFILL_TMA");
  return !(v != nullptr && atoi(v) == 0);
}

template <typename T, typename P, int D>
int prefill_wg_t(const Args& a, trtc_dtype dtype, int tile_bound, cudaStream_t stream) {
  const char* stages = getenv("TRTC_PA_PREFILL_STAGES");  // tuning override, for benchmarks
  // 2 stages fit 3 CTAs per SM in shared memory, with registers capped for it (a few spill):
  // 145 vs 169 us for 3 stages (2 CTAs per SM) on 8 x 512 (H100)
  // (a software-pipelined loop, S_{j+1} = Q K_{j+1}^T and its softmax overlapping O += P_j V_j,
  // 3 stages / 2 CTAs per SM, measured 168 vs 142 us on 8 x 512 and 488 vs 453 us over 1536
  // cached keys: not kept)
  CUtensorMap tmk{}, tmv{};
  if constexpr (!kQuantPool<P>) {
    const bool three = stages != nullptr && atoi(stages) == 3;
    if (a.log2_block >= 3 && tma_enabled() && pool_tensor_maps(a, D, dtype, tma_box_rows(a.log2_block), false, tmk, tmv))
      return three ? prefill_wg_d<T, P, D, 3, 2, true>(a, tile_bound, tmk, tmv, stream)
                   : prefill_wg_d<T, P, D, 2, 3, true>(a, tile_bound, tmk, tmv, stream);
    if (three) return prefill_wg_d<T, P, D, 3, 2, false>(a, tile_bound, tmk, tmv, stream);
  }
  return prefill_wg_d<T, P, D, 2, 3, false>(a, tile_bound, tmk, tmv, stream);
}

}  // namespace

bool wgmma_prefill() {
  const char* mma = getenv("TRTC_PA_PREFILL_MMA");  // 1: the mma.sync kernel (benchmarks, tests)
  if (mma != nullptr && atoi(mma) == 1) return false;
  static std::atomic<uint64_t> checked{0}, ready{0};
  return wgmma_binary_ready(prefill_wg_kernel<__nv_bfloat16, __nv_bfloat16, 128, 2, 3, false>, checked, ready);
}

int launch_prefill_wg(const Args& a, trtc_dtype dtype, trtc_dtype kv_dtype, int tile_bound,
                      cudaStream_t stream) {
  return dispatch_pool(dtype, kv_dtype, [&](auto tag, auto pool_tag) {
    using T = decltype(tag);
    using P = decltype(pool_tag);
    if constexpr (sizeof(T) == 2)
      return prefill_wg_t<T, P, 128>(a, dtype, tile_bound, stream);
    else
      return static_cast<int>(cudaErrorNotSupported);
  });
}

}  // namespace prefill
}  // namespace pa
}  // namespace trtc
