// Weight-only GEMM on the tensor cores for decode batches of 17-32 tokens on Hopper (sm_90a),
// int4 codes with power-of-two groups, for wide projections (the launcher's caller picks it:
// trtcompile/ops/cuda_kernels.py mma_gemv_fits). The CUDA-core GEMV of weight_only_gemv.cu
// spends a multiply-add per weight and token, which at 17-32 tokens makes it slower than bf16;
// here a weight costs its share of one logic op and the MMAs are nearly free.
//
// Operands, all read by bulk copies (TMA, no tensor map) into a ring of shared-memory stages:
// - the codes repacked for the Hopper prefill kernel (trtcompile/ops/quant_kernels.py
//   repack_for_wgmma): in each 16-channel x 64-k block, lane (g, t)'s 16 bytes are its m16n8k16
//   A fragments of the block's four k16 steps (a0, a2: channel g; a1, a3: channel g + 8). A
//   slab of 16 channels is contiguous along K, so a stage of it is one copy;
// - float32 (scale, min) group pairs repacked as [slab][group][16 channels]
//   (slab_group_pairs), so a stage's groups of a slab are one copy too;
// - the activations, one copy per token row; ldmatrix turns them into B fragments.
// The codes enter the MMAs as small exact integers (plus a bias); the group's scale and min are
// applied to the float32 sums when the group ends: acc += scale * sum(v x) + (min - bias *
// scale) * sum(x), the sum of x coming from an MMA with A = 1.
// Each block computes 256 channels (8 consumer warps x 2 slabs) over a range of K; the ranges
// of one channel tile form a thread-block cluster (a power of two up to 8) that sums its partial
// tiles through distributed shared memory. A ninth warp only issues the copies.
#include <type_traits>

#include "../common/cluster.cuh"
#include "../common/wgmma.cuh"
#include "async_copy.cuh"
#include "weight_only.cuh"

namespace trtc {
namespace woq {
namespace {

constexpr int kBlockK = 64;                        // k per repacked block
constexpr int kBlockBytes = 512;                   // int4 codes of one 16 x 64 block
constexpr int kSlabs = 2;                          // 16-channel slabs per consumer warp

constexpr int kWarps = 8;                          // consumer warps; one more issues copies
constexpr int kTileSlabs = kWarps * kSlabs;        // 256 channels per block
constexpr int kStageBlocks = 4;                    // k blocks per stage
constexpr int kDepth = 3;                          // stages in the ring
constexpr int kTiles = 4;                          // n8 token tiles: up to 32 tokens
constexpr int kXRow = kStageBlocks * 128 + 16;     // bytes per token row (+16: ldmatrix rows
                                                   // land on distinct banks)

// Groups per stage and slab: a stage starts at a multiple of kStageBlocks blocks, so groups of
// 16 / 32 take 16 / 8 slots, groups of 64 or more at most 4.
template <int GSTEPS> constexpr int kPairSlots = kStageBlocks * 4 / GSTEPS;

// The ring; once every stage is consumed, the codes' space holds the partial accumulators.
template <int GSTEPS>
struct GemvTiles {
  union {
    uint8_t codes[kDepth][kTileSlabs][kStageBlocks * kBlockBytes];
    float partial[kTileSlabs * kTiles * 4][32];  // accumulators, [slab, tile, c][lane]
  };
  alignas(16) float pairs[kDepth][kTileSlabs][kPairSlots<GSTEPS>][16][2];
  alignas(16) uint8_t x[kDepth][8 * kTiles][kXRow];
  uint64_t full[kDepth], empty[kDepth];
};

struct GemvArgs {
  Problem p;
  int kblocks;       // ceil(K / 64): blocks per slab in the repacked codes
  int per_split;     // k blocks per cluster rank
  int group_shift;   // log2(group_size)
};

// Stage i of a split: its first k block, block count and first group.
struct Stage {
  int kb0, blocks, g0, groups;
  __device__ __forceinline__ Stage(int i, int kb_first, int kb_last, int shift) {
    kb0 = kb_first + i * kStageBlocks;
    blocks = min(kStageBlocks, kb_last - kb0);
    g0 = (kb0 * kBlockK) >> shift;
    groups = (((kb0 + blocks) * kBlockK - 1) >> shift) - g0 + 1;
  }
};

// GSTEPS: k16 steps per group pair within a block (2: groups of 32, 4: of 64 or more; groups
// of 16 would need more shared memory for their pairs than the SM has).
template <typename T, int GSTEPS>
__global__ void __launch_bounds__((kWarps + 1) * 32) mma_gemv_kernel(GemvArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int NT = kTiles;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  GemvTiles<GSTEPS>& sm = *reinterpret_cast<GemvTiles<GSTEPS>*>(smem_raw);
  const Problem& p = a.p;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int slab0 = blockIdx.x * kTileSlabs;
  const int kb_first = blockIdx.y * a.per_split;
  const int kb_last = min(a.kblocks, kb_first + a.per_split);
  const int stages = kb_last > kb_first ? (kb_last - kb_first + kStageBlocks - 1) / kStageBlocks : 0;
  const int groups = p.k >> a.group_shift;
  const int tokens = min(static_cast<int>(p.m), 8 * NT);
  if (threadIdx.x == 0) {
    for (int i = 0; i < kDepth; ++i) {
      mbar_init(&sm.full[i], 1);
      mbar_init(&sm.empty[i], kWarps);
    }
    fence_mbarrier_init();
  }
  __syncthreads();

  constexpr int E = kSlabs * NT * 4;  // accumulators per lane
  float acc[kSlabs][NT][4] = {};

  if (warp == kWarps) {
    // copy c of a stage: the codes of slab c (c < kTileSlabs), the pairs of slab c - kTileSlabs
    // (c < 2 kTileSlabs), else token row c - 2 kTileSlabs of x; slabs past the padded codes skip
    constexpr int kPadSlabs = 8;  // the repacked codes hold N rounded up to 128 channels
    const int slabs = min(kTileSlabs, (p.n + 16 * kPadSlabs - 1) / (16 * kPadSlabs) * kPadSlabs - slab0);
    // stage i's copies of the codes and pairs (weights: the stage's barrier expects x too) and
    // of x (xrows)
    auto copies = [&](int i, bool weights, bool xrows) {
      const int slot = i % kDepth;
      const Stage st(i, kb_first, kb_last, a.group_shift);
      if (weights && lane == 0)
        mbar_arrive_expect_tx(&sm.full[slot], slabs * (st.blocks * kBlockBytes + st.groups * 128) +
                                                   tokens * st.blocks * 128);
      __syncwarp();
      const int c_end = xrows ? 2 * kTileSlabs + tokens : 2 * kTileSlabs;
      for (int c = lane + (weights ? 0 : 2 * kTileSlabs); c < c_end; c += 32) {
        if (c < kTileSlabs) {
          if (c < slabs)
            bulk_copy_g2s(sm.codes[slot][c],
                          p.qweight + (static_cast<int64_t>(slab0 + c) * a.kblocks + st.kb0) * kBlockBytes,
                          st.blocks * kBlockBytes, &sm.full[slot]);
        } else if (c < 2 * kTileSlabs) {
          const int s = c - kTileSlabs;
          if (s < slabs)
            bulk_copy_g2s(sm.pairs[slot][s], p.scales + (static_cast<int64_t>(slab0 + s) * groups + st.g0) * 32,
                          st.groups * 128, &sm.full[slot]);
        } else {
          const T* xrow = static_cast<const T*>(p.x) + static_cast<int64_t>(c - 2 * kTileSlabs) * p.x_stride;
          bulk_copy_g2s(sm.x[slot][c - 2 * kTileSlabs], xrow + st.kb0 * kBlockK, st.blocks * 128, &sm.full[slot]);
        }
      }
    };
    // the ring's first round of weights, then x once the kernel before has finished
    // (gemv_launch_options); the consumers store y only after x has landed
    const int first = min(kDepth, stages);
    for (int i = 0; i < first; ++i) copies(i, true, false);
    wait_for_prior_grid();
    for (int i = 0; i < first; ++i) copies(i, false, true);
    for (int i = first; i < stages; ++i) {
      mbar_wait(&sm.empty[i % kDepth], (i / kDepth - 1) & 1);
      copies(i, true, true);
    }
  } else {
    const int g = lane >> 2;
    const uint32_t flip = p.zeros == nullptr ? 0x00080008u : 0u;
    const uint32_t bias_bits = Types<T>::kMagic * 0x10001u | flip;
    // The codes enter the MMAs as v = bias + q exactly: bf16 v = magic 128 (+ 8 for two's
    // complement) + q as the logic op leaves it. fp16 subtracts its magic 1024 first: with it,
    // the float32 sums of v x lose too much when the bias is taken out again.
    constexpr bool kSubMagic = std::is_same<T, __half>::value;
    const float bias = (kSubMagic ? 0.f : 128.f) + (flip ? 8.f : 0.f);
    using T2 = typename Types<T>::T2;
    const T2 magic2 = as_t2<T2>(Types<T>::kMagic * 0x10001u);
    const uint32_t ones = Types<T>::kOne * 0x10001u;
    const uint32_t ones4[4] = {ones, ones, ones, ones};
    // per group: raw[s][j] = sum of v x over the group, xsum[j] = sum of x (MMAs with A = 1);
    // acc += scale * raw + (min - bias * scale) * xsum when the group ends
    float raw[kSlabs][NT][4], xsum[NT][4];
    auto clear = [&]() {
#pragma unroll
      for (int j = 0; j < NT; ++j) {
#pragma unroll
        for (int c = 0; c < 4; ++c) xsum[j][c] = 0.f;
#pragma unroll
        for (int s = 0; s < kSlabs; ++s)
#pragma unroll
          for (int c = 0; c < 4; ++c) raw[s][j][c] = 0.f;
      }
    };
    auto close_group = [&](int slot, int grp) {  // grp: the group's slot in this stage
#pragma unroll
      for (int s = 0; s < kSlabs; ++s) {
        const float2 lo = *reinterpret_cast<const float2*>(&sm.pairs[slot][warp * kSlabs + s][grp][g][0]);
        const float2 hi = *reinterpret_cast<const float2*>(&sm.pairs[slot][warp * kSlabs + s][grp][g + 8][0]);
        const float lo_min = fmaf(-bias, lo.x, lo.y), hi_min = fmaf(-bias, hi.x, hi.y);
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
          for (int c = 0; c < 4; ++c)
            acc[s][j][c] = fmaf(c >> 1 ? hi.x : lo.x, raw[s][j][c],
                                fmaf(c >> 1 ? hi_min : lo_min, xsum[j][c], acc[s][j][c]));
      }
      clear();
    };
    clear();
    // ldmatrix rows: lane's matrix q = lane / 8 is (step q / 2, k half q % 2) of a step pair
    const uint32_t x_lane = smem_u32(&sm.x[0][lane & 7][0]) + (lane >> 4) * 32 + ((lane >> 3) & 1) * 16;
    const int group_mask = (1 << a.group_shift) - 1;
    for (int i = 0; i < stages; ++i) {
      const int slot = i % kDepth;
      mbar_wait(&sm.full[slot], (i / kDepth) & 1);
      const Stage st(i, kb_first, kb_last, a.group_shift);
#pragma unroll
      for (int u = 0; u < kStageBlocks; ++u) {
        if (u >= st.blocks) break;
        uint32_t b[NT][8];  // b[j][2 * step + half]
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          const uint32_t at = x_lane + (slot * 8 * NT + 8 * j) * kXRow + u * 128;
          ldmatrix_x4(&b[j][0], at);
          ldmatrix_x4(&b[j][4], at + 64);
        }
        uint4 w[kSlabs];
#pragma unroll
        for (int s = 0; s < kSlabs; ++s)
          w[s] = *reinterpret_cast<const uint4*>(&sm.codes[slot][warp * kSlabs + s][u * kBlockBytes + 16 * lane]);
        const int kb = st.kb0 + u;
        const int grp0 = ((kb * kBlockK) >> a.group_shift) - st.g0;
#pragma unroll
        for (int step = 0; step < 4; ++step) {
#pragma unroll
          for (int j = 0; j < NT; ++j) mma16816<T>(xsum[j], ones4, b[j][2 * step], b[j][2 * step + 1]);
#pragma unroll
          for (int s = 0; s < kSlabs; ++s) {
            const uint32_t word = step == 0 ? w[s].x : step == 1 ? w[s].y : step == 2 ? w[s].z : w[s].w;
            uint32_t frag[4];
#pragma unroll
            for (int r = 0; r < 4; ++r) {
              frag[r] = ((word >> (4 * r)) & 0x000F000Fu) ^ bias_bits;
              if constexpr (kSubMagic) frag[r] = as_u32(__hsub2(as_t2<T2>(frag[r]), magic2));
            }
#pragma unroll
            for (int j = 0; j < NT; ++j) mma16816<T>(raw[s][j], frag, b[j][2 * step], b[j][2 * step + 1]);
          }
          if constexpr (GSTEPS < 4) {
            if ((step + 1) % GSTEPS == 0) close_group(slot, grp0 + step / GSTEPS);
          }
        }
        if constexpr (GSTEPS == 4) {  // a group ends, or this split's range ends inside one
          if ((((kb + 1) * kBlockK) & group_mask) == 0 || kb + 1 == kb_last) close_group(slot, grp0);
        }
      }
      __syncwarp();
      if (lane == 0) mbar_arrive(&sm.empty[slot]);
    }
  }

  // accumulator c of tile j, slab s, lane (g, t): channel 16 (slab0 + warp * kSlabs + s) + g +
  // 8 (c >> 1), token 8j + 2t + (c & 1)
  T* y = static_cast<T*>(p.y);
  auto store = [&](int e, int ln, float v) {  // e = (warp * kSlabs + s) * NT * 4 + 4j + c
    const int ts = e / (NT * 4), j = (e / 4) % NT, c = e % 4;
    const int channel = 16 * (slab0 + ts) + (ln >> 2) + 8 * (c >> 1);
    const int token = 8 * j + 2 * (ln & 3) + (c & 1);
    if (channel < p.n && token < p.m) y[static_cast<int64_t>(token) * p.n + channel] = from_float<T>(v);
  };
  const unsigned splits = gridDim.y;
  if (splits == 1) {
    if (warp < kWarps) {
#pragma unroll
      for (int e = 0; e < E; ++e) store(warp * E + e, lane, acc[e / (NT * 4)][(e / 4) % NT][e % 4]);
    }
    return;
  }
  __syncthreads();  // every warp is done with the ring's codes
  if (warp < kWarps) {
#pragma unroll
    for (int e = 0; e < E; ++e) sm.partial[warp * E + e][lane] = acc[e / (NT * 4)][(e / 4) % NT][e % 4];
  }
  cluster_arrive();
  cluster_wait();  // every rank's partial tile is written
  // rank r sums its share of the tile's float4s (4 lanes t of one g) over the ranks, in rank order
  constexpr int kVecs = kTileSlabs * NT * 4 * 8;
  const int span = (kVecs + splits - 1) / splits, v0 = cluster_rank() * span;
  for (int v = v0 + threadIdx.x; v < min(kVecs, v0 + span); v += blockDim.x) {
    const int e = v >> 3, g = v & 7;
    float4 sum = load_shared_remote4(&sm.partial[e][4 * g], 0);
    for (unsigned o = 1; o < splits; ++o) {
      const float4 add = load_shared_remote4(&sm.partial[e][4 * g], o);
      sum.x += add.x, sum.y += add.y, sum.z += add.z, sum.w += add.w;
    }
    store(e, 4 * g, sum.x);
    store(e, 4 * g + 1, sum.y);
    store(e, 4 * g + 2, sum.z);
    store(e, 4 * g + 3, sum.w);
  }
  cluster_arrive();
  cluster_wait();  // no block leaves while the others still read its shared memory
#else
  __trap();  // launched only where binaryVersion is 90 (see gemv_mma_ready)
#endif
}

bool gemv_mma_ready() {
  static std::atomic<uint64_t> checked{0}, ready{0};
  return wgmma_binary_ready(mma_gemv_kernel<__nv_bfloat16, 4>, checked, ready);
}

// Splits of K per channel tile (the cluster): the largest power of two up to 8 (and up to the
// stage count) that keeps every block resident at once.
template <typename T, int GSTEPS>
int launch_mma_as(const Problem& p, int group_shift, cudaStream_t stream) {
  constexpr size_t smem = sizeof(GemvTiles<GSTEPS>);
  constexpr int threads = (kWarps + 1) * 32;
  static std::atomic<uint64_t> opted{0};
  auto kernel = mma_gemv_kernel<T, GSTEPS>;
  const int e = opt_in_shared_memory(kernel, smem, opted);
  if (e) return e;
  static std::atomic<int> per_sm{0};
  if (per_sm.load() == 0) {
    int blocks = 0;
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, smem);
    per_sm.store(blocks > 0 ? blocks : 1);
  }
  GemvArgs a{p, (p.k + kBlockK - 1) / kBlockK, 0, group_shift};
  const int tiles = (p.n + 16 * kTileSlabs - 1) / (16 * kTileSlabs);
  const int64_t slots = static_cast<int64_t>(per_sm.load()) * sm_count();
  const int stage_count = (a.kblocks + kStageBlocks - 1) / kStageBlocks;
  int splits = 1;
  while (2 * splits <= kMaxClusterCtas && 2 * splits <= stage_count && tiles * 2 * splits <= slots) splits *= 2;
  a.per_split = ((stage_count + splits - 1) / splits) * kStageBlocks;
  LaunchOptions o = gemv_launch_options(smem);
  o.cluster = dim3(1, splits);
  return launch_ex(kernel, dim3(tiles, splits), dim3(threads), stream, o, a);
}

template <typename T>
int launch_mma(const Problem& p, int group_shift, cudaStream_t stream) {
  return group_shift == 5 ? launch_mma_as<T, 2>(p, group_shift, stream) : launch_mma_as<T, 4>(p, group_shift, stream);
}

}  // namespace
}  // namespace woq
}  // namespace trtc

extern "C" int trtc_weight_only_gemv_packed_supported(void) { return trtc::woq::gemv_mma_ready(); }

extern "C" int trtc_weight_only_gemv_packed(const void* x, int64_t x_stride, const void* packed,
                                            const float* slab_pairs, int32_t twos_complement,
                                            void* y, int64_t m, int32_t n, int32_t k,
                                            int32_t group_size, trtc_dtype dtype, cudaStream_t stream) {
  using namespace trtc;
  const bool pow2 = group_size >= 32 && (group_size & (group_size - 1)) == 0;
  const bool shape_ok = m >= 0 && m <= 32 && n > 0 && k > 0 && k % woq::kBlockK == 0 &&
                        x_stride >= k && x_stride % 8 == 0 && pow2 && k % group_size == 0 &&
                        slab_pairs != nullptr;
  if (!shape_ok || !aligned16(x) || !aligned16(packed) || !aligned16(slab_pairs)) return cudaErrorInvalidValue;
  if (m == 0) return cudaSuccess;
  if (!woq::gemv_mma_ready()) return cudaErrorNotSupported;
  // zeros: only whether the codes are unsigned (asymmetric) or two's complement
  static const float kAsymmetric = 0.f;
  woq::Problem p{x, x_stride, static_cast<const uint8_t*>(packed), slab_pairs,
                 twos_complement ? nullptr : &kAsymmetric, nullptr, y, m, n, k, 4, group_size};
  const int shift = 31 - __builtin_clz(static_cast<unsigned>(group_size));
  if (dtype == TRTC_F16) return woq::launch_mma<__half>(p, shift, stream);
  if (dtype == TRTC_BF16) return woq::launch_mma<__nv_bfloat16>(p, shift, stream);
  return cudaErrorNotSupported;
}
