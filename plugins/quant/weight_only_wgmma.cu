// Weight-only GEMM for prefill on Hopper (sm_90a): warpgroup MMAs (wgmma) with the dequantized
// weights as the register operand A (64 output channels per warpgroup, along wgmma's M) and the
// activations as operand B, read by the tensor cores from 128-byte-swizzled shared memory
// (tokens along wgmma's N). The weight codes come repacked once per weight
// (trtcompile/ops/quant_kernels.py repack_for_wgmma): in each 16-row x 64-k block, the A
// fragments of one thread are one 16-byte chunk (int4) or two (int8), so they load with plain
// vector loads and dequantize straight into registers; W is never materialized anywhere.
// Codes, activations and group scales of each 64-wide k step stream in through a 4-stage
// cp.async pipeline. Blocks of 64, 128 or 256 tokens; where the tiles alone leave SMs idle
// (prefill chunks of a few dozen tokens: one block per 128 channels), K is split over a
// thread-block cluster of up to 8 blocks that sum their float32 tiles through distributed
// shared memory, so no workspace and no second kernel.
#include "../common/cluster.cuh"
#include "../common/wgmma.cuh"
#include "async_copy.cuh"
#include "weight_only.cuh"

namespace trtc {
namespace woq {
namespace {

constexpr int kRows = 128;     // output channels per block: 2 warpgroups x 64
constexpr int kStepK = 64;     // k per step: one 128-byte swizzled row of activations
constexpr int kThreads = 256;  // 8 warps; warp w computes channels 16w..16w+15 of the block
constexpr int kStages = 4;

// Code bytes of one 16-row block per step.
template <int BITS> constexpr int kBlockBytes = 16 * kStepK * BITS / 8;

// The float32 tile [token][channel] each block stages its sums in at the end (over the ring);
// 4 floats of padding per row: lanes g of one store hit distinct banks.
constexpr int kOutStride = kRows + 4;

// Shared memory of one block (BT tokens): kStages of (activations, codes, group words). The
// words of a row: per k16 the packed pair (kPairs), or the bits of scale and zero.
template <int BT, int BITS, bool kGroups, bool kPairs>
struct WgTiles {
  alignas(1024) unsigned char x[kStages][BT * kStepK * 2];  // [token][k], 128B swizzle
  uint8_t codes[kStages][kRows / 16][kBlockBytes<BITS>];
  alignas(16) uint32_t words[kGroups ? kStages : 1][kRows][kPairs ? 4 : 8];
};


// The A fragment of k16 step s (a0, a2: row g; a1, a3: row g + 8) from this thread's codes of
// the step (int8: words 2s, 2s + 1 = bytes a0 a0 a1 a1, a2 a2 a3 a3; int4: word s, nibbles
// a0 a1 a2 a3 of the even k, then of the odd k), times the groups' pairs of the two rows.
template <typename T, int BITS, bool kGroups>
__device__ __forceinline__ void a_fragment(const uint32_t* codes, int s, uint32_t flip,
                                           uint32_t pair_lo, uint32_t pair_hi, uint32_t (&a)[4]) {
  if constexpr (BITS == 8) {
    const uint32_t w0 = codes[2 * s] ^ 0x80808080u, w1 = codes[2 * s + 1] ^ 0x80808080u;
    a[0] = int8_pair<T>(w0, 0);
    a[1] = int8_pair<T>(w0, 2);
    a[2] = int8_pair<T>(w1, 0);
    a[3] = int8_pair<T>(w1, 2);
  } else {
    int4_word_to_pairs<T>(codes[s], flip, a);
  }
  if constexpr (kGroups) {
    const Affine lo(pair_lo), hi(pair_hi);
    a[0] = lo.apply<T>(a[0]);
    a[2] = lo.apply<T>(a[2]);
    a[1] = hi.apply<T>(a[1]);
    a[3] = hi.apply<T>(a[3]);
  }
}

//   step kt: wait for stage kt -> sync -> start loading stage kt + kStages - 1 (into the slot
//   of stage kt - 1, whose MMAs all finished) -> per k16: dequantize A (overlapping the MMAs
//   of the k16 before), issue its MMAs -> wait for all of them.
// Keeping one step of MMAs in flight across the loop gained ~2% for int8 and gave wrong
// results with 256 tokens on the H100 (A registers reused early?); with group scales ptxas
// serialized every wgmma of it (C7514).
// kPairs (with kGroups): the group words are packed pairs, else float32 scales and zeros.
// Cluster rank r (of the cluster's size along z) runs steps [r * per_split, (r + 1) * per_split).
template <typename T, int BT, int BITS, bool kGroups, bool kPairs>
__global__ void __launch_bounds__(kThreads, BT == 256 ? 1 : 2)
    wgmma_kernel(Problem p, int steps, int per_split) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  using Tiles = WgTiles<BT, BITS, kGroups, kPairs>;
  unsigned char* base = align_smem<1024>(smem_raw);  // (keeps the shared address space)
  Tiles& sm = *reinterpret_cast<Tiles*>(base);
  constexpr int CB = kBlockBytes<BITS>;
  constexpr int kN = BT < 128 ? BT : 128;  // tokens per MMA (wgmma's N)
  constexpr int kHalves = BT / kN;         // MMAs per k16 and warpgroup
  constexpr int kDepth = kStages - 1;      // stages loading ahead of the one computed
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BT;
  const int n0 = blockIdx.y * kRows;
  const int row = 16 * warp + g;  // this thread's channels in the block: row, row + 8
  const T* x = static_cast<const T*>(p.x);
  const int groups = kGroups ? p.k / p.group_size : 1;
  const uint32_t flip = (BITS == 4 && p.zeros == nullptr) ? 0x00080008u : 0u;
  const unsigned splits = cluster_size(), rank = cluster_rank();
  const int k_first = static_cast<int>(rank) * per_split;
  const int k_steps = max(0, min(steps, k_first + per_split) - k_first);

  // This thread's copies, fixed but for k (addresses and bounds worked out once here): x chunk
  // c (of 8 in a 128-byte row) of tokens x_row + 32i; code chunk `part` of row blocks code_rb +
  // kCodeStride i; group words of k16 w_s of rows w_row + kThreads / 4 i.
  constexpr int kXCopies = BT * 8 / kThreads, kCodeCopies = kRows / 16 * CB / 16 / kThreads;
  constexpr int kCodeStride = kThreads / (CB / 16), kWordCopies = kGroups ? kRows * 4 / kThreads : 0;
  const int x_row = tid >> 3, x_c = tid & 7;
  const int x_dst = x_row * 128 + ((x_c ^ (x_row & 7)) << 4);
  const T* x_src = x + (m0 + x_row) * p.x_stride + 8 * x_c;
  const int64_t x_step = 32 * p.x_stride;                      // between this thread's tokens
  const int64_t x_tokens = (p.m - m0 - x_row + 31) / 32;       // copies i < x_tokens hold one
  const int code_rb = tid / (CB / 16), code_part = tid % (CB / 16);
  const uint8_t* code_src[kCodeCopies];
#pragma unroll
  for (int i = 0; i < kCodeCopies; ++i)
    code_src[i] = p.qweight + static_cast<int64_t>(n0 / 16 + code_rb + kCodeStride * i) * steps * CB + 16 * code_part;
  const int w_row = tid >> 2, w_s = tid & 3;
  int64_t w_at[kWordCopies > 0 ? kWordCopies : 1];  // the row's first group; -1: past N
#pragma unroll
  for (int i = 0; i < kWordCopies; ++i) {
    const int n = n0 + w_row + kThreads / 4 * i;
    w_at[i] = n < p.n ? static_cast<int64_t>(n) * groups : -1;
  }
  const int group_shift = __ffs(p.group_size) - 1;  // group_size a power of two: k >> shift
  const bool group_pow2 = kGroups && (p.group_size & (p.group_size - 1)) == 0;
  // k16 of a step that share one group word, as a shift: 2 where a group spans the step (64,
  // 128, ...), 1 for groups of 32, else 0. Only the first k16 of each share copies its word,
  // and every k16 reads that one (H100, 8B gate_up at 64 tokens: g128 90.6 us with the same
  // word copied by the 4 lanes of a row, against 70.8 for g32 with 2 words a row).
  const int share = group_pow2 && group_shift >= 5 ? min(group_shift - 4, 2) : 0;
  const bool copies_word = (w_s & ((1 << share) - 1)) == 0;

  auto issue = [&](int slot, int kt) {
    const int k0 = kt * kStepK;
    const bool k_ok = k0 + 8 * x_c < p.k;
#pragma unroll
    for (int i = 0; i < kXCopies; ++i) {
      const bool ok = k_ok && i < x_tokens;
      cp_async16(&sm.x[slot][x_dst + 32 * 128 * i], ok ? x_src + i * x_step + k0 : x, ok ? 16 : 0);
    }
#pragma unroll
    for (int i = 0; i < kCodeCopies; ++i)  // padded: always in range
      cp_async16(&sm.codes[slot][code_rb + kCodeStride * i][16 * code_part], code_src[i] + kt * CB, 16);
    if constexpr (kGroups) {
      const int k = k0 + 16 * w_s;
      const int grp = group_pow2 ? k >> group_shift : k / p.group_size;
#pragma unroll
      for (int i = 0; i < kWordCopies; ++i) {
        const bool ok = w_at[i] >= 0 && k < p.k;
        const int64_t at = ok ? w_at[i] + grp : 0;
        uint32_t* dst = &sm.words[slot][w_row + kThreads / 4 * i][kPairs ? w_s : 2 * w_s];
        if (!copies_word) continue;
        if constexpr (kPairs) {
          cp_async4(dst, p.pairs + at, ok ? 4 : 0);
        } else {
          cp_async4(dst, p.scales + at, ok ? 4 : 0);
          cp_async4(dst + 1, ok && p.zeros ? p.zeros + at : p.scales, ok && p.zeros ? 4 : 0);
        }
      }
    }
  };

  float acc[kHalves][kN / 2];
#pragma unroll
  for (int h = 0; h < kHalves; ++h)
#pragma unroll
    for (int i = 0; i < kN / 2; ++i) acc[h][i] = 0.f;

#pragma unroll
  for (int s = 0; s < kDepth; ++s) {
    if (s < k_steps) issue(s, k_first + s);
    cp_async_commit();  // one group per stage, empty or not, keeps the wait count uniform
  }
  const uint32_t x_base = static_cast<uint32_t>(__cvta_generic_to_shared(&sm.x[0][0]));
  for (int kt = 0; kt < k_steps; ++kt) {
    const int slot = kt % kStages;
    cp_async_wait<kDepth - 1>();
    fence_async_shared();  // this thread's copies, visible to the tensor cores' reads
    __syncthreads();
    if (kt + kDepth < k_steps) issue((kt + kDepth) % kStages, k_first + kt + kDepth);
    cp_async_commit();

    uint32_t codes[BITS == 8 ? 8 : 4];
    const unsigned char* own = &sm.codes[slot][warp][16 * lane];
    *reinterpret_cast<uint4*>(codes) = *reinterpret_cast<const uint4*>(own);
    if constexpr (BITS == 8) *reinterpret_cast<uint4*>(codes + 4) = *reinterpret_cast<const uint4*>(own + 512);
    uint32_t pair_lo[4] = {0, 0, 0, 0}, pair_hi[4] = {0, 0, 0, 0};
    if constexpr (kGroups) {  // the rows' words in 16-byte reads: 4 pairs, or 2 (scale, zero)
#pragma unroll
      for (int v = 0; v < (kPairs ? 1 : 2); ++v) {
        const uint4 lo = *reinterpret_cast<const uint4*>(&sm.words[slot][row][4 * v]);
        const uint4 hi = *reinterpret_cast<const uint4*>(&sm.words[slot][row + 8][4 * v]);
        if constexpr (kPairs) {
          pair_lo[0] = lo.x, pair_lo[1] = lo.y, pair_lo[2] = lo.z, pair_lo[3] = lo.w;
          pair_hi[0] = hi.x, pair_hi[1] = hi.y, pair_hi[2] = hi.z, pair_hi[3] = hi.w;
        } else {
          pair_lo[2 * v] = make_pair<T>(__uint_as_float(lo.x), __uint_as_float(lo.y));
          pair_lo[2 * v + 1] = make_pair<T>(__uint_as_float(lo.z), __uint_as_float(lo.w));
          pair_hi[2 * v] = make_pair<T>(__uint_as_float(hi.x), __uint_as_float(hi.y));
          pair_hi[2 * v + 1] = make_pair<T>(__uint_as_float(hi.z), __uint_as_float(hi.w));
        }
      }
      // k16 s reads the word copied by the first k16 of its share
      const bool by2 = share >= 1, by4 = share == 2;
      pair_lo[3] = by4 ? pair_lo[0] : by2 ? pair_lo[2] : pair_lo[3];
      pair_hi[3] = by4 ? pair_hi[0] : by2 ? pair_hi[2] : pair_hi[3];
      pair_lo[2] = by4 ? pair_lo[0] : pair_lo[2];
      pair_hi[2] = by4 ? pair_hi[0] : pair_hi[2];
      pair_lo[1] = by2 ? pair_lo[0] : pair_lo[1];
      pair_hi[1] = by2 ? pair_hi[0] : pair_hi[1];
    }
    const uint32_t x_slot = x_base + slot * BT * kStepK * 2;
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      uint32_t a[4];
      a_fragment<T, BITS, kGroups>(codes, s, flip, pair_lo[s], pair_hi[s], a);
      wgmma_fence();
#pragma unroll
      for (int h = 0; h < kHalves; ++h) {
        const uint64_t desc = swizzled_desc(x_slot + h * 128 * 128 + 32 * s);
        if constexpr (kN == 128) wgmma_m64n128k16_rs<T>(acc[h], a, desc, 1);
        else wgmma_m64n64k16_rs<T, false>(acc[h], a, desc, 1);
      }
    }
    wgmma_commit();
    wgmma_wait<0>();  // the slot is reloaded after the next barrier
  }
  cp_async_wait<0>();
  __syncthreads();

  // Accumulator 4j + c of lane (g, t) in MMA h: channel row (+8 for c >= 2), token
  // kN h + 8j + 2t + (c & 1). Staged in float32 through shared memory as [token][channel];
  // then cluster rank r sums rows [r, r + 1) * BT / splits of the tile over the cluster's
  // blocks, in rank order, and stores them to y as 16-byte rows of channels.
  float* out = reinterpret_cast<float*>(base);
  float s_lo = 1.f, s_hi = 1.f;
  if constexpr (!kGroups) {
    s_lo = n0 + row < p.n ? __ldg(p.scales + n0 + row) : 0.f;
    s_hi = n0 + row + 8 < p.n ? __ldg(p.scales + n0 + row + 8) : 0.f;
  }
#pragma unroll
  for (int h = 0; h < kHalves; ++h)
#pragma unroll
    for (int j = 0; j < kN / 8; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int token = kN * h + 8 * j + 2 * t + (c & 1);
        out[token * kOutStride + row + 8 * (c >> 1)] = acc[h][4 * j + c] * (c >> 1 ? s_hi : s_lo);
      }
  cluster_arrive();
  cluster_wait();  // every block's tile is staged
  T* y = static_cast<T*>(p.y);
  const bool vec = p.n % 8 == 0;
  const int span = BT / splits;
  for (int idx = tid; idx < span * (kRows / 8); idx += kThreads) {
    const int r = static_cast<int>(rank) * span + idx / (kRows / 8), c = idx % (kRows / 8);
    const int64_t token = m0 + r;
    const int n = n0 + 8 * c;
    if (token >= p.m || n >= p.n) continue;
    const float* src = out + r * kOutStride + 8 * c;
    float4 lo = load_shared_remote4(src, 0), hi = load_shared_remote4(src + 4, 0);
    for (unsigned o = 1; o < splits; ++o) {
      const float4 a = load_shared_remote4(src, o), b = load_shared_remote4(src + 4, o);
      lo.x += a.x, lo.y += a.y, lo.z += a.z, lo.w += a.w;
      hi.x += b.x, hi.y += b.y, hi.z += b.z, hi.w += b.w;
    }
    const float v[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
    T* dst = y + token * p.n + n;
    if (vec) {
      alignas(16) T e[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) e[i] = from_float<T>(v[i]);
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(e);
    } else {
      for (int i = 0; i < 8 && n + i < p.n; ++i) dst[i] = from_float<T>(v[i]);
    }
  }
  cluster_arrive();
  cluster_wait();  // no block leaves while the others still read its shared memory
#else
  __trap();  // launched only where binaryVersion is 90 (see wgmma_ready)
#endif
}

// Whether the library holds sm_90a code of the kernels for the current device.
bool wgmma_ready() {
  static std::atomic<uint64_t> checked{0}, ready{0};
  return wgmma_binary_ready(wgmma_kernel<__nv_bfloat16, 128, 8, false, false>, checked, ready);
}

template <int BT, int BITS, bool kGroups, bool kPairs>
constexpr size_t kWgSmem =  // the ring, or the float32 tile staged over it; + alignment slack
    (sizeof(WgTiles<BT, BITS, kGroups, kPairs>) > sizeof(float) * BT * kOutStride
         ? sizeof(WgTiles<BT, BITS, kGroups, kPairs>)
         : sizeof(float) * BT * kOutStride) + 1024;

// splits: blocks per cluster along K (a power of two up to 8), 0 to choose: the most that keep
// the launch within 1.5 blocks per SM and give each block at least 8 steps of K. The rule was
// fitted on the H100 (bench_quant.py --split-sweep, the projections of llama-3.1-8b and -3.2-1b
// at 48-256 tokens, int8 and int4 g128): within 5-7% of the best tile and split on average.
constexpr int kMinSplitSteps = 8;
template <typename T, int BT, int BITS, bool kGroups, bool kPairs>
int launch_wgmma_as(const Problem& p, int splits, cudaStream_t stream) {
  constexpr size_t smem = kWgSmem<BT, BITS, kGroups, kPairs>;
  auto kernel = wgmma_kernel<T, BT, BITS, kGroups, kPairs>;
  static std::atomic<uint64_t> opted{0};
  const int e = opt_in_shared_memory(kernel, smem, opted);
  if (e) return e;
  const dim3 tiles(static_cast<unsigned>((p.m + BT - 1) / BT), (p.n + kRows - 1) / kRows);
  const int steps = (p.k + kStepK - 1) / kStepK;
  if (splits == 0) {
    const int64_t blocks = static_cast<int64_t>(tiles.x) * tiles.y, slots = 3 * sm_count() / 2;
    splits = 1;
    while (2 * splits <= kMaxClusterCtas && blocks * 2 * splits <= slots && steps >= 2 * splits * kMinSplitSteps)
      splits *= 2;
  }
  LaunchOptions o;
  o.smem = smem;
  o.cluster = dim3(1, 1, splits);
  const int per_split = (steps + splits - 1) / splits;
  return launch_ex(kernel, dim3(tiles.x, tiles.y, splits), dim3(kThreads), stream, o, p, steps,
                   per_split);
}

template <typename T, int BT, int BITS>
int launch_wgmma_bits(const Problem& p, int splits, cudaStream_t stream) {
  if (p.group_size == 0) return launch_wgmma_as<T, BT, BITS, false, false>(p, splits, stream);
  return p.pairs ? launch_wgmma_as<T, BT, BITS, true, true>(p, splits, stream)
                 : launch_wgmma_as<T, BT, BITS, true, false>(p, splits, stream);
}

template <typename T, int BT>
int launch_wgmma_tokens(const Problem& p, int splits, cudaStream_t stream) {
  return p.bits == 8 ? launch_wgmma_bits<T, BT, 8>(p, splits, stream)
                     : launch_wgmma_bits<T, BT, 4>(p, splits, stream);
}

}  // namespace
}  // namespace woq
}  // namespace trtc

extern "C" int trtc_weight_only_gemm_packed_supported(void) {
  return trtc::woq::wgmma_ready();
}

extern "C" int trtc_weight_only_gemm_packed(const void* x, int64_t x_stride, const void* packed,
                                            const float* scales, const float* zeros,
                                            const void* group_pairs, void* y, int64_t m,
                                            int32_t n, int32_t k, int32_t bits,
                                            int32_t group_size, int32_t tile_tokens,
                                            int32_t k_splits, trtc_dtype dtype,
                                            cudaStream_t stream) {
  using namespace trtc;
  const bool shape_ok = m >= 0 && n > 0 && k > 0 && k % 8 == 0 && x_stride >= k &&
                        x_stride % 8 == 0 && (bits == 8 || bits == 4) && group_size >= 0 &&
                        (group_size == 0 || (group_size % 16 == 0 && k % group_size == 0)) &&
                        (zeros == nullptr || group_size > 0) && scales != nullptr &&
                        (tile_tokens == 0 || tile_tokens == 64 || tile_tokens == 128 ||
                         tile_tokens == 256) &&
                        (k_splits == 0 || k_splits == 1 || k_splits == 2 || k_splits == 4 ||
                         k_splits == 8);
  if (!shape_ok || !aligned16(x) || !aligned16(packed) || !aligned16(y)) return cudaErrorInvalidValue;
  if (m == 0) return cudaSuccess;
  woq::Problem p{x, x_stride, static_cast<const uint8_t*>(packed), scales, zeros,
                 static_cast<const uint32_t*>(group_pairs), y, m, n, k, bits, group_size};
  // Measured on the H100 (bench_quant.py --split-sweep, --tile-tokens 128,256): 64 up to 64
  // tokens, 128 up to 128; up to 256, 128 while two such tiles fit the launch (1.5 blocks per
  // SM), K split as launch_wgmma_as chooses; else 256 for group scales and 128 (two blocks per
  // SM) per channel.
  const bool two_tiles_fit = 2 * ((n + 127) / 128) * 2 <= 3 * sm_count();
  const int bt = tile_tokens ? tile_tokens
                 : m <= 64   ? 64
                 : m <= 128 || (m <= 256 && two_tiles_fit) || group_size == 0 ? 128
                                                                               : 256;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    if (bt == 64) return woq::launch_wgmma_tokens<T, 64>(p, k_splits, stream);
    return bt == 128 ? woq::launch_wgmma_tokens<T, 128>(p, k_splits, stream)
                     : woq::launch_wgmma_tokens<T, 256>(p, k_splits, stream);
  };
  if (dtype == TRTC_F16) return run(__half{});
  if (dtype == TRTC_BF16) return run(__nv_bfloat16{});
  return cudaErrorNotSupported;
}
