// PagedAttention prefill, Hopper kernel with warp specialization (sm_90a, head_dim 128; 16-bit
// pools of the activation type, and fp8 / int8 pools: see "Quantized pools" below).
//
// CTA = (query head, tile of kWg2Rows = 128 query rows), three warpgroups:
//   - a producer copies K and V tiles of 128 keys through the block table (cp.async) into two
//     rings of kWg2Stages stages each, publishing each tile on an mbarrier once its copies
//     landed, and refilling a stage once every consumer warp released it; it keeps 40 registers
//     a thread;
//   - two consumers of 64 rows each share those tiles (each tile read from L2 serves 128 rows)
//     and run m64n128k16 MMAs with 232 registers a thread: o (64), S (64), P (32), no spills.
// q is staged once into shared memory by the consumers (rotated on the way) and read by the
// QK^T MMAs from there.
//
// Consumer step j (K_j and V_{j-1} published; a turn: see PINGPONG below):
//     S  = Q K_j^T         (m64n128k16 x 8, both operands in shared memory), committed
//     O += P_{j-1} V_{j-1} (m64n128k16 x 8, P in registers, V MN-major), committed
//     wait for S, release K_j; online softmax of S (overlaps the O MMAs)
//     wait for O, release V_{j-1}; O *= the softmax's correction; P_j = S as 16-bit A fragments
//   after the last step: O += P V of the last tile.
// The two consumers take turns to issue their MMAs (PINGPONG, named barriers): one's MMAs run
// while the other does its softmax. Consumers and producer never meet at a CTA-wide barrier
// after the prologue, so the copies of the next tiles run while the consumers compute.
//
// One 225 KB CTA per SM: each CTA's start (tile lookup, q loaded and rotated, the first tile) is
// not overlapped by another's work, so short chunks go to the one-warpgroup kernel (the
// launcher's choice by span, paged_attention_prefill.cu).
//
// The masking, online softmax and output rows are the mma.sync kernel's (each thread holds the
// same two rows of C fragments).
//
// Quantized pools (P = fp8 / int8): the producer copies each tile's codes (cp.async, a tile
// ahead) into two stages of codes beside two stages of f16 tiles, and each producer thread
// widens the chunks it copied itself into the f16 stage once the consumers released it (exact:
// every code times kWiden<P> is an f16), so the widening runs beside the consumers' MMAs and
// once per 128 rows. The producer keeps 56 registers, the consumers 224. The consumers turn the
// staged q into f16 in place, each row divided by a power of two (its factor joins the softmax
// scale with the k scale / kWiden); the MMAs run in f16 and the v scale / kWiden is applied to
// the output. H200, fp8 pool, against the one-warpgroup kernel that took quantized pools
// before: 8 x 512 over 1536 cached 384 vs 569 us, 2 x 2048 new 255 vs 352 (bf16 pool: 328, 218).
#include <cstdlib>

#include "../common/wgmma.cuh"
#include "paged_attention_decode_codes.cuh"
#include "paged_attention_prefill.cuh"

namespace trtc {
namespace pa {
namespace prefill {
namespace {

// A producer warpgroup (copies through the block table) and two consumer warpgroups (MMAs and
// softmax); registers moved from the one to the others.
// (Registers and named barriers: constants of the kernel body.)
constexpr int kProducerThreads = 128, kConsumerThreads = 256;
constexpr int kWg2Threads = kProducerThreads + kConsumerThreads;
constexpr int kWg2Keys = 128;     // keys per K/V tile
// Stages of each ring (3 vs 2, H100: 149 vs 154 us on 8 x 512 new, 389 vs 405 us over 1536
// cached keys); with q they fill 225 of the 227 KB of shared memory.
constexpr int kWg2Stages = 3;
static_assert(kWg2Rows == kWg2Keys, "q and the K/V tiles share one swizzled layout");

// The K or the V rows of keys [kt, kt + BN) of one kv head into `dst`, a tile of BN rows in
// the 128-byte swizzle (zero rows past kend). `src` is the pool advanced to this thread's column
// of the head (pool + hkv * D + pool_column<P, D, NT>()). A thread copies one 16-byte chunk of
// every (NT / CPR)-th row: a multiple of 8 rows apart, so the chunk's swizzled place moves by
// whole rows and only the block-table lookup is done per row.
template <typename P, int D, int NT>
__device__ __forceinline__ int pool_column() {
  return (threadIdx.x % (D * static_cast<int>(sizeof(P)) / 16)) * (16 / static_cast<int>(sizeof(P)));
}
// ROWS: row-major rows of D elements instead (a quantized pool's codes, read back only by the
// thread that copied them).
template <typename P, int D, int NT, int BN, bool ROWS = false>
__device__ __forceinline__ void load_pool_tile(P* dst, const P* src, const int32_t* bt, int kt, int kend,
                                               int log2b, int64_t slot_stride) {
  constexpr int EPC = 16 / sizeof(P), CPR = D / EPC, RPP = NT / CPR;  // rows per pass
  static_assert(NT % CPR == 0 && RPP % 8 == 0, "a thread keeps its column and swizzle phase");
  const int r0 = threadIdx.x / CPR, col = pool_column<P, D, NT>();
  const int row_bytes = static_cast<int>(slot_stride) * static_cast<int>(sizeof(P));
  const char* sb = reinterpret_cast<const char*>(src);
  P* d = dst + (ROWS ? r0 * D + col : Swizzled128<BN>{}(r0, col));
#pragma unroll
  for (int i = 0; i < BN / RPP; ++i) {
    const int key = kt + r0 + i * RPP;
    const bool ok = key < kend;
    cp_async16(d + i * RPP * (ROWS ? D : 64), sb + pool_row_offset(bt, ok ? key : 0, log2b, row_bytes), ok);
  }
}

// A quantized pool: the code tile this thread copied (load_pool_tile<P, D, NT, BN, true>: one
// 16-code chunk of every (NT / CPR)-th row) widened into the f16 tile `dst` in the 128-byte
// swizzle (exact; values times kWiden<P>).
template <typename P, int D, int NT, int BN>
__device__ __forceinline__ void widen_own_chunks(__half* dst, const P* codes) {
  constexpr int CPR = D / 16, RPP = NT / CPR;
  const int r0 = threadIdx.x / CPR, col = pool_column<P, D, NT>();
  const Swizzled128<BN> swz;
#pragma unroll 4
  for (int i = 0; i < BN / RPP; ++i) {
    const int r = r0 + i * RPP;
    const uint4 raw = *reinterpret_cast<const uint4*>(codes + r * D + col);
    *reinterpret_cast<uint4*>(dst + swz(r, col)) = widen8<P>(make_uint2(raw.x, raw.y));
    *reinterpret_cast<uint4*>(dst + swz(r, col + 8)) = widen8<P>(make_uint2(raw.z, raw.w));
  }
}

// A quantized pool's q: the staged rows (T, swizzled) turned into f16 in place, each row divided
// by the power of two that puts its largest magnitude in [2^14, 2^15) (f16_range_factor; exact
// but for f16's subnormals), the factors into qf. Two threads a row (adjacent lanes), NT = 2 BM.
template <typename T, int D, int NT, int BM>
__device__ __forceinline__ void q_rows_to_f16(T* Qs, float* qf, int tid) {
  static_assert(NT == 2 * BM, "two threads a row");
  const Swizzled128<BM> swz;
  const int r = tid >> 1, c0 = (tid & 1) * (D / 2);
  uint4 v[D / 16];
  float m = 0.f;
#pragma unroll
  for (int g = 0; g < D / 16; ++g) {
    v[g] = *reinterpret_cast<const uint4*>(Qs + swz(r, c0 + 8 * g));
    const uint32_t* w = reinterpret_cast<const uint32_t*>(&v[g]);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 x = unpack2<T>(w[i]);
      m = fmaxf(m, fmaxf(fabsf(x.x), fabsf(x.y)));
    }
  }
  m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
  const float f = f16_range_factor(m), inv = 1.f / f;  // a power of two: exact
#pragma unroll
  for (int g = 0; g < D / 16; ++g) {
    uint32_t* w = reinterpret_cast<uint32_t*>(&v[g]);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 x = unpack2<T>(w[i]);
      w[i] = pack2<__half>(x.x * inv, x.y * inv);
    }
    *reinterpret_cast<uint4*>(Qs + swz(r, c0 + 8 * g)) = v[g];
  }
  if ((tid & 1) == 0) qf[r] = f;
}

// Stages of the K and V rings: a quantized pool's f16 tiles take two, beside two stages of codes.
template <typename P>
constexpr int kWg2StagesOf = kQuantPool<P> ? 2 : kWg2Stages;

// Shared memory: q [kWg2Rows][D], K and V [stages][kWg2Keys][D] each (16-bit), then a quantized
// pool's codes [2][K, V][kWg2Keys][D], from a 1024-aligned base (the mbarriers are static).
template <typename P, int D>
constexpr int wg2_smem_bytes() {
  constexpr int codes = kQuantPool<P> ? 2 * 2 * kWg2Keys * D : 0;
  return (kWg2Rows + 2 * kWg2StagesOf<P> * kWg2Keys) * D * 2 + codes + 1024;  // + alignment slack
}

template <typename T, typename P, int D, bool PINGPONG>
__global__ void __launch_bounds__(kWg2Threads, 1) prefill_wg2_kernel(const Args a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  static_assert(D == 128, "o is one m64n128 accumulator");
  constexpr bool kQuant = kQuantPool<P>;
  using C = std::conditional_t<kQuant, __half, T>;  // the MMA operand type
  constexpr int kConsumerWarps = kConsumerThreads / 32;
  // 128 x 40 + 256 x 232 <= 65536; a quantized pool's producer widens codes: 128 x 56 + 256 x 224
  constexpr int kProducerRegs = kQuant ? 56 : 40, kConsumerRegs = kQuant ? 224 : 232;
  constexpr int kConsumerBar = 1, kTurnBar = 2;  // named barriers: the consumers', the MMA turns
  constexpr int BM = kWg2Rows, BN = kWg2Keys, TILE = BN * D, STAGES = kWg2StagesOf<P>;
  constexpr uint32_t kSlab = BN * 128;  // bytes of one 64-column slab of a tile (q's too)
  const Swizzled128<BN> swz;
  extern __shared__ unsigned char smem_raw[];
  __shared__ uint64_t full[2][STAGES], empty[2][STAGES];  // [K, V][stage]
  __shared__ float qf[kQuant ? BM : 1];                  // a quantized pool: q's factor a row
  T* Qs = reinterpret_cast<T*>(smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023));
  C* Ks = reinterpret_cast<C*>(Qs + BM * D);
  C* Vs = Ks + STAGES * TILE;
  P* codes = reinterpret_cast<P*>(Vs + STAGES * TILE);  // a quantized pool: [2][K, V][BN][D]
  allow_next_kernel();  // the decode kernel after this one (see Args::write_done)

  const int h = blockIdx.x;
  TileRef tr;
  if (!locate_tile(a, BM, tr)) return;
  if (threadIdx.x == 0) {
#pragma unroll
    for (int i = 0; i < 2 * STAGES; ++i) {
      mbar_init(&full[i & 1][i >> 1], kProducerThreads);  // every producer thread's copies
      mbar_init(&empty[i & 1][i >> 1], kConsumerWarps);   // every consumer warp's MMAs
    }
  }
  __syncthreads();  // the only CTA-wide barrier: before any long load
  const int n = a.seq_lens[tr.s];
  const int W = a.sliding_window;
  // The tile's key range [kstart, kend) in steps of BN keys (each warp finds it on its own):
  // at least one step (kstart <= the first row's position < kend).
  int kstart, kend, steps;
  auto key_range = [&] {
    int minpos, maxpos;
    tile_positions_warp(a, tr, minpos, maxpos);
    kstart = (W > 0 ? max(0, minpos - W + 1) : 0) & ~(BN - 1);
    kend = min(n, maxpos + 1);
    steps = (kend - kstart + BN - 1) / BN;
  };

  if (threadIdx.x < kProducerThreads) {
    // Producer: K_0, V_0, K_1, V_1, .. into their rings; a tile is published (full) once every
    // producer thread's copies of it landed, and refilled once every consumer warp released it.
    setmaxnreg_dec<kProducerRegs>();
    key_range();
    const int32_t* bt = a.block_tables + static_cast<int64_t>(tr.s) * a.max_blocks;
    const int64_t slot_stride = static_cast<int64_t>(a.num_kv_heads) * D;
    const int64_t col0 = static_cast<int64_t>(h / a.group) * D + pool_column<P, D, kProducerThreads>();
    const P* kpool = static_cast<const P*>(a.k_pool) + col0;
    const P* vpool = static_cast<const P*>(a.v_pool) + col0;
    if constexpr (kQuant) {
      // Codes of tile t into code stage t % 2 (one cp.async group a tile, issued a tile ahead);
      // each thread widens the chunks it copied into the f16 stage once the consumers released it.
      auto load_codes = [&](int t) {
        if (t < steps) {
          P* c = codes + (t & 1) * 2 * TILE;
          load_pool_tile<P, D, kProducerThreads, BN, true>(c, kpool, bt, kstart + t * BN, kend, a.log2_block,
                                                           slot_stride);
          load_pool_tile<P, D, kProducerThreads, BN, true>(c + TILE, vpool, bt, kstart + t * BN, kend,
                                                           a.log2_block, slot_stride);
        }
        cp_async_commit();
      };
      load_codes(0);
      for (int t = 0; t < steps; ++t) {
        load_codes(t + 1);
        cp_async_wait<1>();  // tile t's codes (this thread's own)
        const int st = t % STAGES, use = t / STAGES;
#pragma unroll 1
        for (int kv = 0; kv < 2; ++kv) {
          if (use > 0) mbar_wait(&empty[kv][st], (use - 1) & 1);
          widen_own_chunks<P, D, kProducerThreads, BN>((kv ? Vs : Ks) + st * TILE, codes + ((t & 1) * 2 + kv) * TILE);
          fence_async_shared();  // this thread's f16 rows, visible to the tensor cores
          mbar_arrive(&full[kv][st]);
        }
      }
    } else {
      for (int l = 0; l < 2 * steps; ++l) {
        const int t = l >> 1, kv = l & 1, st = t % STAGES, use = t / STAGES;
        if (use > 0) mbar_wait(&empty[kv][st], (use - 1) & 1);  // the stage's previous tile released
        load_pool_tile<P, D, kProducerThreads, BN>(reinterpret_cast<P*>((kv ? Vs : Ks) + st * TILE), kv ? vpool : kpool,
                                                   bt, kstart + t * BN, kend, a.log2_block, slot_stride);
        cp_async_commit();
        if (l > 0) {  // the load before this one
          cp_async_wait<1>();
          fence_async_shared();  // this thread's copies, visible to the tensor cores
          mbar_arrive(&full[(l - 1) & 1][((l - 1) >> 1) % STAGES]);
        }
      }
      cp_async_wait<0>();
      fence_async_shared();
      mbar_arrive(&full[1][(steps - 1) % STAGES]);
    }
    return;
  }

  // Consumers: warpgroup c = 0, 1 owns rows 64 c .. 64 c + 63 of the tile.
  setmaxnreg_inc<kConsumerRegs>();
  const int tid = threadIdx.x - kProducerThreads;
  const int warp = tid >> 5, lane = tid & 31, wg = tid >> 7;
  const float scale = a.scale_log2;  // > 0 (the launcher checks)
  if (a.rot % 16 == 0) {  // q rotated as it is staged
    stage_q_rotated<T, D, kConsumerThreads, BM>(Qs, a, tr, h, swz, tid);
  } else {  // rotated in place after
    load_q_rows<T, D, kConsumerThreads>(Qs, a, tr, h, BM, swz, tid);
    cp_async_commit();
    cp_async_wait<0>();
    named_barrier_sync(kConsumerBar, kConsumerThreads);
    rotate_q_rows<T, kConsumerThreads>(Qs, a, tr, swz, tid);
  }
  key_range();
  if constexpr (kQuant) {  // q to f16 for the MMAs with the widened codes
    named_barrier_sync(kConsumerBar, kConsumerThreads);
    q_rows_to_f16<T, D, kConsumerThreads, BM>(Qs, qf, tid);
  }
  fence_async_shared();  // q's stores, visible to the tensor cores
  named_barrier_sync(kConsumerBar, kConsumerThreads);
  const int r0 = warp * 16 + (lane >> 2);
  const WarpRows wr = warp_rows(a, tr, r0);
  // the softmax scale: a quantized pool's per row (times the k scale / kWiden and q's factor)
  using Scale = std::conditional_t<kQuant, float2, float>;
  Scale sscale;
  if constexpr (kQuant) {
    const float s = times_widened_scale<P>(scale, a.kv_scales, 0);
    sscale = make_float2(s * qf[r0], s * qf[r0 + 8]);
  } else {
    sscale = scale;
  }
  const uint32_t q_addr = smem_u32(Qs) + wg * 64 * 128;
  const uint32_t k_addr = smem_u32(Ks);
  const uint32_t v_addr = smem_u32(Vs);

  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float(&o64)[64] = *reinterpret_cast<float(*)[64]>(&o[0][0]);
  float sc[BN / 8][4];  // S of the step: accumulator of m64n128 (sc[nt][e])
  float(&s64)[64] = *reinterpret_cast<float(*)[64]>(&sc[0][0]);
  uint32_t pa[BN / 16][4];  // P of the step before, as A fragments
  uint32_t(&p32)[BN / 4] = *reinterpret_cast<uint32_t(*)[BN / 4]>(&pa[0][0]);
  RowStats rs;

  // S = Q K^T of the K stage st (issued and committed, not waited for).
  auto issue_qk = [&](int st) {
    const uint32_t kb = k_addr + st * TILE * 2;
    wgmma_fence();
#pragma unroll
    for (int k = 0; k < D / 16; ++k)  // k16 step k: slab k / 4, 32 bytes per step in the slab
      wgmma_m64n128k16_ss<C>(s64, swizzled_desc(q_addr + (k >> 2) * kSlab + (k & 3) * 32),
                             swizzled_desc(kb + (k >> 2) * kSlab + (k & 3) * 32), k > 0);
    wgmma_commit();
  };
  // O += P V of the V stage st (committed, not waited for). V is MN-major: 8-key groups
  // 1024 bytes apart, the two 64-column slabs kSlab apart.
  auto issue_pv = [&](int st) {
    const uint32_t vb = v_addr + st * TILE * 2;
    wgmma_fence_operand(o64);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk)  // keys 16 kk ..: rows 16 kk .. of V
      wgmma_m64n128k16_rs<C, true>(o64, pa[kk], swizzled_desc(vb + kk * 16 * 128, kSlab), 1);
    wgmma_commit();
  };
  // Tile i of the K (kv = 0) or V ring: wait until it is loaded; release it once this warp's
  // MMAs that read it are done.
  auto acquire = [&](int kv, int i) { mbar_wait(&full[kv][i % STAGES], (i / STAGES) & 1); };
  auto release = [&](int kv, int i) {
    if (lane == 0) mbar_arrive(&empty[kv][i % STAGES]);
  };
  // PINGPONG: the warpgroups take turns to issue their MMAs (named barriers kTurnBar + c), so
  // that one's MMAs run while the other does its softmax.
  auto my_turn = [&] {
    if constexpr (PINGPONG) named_barrier_sync(kTurnBar + wg, kConsumerThreads);
  };
  auto pass_turn = [&](bool last) {  // the last turn of warpgroup 1 is not passed on (none waits)
    if constexpr (PINGPONG)
      if (!(last && wg == 1)) named_barrier_arrive(kTurnBar + 1 - wg, kConsumerThreads);
  };
  auto make_p = [&] {
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) p_fragment<C, BN>(sc, kk, pa[kk]);
  };

  // Straight-line waits (step 0 peeled): ptxas then sees every accumulator read after the wait
  // that covers it and keeps the MMAs asynchronous.
  if (PINGPONG && wg == 1) named_barrier_arrive(kTurnBar, kConsumerThreads);  // 0 goes first
  acquire(0, 0);
  my_turn();
  issue_qk(0);
  pass_turn(false);
  wgmma_wait<0>();
  wgmma_fence_operand(s64);
  release(0, 0);
  softmax_scores<BN>(sc, rs, wr, kstart, n, W, sscale);  // o is still zero: no correction
  make_p();
  for (int j = 1; j < steps; ++j) {
    acquire(0, j);
    acquire(1, j - 1);
    my_turn();
    issue_qk(j % STAGES);
    issue_pv((j - 1) % STAGES);
    pass_turn(false);
    wgmma_wait<1>();  // S (the O MMAs were committed after it)
    wgmma_fence_operand(s64);
    release(0, j);
    const float2 c = softmax_scores<BN>(sc, rs, wr, kstart + j * BN, n, W, sscale);
    wgmma_wait<0>();
    wgmma_fence_operand(o64);
    wgmma_fence_operand(p32);  // P_{j-1} stays in its registers until its MMAs are done
    release(1, j - 1);
    rescale_rows<D>(o, c);
    make_p();
  }
  acquire(1, steps - 1);
  my_turn();
  issue_pv((steps - 1) % STAGES);
  pass_turn(true);
  wgmma_wait<0>();
  wgmma_fence_operand(o64);
  store_rows<T, D>(a, tr, h, r0, o, rs.l0, rs.l1, kQuant ? times_widened_scale<P>(1.f, a.kv_scales, 1) : 1.f);
#else
  __trap();  // launched only where the sm_90a code is loaded (wg2_prefill)
#endif
}

template <typename T, typename P, bool PINGPONG>
int prefill_wg2_d(const Args& a, int tile_bound, cudaStream_t stream) {
  constexpr int smem = wg2_smem_bytes<P, 128>();
  auto kernel = prefill_wg2_kernel<T, P, 128, PINGPONG>;
  const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return static_cast<int>(e);
  kernel<<<dim3(a.num_heads, tile_bound), kWg2Threads, smem, stream>>>(a);
  return static_cast<int>(cudaGetLastError());
}

template <typename T, typename P>
int prefill_wg2_t(const Args& a, int tile_bound, cudaStream_t stream) {
  const char* pp = getenv("TRTC_PA_PREFILL_PINGPONG");  // tuning override, for benchmarks
  if (pp != nullptr && atoi(pp) == 0) return prefill_wg2_d<T, P, false>(a, tile_bound, stream);
  return prefill_wg2_d<T, P, true>(a, tile_bound, stream);
}

}  // namespace

bool wg2_prefill() {
  static std::atomic<uint64_t> checked{0}, ready{0};
  return wgmma_binary_ready(prefill_wg2_kernel<__nv_bfloat16, __nv_bfloat16, 128, true>, checked, ready);
}

int launch_prefill_wg2(const Args& a, trtc_dtype dtype, trtc_dtype kv_dtype, int tile_bound, cudaStream_t stream) {
  return dispatch_pool(dtype, kv_dtype, [&](auto tag, auto pool_tag) {
    using T = decltype(tag);
    using P = decltype(pool_tag);
    if constexpr (sizeof(T) == 2)
      return prefill_wg2_t<T, P>(a, tile_bound, stream);
    else
      return static_cast<int>(cudaErrorNotSupported);
  });
}

}  // namespace prefill
}  // namespace pa
}  // namespace trtc
