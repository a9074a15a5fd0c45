// Weight-only GEMV for 13-32 tokens on Hopper (sm_90a), fed by tensor copies (TMA).
//
// The MMAs and the k order of each chunk are those of weight_only_gemv.cu (chunk_mma), and so are
// the outputs up to the order of float32 sums; what differs is how the weights arrive. There each
// lane loads its 16 code bytes into registers, a few chunks a warp in flight, and at 9-32 tokens
// its math (one conversion a code, an MMA a k16 step and token tile) no longer hides behind the
// loads. Here one thread streams a block's rows through a ring of shared-memory stages with
// tensor copies (64-96 KB of codes in flight a SM at 13-32 tokens), while four consumer warps
// compute on the stages before. At 1-8 tokens this stream alone is no faster than the register-fed GEMV with its math
// (H200, session 19), so launch_gemv picks this kernel only from 13 (int4) or 17 (int8) tokens.
//
// A block owns 64 rows over all of K. A stage holds, for kStageRowBytes of each row's codes (KS
// k): the codes of the 64 rows (two boxes of 128 bytes x 64 rows, 128-byte swizzle), the x of the
// M tokens at those k (boxes of 64 k x M tokens, swizzled), and for group scales the rows' group
// pairs of those k (one box). Consumer warp w computes rows 16w..16w+15. (One 1D bulk copy per
// row and stage ran twice as slow as the register-fed GEMV: the copy engine's cost per copy, not
// the bytes, set the time.)
#include <algorithm>
#include <cstdlib>

#include "../common/tensor_map.h"
#include "../common/wgmma.cuh"
#include "async_copy.cuh"
#include "weight_only.cuh"

namespace trtc {
namespace woq {
namespace {

constexpr int kStageRowBytes = 256;                  // code bytes of a row per stage
constexpr int kBox = 128;                            // bytes per row of a swizzled box
constexpr int kMaxDepth = 8;
constexpr int kBarBytes = 1024;                      // the barriers, padded: boxes start 1024-aligned

// The shared-memory layout of one launch (the same on host and device).
struct BulkArgs {
  Problem p;
  int stages;       // K / KS
  int depth;        // stages in the ring
  int x_box;        // bytes per box of x (M rows of 128 bytes, rounded up to 1024)
  int pair_row;     // bytes of one row's group pairs in a stage (0: per-row scales)
  int x_off, pair_off, stage_bytes;
  int group_shift;  // log2(group_size)
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Byte offset of 16-byte chunk c of row r in a box of 128-byte rows with the 128-byte swizzle
// (the box starts 1024-aligned).
__device__ __forceinline__ int swizzled(int r, int c) { return r * kBox + ((c ^ (r & 7)) << 4); }
#endif

constexpr int kConsumers = 4;      // consumer warps, one 16-row tile each
constexpr int kRows = 16 * kConsumers;

// NT: n8 token tiles (M <= 8 NT).
template <typename T, int BITS, bool GROUPS, int NT>
__global__ void __launch_bounds__((kConsumers + 1) * 32)
    bulk_gemv_kernel(const BulkArgs a, const __grid_constant__ CUtensorMap codes_map,
                     const __grid_constant__ CUtensorMap x_map, const __grid_constant__ CUtensorMap pairs_map) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int R = kRows;
  constexpr int kStepBytes = 64;                       // code bytes of a row per warp step
  constexpr int kSteps = kStageRowBytes / kStepBytes;  // warp steps per stage
  constexpr int CH = BITS == 8 ? 16 : 32;  // k per lane per step
  constexpr int KW = 4 * CH;               // k per warp step
  constexpr int KS = kStageRowBytes * 8 / BITS;
  constexpr int XV = CH / 8;               // 16-byte x vectors per lane and token
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* smem = align_smem<1024>(smem_raw);  // the launch asks 1024 bytes more
  uint64_t* full = reinterpret_cast<uint64_t*>(smem);
  uint64_t* empty = full + kMaxDepth;
  unsigned char* ring = smem + kBarBytes;
  const Problem& p = a.p;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row0 = blockIdx.x * R;
  const int tokens = static_cast<int>(p.m);
  if (threadIdx.x == 0) {
    for (int i = 0; i < a.depth; ++i) {
      mbar_init(&full[i], 1);
      mbar_init(&empty[i], kConsumers);
    }
    fence_mbarrier_init();
  }
  __syncthreads();

  if (warp == kConsumers) {
    if (lane != 0) return;
    // boxes past N are zero-filled and count in full
    const uint32_t tx = R * (kStageRowBytes + a.pair_row) + (KS / 64) * tokens * kBox;
    auto weights = [&](int i) {  // stage i's codes and pairs (the stage's barrier expects x too)
      const int slot = i % a.depth;
      mbar_arrive_expect_tx(&full[slot], tx);
      unsigned char* st = ring + slot * a.stage_bytes;
#pragma unroll
      for (int b = 0; b < kStageRowBytes / kBox; ++b)
        tma_load_2d(st + b * R * kBox, &codes_map, i * kStageRowBytes + b * kBox, row0, &full[slot]);
      if constexpr (GROUPS)
        tma_load_2d(st + a.pair_off, &pairs_map, i * (a.pair_row / 4), row0, &full[slot]);
    };
    auto xs = [&](int i) {
      const int slot = i % a.depth;
      unsigned char* st = ring + slot * a.stage_bytes;
#pragma unroll
      for (int b = 0; b < KS / 64; ++b)
        tma_load_2d(st + a.x_off + b * a.x_box, &x_map, i * KS + b * 64, 0, &full[slot]);
    };
    // the ring's first round of weights, then x once the kernel before has finished
    // (gemv_launch_options); the consumers store y only after x has landed
    const int first = min(a.depth, a.stages);
    for (int i = 0; i < first; ++i) weights(i);
    wait_for_prior_grid();
    for (int i = 0; i < first; ++i) xs(i);
    for (int i = first; i < a.stages; ++i) {
      mbar_wait(&empty[i % a.depth], (i / a.depth - 1) & 1);
      weights(i);
      xs(i);
    }
    return;
  }

  const int g = lane >> 2, t = lane & 3;
  const uint32_t flip = (BITS == 4 && p.zeros == nullptr) ? 0x00080008u : 0u;
  // int4: lanes t = 2, 3 take their chunk's four x vectors (and code words) in the order
  // 2, 3, 0, 1, so that the eight lanes of a shared-memory phase meet on distinct banks
  const int sw = BITS == 4 ? (t >> 1) * 2 : 0;
  // a lane's rows in the block, and its tokens (tokens past M read token M - 1, whose sums are
  // not stored)
  const int rows[2] = {16 * warp + g, 16 * warp + g + 8};
  int toks[NT];
#pragma unroll
  for (int j = 0; j < NT; ++j) toks[j] = min(8 * j + g, tokens - 1);

  float acc[NT][4];
#pragma unroll
  for (int j = 0; j < NT; ++j)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[j][i] = 0.f;

  for (int i = 0; i < a.stages; ++i) {
    const int slot = i % a.depth;
    mbar_wait(&full[slot], (i / a.depth) & 1);
    const unsigned char* st = ring + slot * a.stage_bytes;
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      // x of k [s KW + t CH, +CH): bytes 2 (s KW + t CH) of the stage's token rows
      const int xb = 2 * (s * KW + t * CH);
      uint4 xv[NT][XV];
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int v = 0; v < XV; ++v) {
          const int c = ((xb & (kBox - 1)) >> 4) + (v ^ sw);
          xv[j][v] = *reinterpret_cast<const uint4*>(st + a.x_off + (xb / kBox) * a.x_box + swizzled(toks[j], c));
        }
      const int cb = s * kStepBytes + 16 * t;  // the lane's code bytes in the stage's rows
      const unsigned char* box = st + (cb / kBox) * R * kBox;
      uint4 w[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const unsigned char* at = box + swizzled(rows[h], (cb & (kBox - 1)) >> 4);
        if constexpr (BITS == 8) {
          w[h] = *reinterpret_cast<const uint4*>(at);
        } else {  // words in the order of the lane's x vectors
          const uint2 lo = *reinterpret_cast<const uint2*>(at + 4 * sw);
          const uint2 hi = *reinterpret_cast<const uint2*>(at + 8 - 4 * sw);
          w[h] = make_uint4(lo.x, lo.y, hi.x, hi.y);
        }
      }
      uint32_t pa = 0u, pb = 0u;
      if constexpr (GROUPS) {
        const int grp = (s * KW + t * CH) >> a.group_shift;  // the lane's group in the stage
        const unsigned char* pr = st + a.pair_off + grp * 4;
        pa = *reinterpret_cast<const uint32_t*>(pr + rows[0] * a.pair_row);
        pb = *reinterpret_cast<const uint32_t*>(pr + rows[1] * a.pair_row);
      }
      chunk_mma<T, BITS, GROUPS, NT>(acc, w[0], w[1], pa, pb, flip, xv);
    }
    __syncwarp();
    if (lane == 0) mbar_arrive(&empty[slot]);
  }

  // accumulator i of lane (g, t), token tile j: row g + 8 (i >= 2), token 8j + 2t + (i & 1)
  T* y = static_cast<T*>(p.y);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int row = row0 + rows[i >> 1];
    if (row >= p.n) continue;
    const float scale = GROUPS ? 1.f : __ldg(p.scales + row);
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      const int token = 8 * j + 2 * t + (i & 1);
      if (token < tokens) y[token * static_cast<int64_t>(p.n) + row] = from_float<T>(acc[j][i] * scale);
    }
  }
#else
  __trap();  // launched only where binaryVersion is 90 (see bulk_gemv_ready)
#endif
}

bool bulk_gemv_ready() {
  static std::atomic<uint64_t> checked{0}, ready{0};
  return wgmma_binary_ready(bulk_gemv_kernel<__nv_bfloat16, 8, false, 2>, checked, ready);
}

// Shared memory a block may take so that two fit on a SM.
constexpr int kBlockSmem = 112 * 1024;

template <typename T, int BITS, bool GROUPS, int NT>
int launch_bulk_as(BulkArgs a, cudaStream_t stream) {
  auto kernel = bulk_gemv_kernel<T, BITS, GROUPS, NT>;
  constexpr int R = kRows;
  constexpr int KS = kStageRowBytes * 8 / BITS;
  const Problem& p = a.p;
  a.x_off = R * kStageRowBytes;
  a.pair_off = a.x_off + (KS / 64) * a.x_box;
  a.stage_bytes = (a.pair_off + R * a.pair_row + 1023) / 1024 * 1024;
  a.depth = std::min({kMaxDepth, a.stages, (kBlockSmem - 1024 - kBarBytes) / a.stage_bytes});
  if (a.depth < 1) return cudaErrorNotSupported;
  const size_t smem = 1024 + kBarBytes + static_cast<size_t>(a.depth) * a.stage_bytes;
  CUtensorMap codes{}, x{}, pairs{};
  const uint64_t row_bytes = static_cast<uint64_t>(p.k) * BITS / 8;
  const CUtensorMapDataType xt = std::is_same<T, __half>::value ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16
                                                                 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  const uint64_t groups = GROUPS ? static_cast<uint64_t>(p.k >> a.group_shift) : 0;
  const bool maps =
      tensor_map_2d({p.qweight, CU_TENSOR_MAP_DATA_TYPE_UINT8, row_bytes, static_cast<uint64_t>(p.n), row_bytes,
                     kBox, R, CU_TENSOR_MAP_SWIZZLE_128B},
                    codes) &&
      tensor_map_2d({p.x, xt, static_cast<uint64_t>(p.k), static_cast<uint64_t>(p.m),
                     static_cast<uint64_t>(p.x_stride) * 2, 64, static_cast<uint32_t>(p.m), CU_TENSOR_MAP_SWIZZLE_128B},
                    x) &&
      (!GROUPS || tensor_map_2d({p.pairs, CU_TENSOR_MAP_DATA_TYPE_UINT32, groups, static_cast<uint64_t>(p.n),
                                 groups * 4, static_cast<uint32_t>(a.pair_row / 4), R, CU_TENSOR_MAP_SWIZZLE_NONE},
                                pairs));
  if (!maps) return cudaErrorNotSupported;
  static std::atomic<uint64_t> opted{0};
  const int e = opt_in_shared_memory(kernel, kBlockSmem, opted);
  if (e) return e;
  const dim3 grid((p.n + R - 1) / R);
  return launch_ex(kernel, grid, dim3((kConsumers + 1) * 32), stream, gemv_launch_options(smem), a, codes, x,
                   pairs);
}

}  // namespace

// Where this kernel runs, from H200 timings of session 19 (4096 x 14336, 28672 and 57344):
// - int8 at 17-32 tokens: 1.23-1.50x faster than the register-fed GEMV of weight_only_gemv.cu;
// - int4 at 13-16: 1.00-1.20x faster than it (at 9 tokens 2-4 % slower; at 1-8 the register-fed
//   GEMV is as fast as this kernel's stream alone);
// - int4 at 17-32 in groups of 32: 1.04-1.47x faster than the tensor-core GEMV of
//   weight_only_gemv_mma.cu; per channel (which that one cannot do): 1.8-3.0x faster than the
//   register-fed GEMV. With groups of 128 the tensor-core GEMV and this one trade places (that
//   one 1.01-1.14x faster at 17-24 tokens on the two narrower shapes, this one faster at 32
//   tokens and on the widest), so the tensor-core GEMV keeps groups above 32.
// The shape's part of the rule (pairs: group pairs packed in the activation type are given).
bool bulk_gemv_shape_fits(int64_t m, int n, int k, int bits, int group_size, bool pairs) {
  static const bool off = [] {  // benchmark override: TRTC_WOQ_GEMV_BULK=0
    const char* s = getenv("TRTC_WOQ_GEMV_BULK");
    return s != nullptr && s[0] == '0';
  }();
  if (off || m > 32 || m < (bits == 8 ? 17 : 13)) return false;
  if (bits == 4 && m > 16 && group_size > 32) return false;
  const int ks = kStageRowBytes * 8 / bits;
  if (k % ks != 0) return false;
  // group pairs: at least 16 bytes of them per row and stage, a lane's k inside one group
  const int gs = group_size;
  if (gs > 0 && (!pairs || (gs & (gs - 1)) != 0 || gs < (bits == 8 ? 16 : 32) || ks / gs < 4)) return false;
  if ((n + kRows - 1) / kRows < sm_count()) return false;  // a block per SM at least
  return bulk_gemv_ready() && tensor_map_encoder() != nullptr;
}

bool bulk_gemv_fits(const Problem& p) {
  return aligned16(p.x) && aligned16(p.qweight) && p.x_stride % 8 == 0 &&
         (p.group_size == 0 || aligned16(p.pairs)) &&
         bulk_gemv_shape_fits(p.m, p.n, p.k, p.bits, p.group_size, p.pairs != nullptr);
}

template <typename T>
int launch_bulk(const Problem& p, cudaStream_t stream) {
  BulkArgs a{};
  a.p = p;
  const int ks = kStageRowBytes * 8 / p.bits;
  a.stages = p.k / ks;
  a.x_box = (static_cast<int>(p.m) * kBox + 1023) / 1024 * 1024;
  a.pair_row = p.group_size > 0 ? ks / p.group_size * 4 : 0;
  a.group_shift = p.group_size > 0 ? __builtin_ctz(static_cast<unsigned>(p.group_size)) : 0;
  auto by_bits = [&](auto bits) {
    constexpr int B = decltype(bits)::value;
    if (p.group_size > 0)
      return p.m <= 16 ? launch_bulk_as<T, B, true, 2>(a, stream) : launch_bulk_as<T, B, true, 4>(a, stream);
    return p.m <= 16 ? launch_bulk_as<T, B, false, 2>(a, stream) : launch_bulk_as<T, B, false, 4>(a, stream);
  };
  return p.bits == 8 ? by_bits(std::integral_constant<int, 8>{}) : by_bits(std::integral_constant<int, 4>{});
}

template int launch_bulk<__half>(const Problem&, cudaStream_t);
template int launch_bulk<__nv_bfloat16>(const Problem&, cudaStream_t);

}  // namespace woq
}  // namespace trtc

extern "C" int trtc_weight_only_gemv_bulk_fits(int64_t m, int32_t n, int32_t k, int32_t bits, int32_t group_size,
                                               int32_t pairs) {
  return (bits == 8 || bits == 4) && n > 0 && k > 0 && group_size >= 0 &&
         trtc::woq::bulk_gemv_shape_fits(m, n, k, bits, group_size, pairs != 0);
}
