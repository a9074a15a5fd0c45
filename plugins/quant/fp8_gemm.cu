// FP8 W8A8 GEMM for decode batches on Hopper (sm_90a): y [M, N] = (x [M, K] * sx) (W [N, K] *
// ws)^T with e4m3 codes for both, per-token scales sx and per-channel scales ws, for M <= 256.
//
// Why: at decode batch sizes the weights' bytes set the time, and cuBLASLt's row-wise-scaled
// fp8 kernels tile 128 channels x 128 tokens without splitting K, so the o and down projections
// of an 8B model (N = 4096) run 32 blocks on 132 SMs (1.2-1.6 TB/s on the H100,
// benchmarks/bench_fp8_decode_gemm.py). Here the weights are wgmma's A operand (128 channels per
// block, 64 per warpgroup along wgmma's M), all tokens its B operand (N = 64, 128 or 256 of
// them), and K is split in two where the channel tiles alone would leave SMs idle.
//
//   block (tile of 128 channels, split s): steps of 128 k (one 128-byte swizzled row per
//   channel and token) stream through a cp.async ring; each step is 4 m64nTk32 MMAs a
//   warpgroup, one step's MMAs in flight while the next is issued.
//   splits > 1: the splits of a tile form a thread-block cluster; each leaves its float partial
//   sums in its shared memory and sums a slice of the channels over all of them (distributed
//   shared memory, split order: deterministic), no workspace in global memory.
//   launched as a programmatic dependent (sm_90): the first steps' weights load while the
//   kernel before it (the one quantizing x) still runs.
//   epilogue: y = acc * ws[channel] * sx[token], staged in shared memory as [token][channel] so
//   that each store is 16 bytes of channels.
//
// The accumulation is the tensor cores' own (no promotion to float32 along K), the same
// numerics as torch._scaled_mm with use_fast_accum.
#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "../common/cluster.cuh"
#include "../common/wgmma.cuh"
#include "async_copy.cuh"

namespace trtc {
namespace fp8 {
namespace {

using woq::cp_async16;
using woq::cp_async_commit;
using woq::cp_async_wait;

constexpr int kRows = 128;     // channels per block: 2 warpgroups x 64
constexpr int kStepK = 128;    // k per step: one 128-byte row
constexpr int kThreads = 256;  // warp w: channels 16w..16w+15 of the block

struct Problem {
  const uint8_t* x;   // [m, k] codes, row stride x_stride bytes
  int64_t x_stride;
  const uint8_t* w;   // [n, k] codes, rows of k bytes
  const float* ws;    // [n]
  const float* sx;    // [m]
  __nv_bfloat16* y;   // [m, n]
  int m, n, k, steps, steps_per_split;
};

// A ring of STAGES steps: weights and tokens of each.
template <int BT, int STAGES>
struct Tiles {
  alignas(1024) unsigned char w[STAGES][kRows * kStepK];
  alignas(1024) unsigned char x[STAGES][BT * kStepK];
};

template <int BT, int STAGES>
constexpr size_t smem_bytes() {
  return sizeof(Tiles<BT, STAGES>) + 1024;  // + alignment slack
}

// Blocks per SM that fit in shared memory (227 KB on the H100).
template <int BT, int STAGES>
constexpr int blocks_per_sm() {
  return smem_bytes<BT, STAGES>() <= 113 * 1024 ? 2 : 1;
}

// BT: tokens (wgmma's N); STAGES: steps in the ring, STAGES - 2 of them loading ahead (one more
// holds the MMAs in flight).
template <int BT, int STAGES>
__global__ void __launch_bounds__(kThreads, blocks_per_sm<BT, STAGES>()) fp8_gemm_kernel(const Problem p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  Tiles<BT, STAGES>& sm =
      *reinterpret_cast<Tiles<BT, STAGES>*>(align_smem<1024>(smem_raw));
  constexpr int kAcc = BT / 2, kDepth = STAGES - 2;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
  const int g = lane >> 2, t = lane & 3;
  const int tile = blockIdx.x, split = blockIdx.y, splits = gridDim.y;  // a cluster of splits
  const int n0 = tile * kRows;
  const int first = split * p.steps_per_split;
  const int nsteps = min(p.steps, first + p.steps_per_split) - first;

  // This thread's 16-byte chunks: chunk c = tid & 7 of rows tid / 8 + 32 i (weights: 4 rows,
  // x: BT / 32), stored swizzled (chunk c of row r at c ^ (r & 7)). Rows past n or m and k past
  // the end read nothing and land as zeros.
  const int crow = tid >> 3, cc = tid & 7;
  const int cdst = crow * kStepK + ((cc ^ (crow & 7)) << 4);
  auto issue_w = [&](int slot, int step) {
    const int k = (first + step) * kStepK + 16 * cc;
#pragma unroll
    for (int i = 0; i < kRows / 32; ++i) {
      const int r = n0 + crow + 32 * i;
      const bool ok = k < p.k && r < p.n;
      cp_async16(&sm.w[slot][cdst + 32 * kStepK * i], ok ? p.w + static_cast<int64_t>(r) * p.k + k : p.w,
                 ok ? 16 : 0);
    }
  };
  auto issue_x = [&](int slot, int step) {
    const int k = (first + step) * kStepK + 16 * cc;
#pragma unroll
    for (int i = 0; i < BT / 32; ++i) {
      const int r = crow + 32 * i;
      const bool ok = k < p.k && r < p.m;
      cp_async16(&sm.x[slot][cdst + 32 * kStepK * i], ok ? p.x + r * p.x_stride + k : p.x, ok ? 16 : 0);
    }
  };

  float acc[kAcc];
#pragma unroll
  for (int i = 0; i < kAcc; ++i) acc[i] = 0.f;

  // Launched as a programmatic dependent of the kernel that quantizes x: the first steps'
  // weights load while it runs; x only after it has finished.
#pragma unroll
  for (int s = 0; s < kDepth; ++s)
    if (s < nsteps) issue_w(s, s);
  wait_for_prior_grid();
#pragma unroll
  for (int s = 0; s < kDepth; ++s) {
    if (s < nsteps) issue_x(s, s);
    cp_async_commit();  // one group per step, empty or not: the wait count stays uniform
  }
  const uint32_t w_base = static_cast<uint32_t>(__cvta_generic_to_shared(&sm.w[0][0])) + wg * 64 * kStepK;
  const uint32_t x_base = static_cast<uint32_t>(__cvta_generic_to_shared(&sm.x[0][0]));
  for (int step = 0; step < nsteps; ++step) {
    const int slot = step % STAGES;
    cp_async_wait<kDepth - 1>();
    fence_async_shared();  // this thread's copies, visible to the tensor cores
    __syncthreads();       // ... everyone's; the MMAs of step - 2 (the slot refilled next) are done
    if (step + kDepth < nsteps) {
      issue_w((step + kDepth) % STAGES, step + kDepth);
      issue_x((step + kDepth) % STAGES, step + kDepth);
    }
    cp_async_commit();
    wgmma_fence_operand(acc);
    wgmma_fence();
#pragma unroll
    for (int s = 0; s < kStepK / 32; ++s)  // k32 step s: 32 bytes into each 128-byte row
      wgmma_m64k32_e4m3_ss<BT>(acc, swizzled_desc(w_base + slot * kRows * kStepK + 32 * s),
                               swizzled_desc(x_base + slot * BT * kStepK + 32 * s), 1);
    wgmma_commit();
    wgmma_wait<1>();  // this step's MMAs may run on while the next step is issued
    wgmma_fence_operand(acc);
  }
  wgmma_wait<0>();
  wgmma_fence_operand(acc);
  cp_async_wait<0>();

  // accumulator 4j + c of lane (g, t): channel 16 warp + g (+8 for c >= 2), token 8j + 2t + (c & 1)
  const int row = 16 * warp + g;
  __syncthreads();  // every MMA has read the ring: it holds the epilogue's tiles now
  if (splits > 1) {
    // The splits of a tile are one cluster. Each puts its partial sums in its shared memory as
    // [token][channel] (rows padded by 4 floats: the fragment stores hit 32 banks), then sums
    // 128 / splits of the channels over every split's copy, in split order (the same bits
    // whatever the timing), scales them and stores them.
    constexpr int PLD = kRows + 4;
    float* part = reinterpret_cast<float*>(&sm.w[0][0]);
    static_assert(BT * PLD * 4 <= sizeof(Tiles<BT, STAGES>), "the partial tile fits the ring");
#pragma unroll
    for (int j = 0; j < BT / 8; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c)
        if (8 * j < p.m)  // token tiles past m: neither written nor read
          part[(8 * j + 2 * t + (c & 1)) * PLD + row + 8 * (c >> 1)] = acc[4 * j + c];
    cluster_arrive();
    cluster_wait();  // every split's partial tile is written
    const int span = kRows / splits, c0 = static_cast<int>(cluster_rank()) * span;
    const int vecs = span / 4, tokens = min(p.m, BT);
    for (int idx = tid; idx < tokens * vecs; idx += kThreads) {
      const int token = idx / vecs, c = c0 + 4 * (idx - token * vecs), n = n0 + c;
      float4 sum = load_shared_remote4(part + token * PLD + c, 0);
      for (int o = 1; o < splits; ++o) {
        const float4 v = load_shared_remote4(part + token * PLD + c, o);
        sum.x += v.x, sum.y += v.y, sum.z += v.z, sum.w += v.w;
      }
      const float st = __ldg(p.sx + token);
      const float v[4] = {sum.x, sum.y, sum.z, sum.w};
      __nv_bfloat16* dst = p.y + static_cast<int64_t>(token) * p.n + n;
      if (n + 3 < p.n && p.n % 4 == 0) {
        const float4 sw = __ldg(reinterpret_cast<const float4*>(p.ws + n));
        const __nv_bfloat162 lo = __floats2bfloat162_rn(v[0] * sw.x * st, v[1] * sw.y * st);
        const __nv_bfloat162 hi = __floats2bfloat162_rn(v[2] * sw.z * st, v[3] * sw.w * st);
        uint2 packed;
        packed.x = *reinterpret_cast<const uint32_t*>(&lo);
        packed.y = *reinterpret_cast<const uint32_t*>(&hi);
        *reinterpret_cast<uint2*>(dst) = packed;
      } else {
        for (int e = 0; e < 4 && n + e < p.n; ++e) dst[e] = __float2bfloat16(v[e] * __ldg(p.ws + n + e) * st);
      }
    }
    cluster_arrive();
    cluster_wait();  // no block leaves while the others still read its shared memory
    return;
  }

  constexpr int LD = kRows + 8;
  __nv_bfloat16* out = reinterpret_cast<__nv_bfloat16*>(&sm.w[0][0]);
  static_assert(BT * LD * 2 <= sizeof(Tiles<BT, STAGES>), "the output tile fits the ring");
  float scale[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) scale[h] = n0 + row + 8 * h < p.n ? __ldg(p.ws + n0 + row + 8 * h) : 0.f;
#pragma unroll
  for (int j = 0; j < BT / 8; ++j)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int token = 8 * j + 2 * t + e;
      const float st = token < p.m ? __ldg(p.sx + token) : 0.f;
#pragma unroll
      for (int h = 0; h < 2; ++h)
        out[token * LD + row + 8 * h] = __float2bfloat16(acc[4 * j + 2 * h + e] * scale[h] * st);
    }
  __syncthreads();
  const bool vec = p.n % 8 == 0;
#pragma unroll
  for (int i = 0; i < BT * (kRows / 8) / kThreads; ++i) {
    const int idx = tid + kThreads * i, r = idx >> 4, c = idx & 15;
    const int n = n0 + 8 * c;
    if (r >= p.m || n >= p.n) continue;
    const __nv_bfloat16* src = out + r * LD + 8 * c;
    __nv_bfloat16* dst = p.y + static_cast<int64_t>(r) * p.n + n;
    if (vec) {
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
    } else {
      for (int e = 0; e < 8 && n + e < p.n; ++e) dst[e] = src[e];
    }
  }
#else
  __trap();  // launched only where the sm_90a code is loaded (fp8_gemm_ready)
#endif
}

bool fp8_gemm_ready() {
  static std::atomic<uint64_t> checked{0}, ready{0};
  return wgmma_binary_ready(fp8_gemm_kernel<64, 4>, checked, ready);
}

// How a product runs: token tile, ring depth and splits of K (a power of two <= 8: the cluster).
struct Plan {
  int bt, stages, splits, steps_per_split;
};

// Many channel tiles (>= one per SM: gate/up projections) fill the GPU as they are, two blocks
// per SM sharing its bandwidth (4 stages). Fewer (qkv, o, down of an 8B model: 32-48 tiles)
// would leave SMs idle: one block per SM with the deepest ring that fits, K split in two where
// the doubled grid still fits one wave. Measured on the H100 (bench_fp8_decode_gemm.py --splits,
// 1-64 tokens): two splits beat one by up to 1.4x on the 8B model's o and down; clusters of 4 and
// 8 were slower than 2 at every shape (o, 1 token: 10.2 us with 2, 14.5 with 4, 17.2 with 8); the
// 1B model's gate/up (128 tiles) took 14.9 us unsplit, 18.7 split in two waves.
// TRTC_FP8_GEMM_SPLITS: a fixed split count (benchmarks; rounded down to a power of two <= 8).
Plan plan_for(int64_t m, int tiles, int steps) {
  Plan pl{m <= 64 ? 64 : m <= 128 ? 128 : 256, 0, 1, steps};
  const int sms = sm_count();
  const bool wide = pl.bt == 64 && tiles >= sms;
  pl.stages = wide ? 4 : pl.bt == 64 ? 8 : pl.bt == 128 ? 6 : 4;
  int want = 2 * tiles > sms || steps < 8 ? 1 : 2;  // wide grids (tiles >= sms) included
  if (const char* forced = getenv("TRTC_FP8_GEMM_SPLITS"))
    if (atoi(forced) > 0) want = atoi(forced);
  while (pl.splits * 2 <= std::min(want, kMaxClusterCtas)) pl.splits *= 2;
  pl.steps_per_split = (steps + pl.splits - 1) / pl.splits;  // a last split may have none
  return pl;
}

template <int BT, int STAGES>
int launch_as(const Problem& p, const Plan& pl, int tiles, cudaStream_t stream) {
  constexpr size_t smem = smem_bytes<BT, STAGES>();
  static std::atomic<uint64_t> opted{0};
  const int e = woq::opt_in_shared_memory(fp8_gemm_kernel<BT, STAGES>, smem, opted);
  if (e) return e;
  LaunchOptions o;
  o.smem = smem;
  o.cluster = dim3(1, pl.splits);
  o.pdl = true;
  return launch_ex(fp8_gemm_kernel<BT, STAGES>, dim3(tiles, pl.splits), dim3(kThreads), stream, o,
                   p);
}

int launch(Problem p, cudaStream_t stream) {
  const int tiles = (p.n + kRows - 1) / kRows;
  const Plan pl = plan_for(p.m, tiles, p.steps);
  p.steps_per_split = pl.steps_per_split;
  if (pl.bt == 64) return pl.stages == 4 ? launch_as<64, 4>(p, pl, tiles, stream) : launch_as<64, 8>(p, pl, tiles, stream);
  if (pl.bt == 128) return launch_as<128, 6>(p, pl, tiles, stream);
  return launch_as<256, 4>(p, pl, tiles, stream);
}

}  // namespace
}  // namespace fp8
}  // namespace trtc

extern "C" int trtc_fp8_gemm_supported(void) { return trtc::fp8::fp8_gemm_ready(); }

extern "C" int trtc_fp8_gemm(const void* x, int64_t x_stride, const void* w, const float* w_scale,
                             const float* x_scale, void* y, int64_t m, int32_t n, int32_t k,
                             cudaStream_t stream) {
  using namespace trtc;
  if (m < 0 || m > 256 || n <= 0 || k <= 0 || k % 16 || x_stride < k || x_stride % 16 ||
      w_scale == nullptr || x_scale == nullptr || !aligned16(x) || !aligned16(w) || !aligned16(y) ||
      !aligned16(w_scale))
    return cudaErrorInvalidValue;
  if (m == 0) return cudaSuccess;
  if (!fp8::fp8_gemm_ready()) return cudaErrorNotSupported;
  fp8::Problem p{static_cast<const uint8_t*>(x), x_stride, static_cast<const uint8_t*>(w), w_scale, x_scale,
                 static_cast<__nv_bfloat16*>(y), static_cast<int>(m), n, k,
                 (k + fp8::kStepK - 1) / fp8::kStepK, 0};
  return fp8::launch(p, stream);
}
