// Weight-only GEMM for prefill on Hopper (sm_90a): warpgroup MMAs (wgmma) with the dequantized
// weights as the register operand A (64 output channels per warpgroup, along wgmma's M) and the
// activations as operand B, read by the tensor cores from 128-byte-swizzled shared memory
// (tokens along wgmma's N). The weight codes come repacked once per weight
// (trtcompile/ops/quant_kernels.py repack_for_wgmma): in each 16-row x 64-k block, the A
// fragments of one thread are one 16-byte chunk (int4) or two (int8), so they load with plain
// vector loads and dequantize straight into registers; W is never materialized anywhere.
// Codes, activations and group scales of each 64-wide k step stream in through a 4-stage
// cp.async pipeline.
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

// Shared memory of one block (BT tokens): kStages of (activations, codes, group words).
template <int BT, int BITS, bool kGroups>
struct WgTiles {
  alignas(1024) unsigned char x[kStages][BT * kStepK * 2];  // [token][k], 128B swizzle
  uint8_t codes[kStages][kRows / 16][kBlockBytes<BITS>];
  uint32_t words[kGroups ? kStages : 1][kRows][4][2];        // GroupWords per row and k16
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
template <typename T, int BT, int BITS, bool kGroups, bool kPairs>
__global__ void __launch_bounds__(kThreads, BT == 128 ? 2 : 1)
    wgmma_kernel(Problem p, int steps) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  using Tiles = WgTiles<BT, BITS, kGroups>;
  Tiles& sm = *reinterpret_cast<Tiles*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t{1023});
  constexpr int CB = kBlockBytes<BITS>;
  constexpr int kHalves = BT / 128;  // m64n128 MMAs per k16 and warpgroup
  constexpr int kDepth = kStages - 1;  // stages loading ahead of the one computed
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BT;
  const int n0 = blockIdx.y * kRows;
  const int row = 16 * warp + g;  // this thread's channels in the block: row, row + 8
  const T* x = static_cast<const T*>(p.x);
  const int groups = kGroups ? p.k / p.group_size : 1;
  const uint32_t flip = (BITS == 4 && p.zeros == nullptr) ? 0x00080008u : 0u;

  // This thread's copies, fixed but for k: x chunk c (of 8 in a 128-byte row) of tokens
  // x_row + 32i; code chunk `part` of row blocks code_rb + (kThreads / (CB / 16)) i.
  constexpr int kXCopies = BT * 8 / kThreads, kCodeCopies = kRows / 16 * CB / 16 / kThreads;
  const int x_row = tid >> 3, x_c = tid & 7;
  const int x_dst = x_row * 128 + ((x_c ^ (x_row & 7)) << 4);
  const T* x_src = x + (m0 + x_row) * p.x_stride + 8 * x_c;
  const int64_t tokens_left = p.m - m0 - x_row;  // copies i < tokens_left / 32 hold a token
  const int code_rb = tid / (CB / 16), code_part = tid % (CB / 16);
  const uint8_t* code_src = p.qweight + static_cast<int64_t>(n0 / 16 + code_rb) * steps * CB + 16 * code_part;

  auto issue = [&](int slot, int kt) {
    const int k0 = kt * kStepK;
    const bool k_ok = k0 + 8 * x_c < p.k;
#pragma unroll
    for (int i = 0; i < kXCopies; ++i) {
      const bool ok = k_ok && 32 * i < tokens_left;
      cp_async16(&sm.x[slot][x_dst + 32 * 128 * i], ok ? x_src + 32 * i * p.x_stride + k0 : x,
                 ok ? 16 : 0);
    }
#pragma unroll
    for (int i = 0; i < kCodeCopies; ++i)  // padded: always in range
      cp_async16(&sm.codes[slot][code_rb + kThreads / (CB / 16) * i][16 * code_part],
                 code_src + (static_cast<int64_t>(kThreads / (CB / 16) * i) * steps + kt) * CB, 16);
    if constexpr (kGroups) {
#pragma unroll
      for (int i = 0; i < kRows * 4 / kThreads; ++i) {
        const int idx = tid + kThreads * i, r = idx >> 2, s = idx & 3;
        const int k = k0 + 16 * s;
        const bool ok = n0 + r < p.n && k < p.k;
        const int64_t at = ok ? static_cast<int64_t>(n0 + r) * groups + k / p.group_size : 0;
        uint32_t* dst = sm.words[slot][r][s];
        if constexpr (kPairs) {
          cp_async4(dst, p.pairs + at, ok ? 4 : 0);
        } else {
          cp_async4(dst, p.scales + at, ok ? 4 : 0);
          cp_async4(dst + 1, ok && p.zeros ? p.zeros + at : p.scales, ok && p.zeros ? 4 : 0);
        }
      }
    }
  };

  float acc[kHalves][64];
#pragma unroll
  for (int h = 0; h < kHalves; ++h)
#pragma unroll
    for (int i = 0; i < 64; ++i) acc[h][i] = 0.f;

#pragma unroll
  for (int s = 0; s < kDepth; ++s) {
    if (s < steps) issue(s, s);
    cp_async_commit();  // one group per stage, empty or not, keeps the wait count uniform
  }
  const uint32_t x_base = static_cast<uint32_t>(__cvta_generic_to_shared(&sm.x[0][0]));
  for (int kt = 0; kt < steps; ++kt) {
    const int slot = kt % kStages;
    cp_async_wait<kDepth - 1>();
    fence_async_shared();  // this thread's copies, visible to the tensor cores' reads
    __syncthreads();
    if (kt + kDepth < steps) issue((kt + kDepth) % kStages, kt + kDepth);
    cp_async_commit();

    uint32_t codes[BITS == 8 ? 8 : 4];
    const unsigned char* own = &sm.codes[slot][warp][16 * lane];
    *reinterpret_cast<uint4*>(codes) = *reinterpret_cast<const uint4*>(own);
    if constexpr (BITS == 8) *reinterpret_cast<uint4*>(codes + 4) = *reinterpret_cast<const uint4*>(own + 512);
    uint32_t pair_lo[4] = {0, 0, 0, 0}, pair_hi[4] = {0, 0, 0, 0};
    if constexpr (kGroups) {
#pragma unroll
      for (int s = 0; s < 4; ++s) {
        const uint32_t* lo = sm.words[slot][row][s];
        const uint32_t* hi = sm.words[slot][row + 8][s];
        pair_lo[s] = kPairs ? lo[0] : make_pair<T>(__uint_as_float(lo[0]), __uint_as_float(lo[1]));
        pair_hi[s] = kPairs ? hi[0] : make_pair<T>(__uint_as_float(hi[0]), __uint_as_float(hi[1]));
      }
    }
    const uint32_t x_slot = x_base + slot * BT * kStepK * 2;
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      uint32_t a[4];
      a_fragment<T, BITS, kGroups>(codes, s, flip, pair_lo[s], pair_hi[s], a);
      wgmma_fence();
#pragma unroll
      for (int h = 0; h < kHalves; ++h)
        wgmma_m64n128k16_rs<T>(acc[h], a, swizzled_desc(x_slot + h * 128 * 128 + 32 * s), 1);
    }
    wgmma_commit();
    wgmma_wait<0>();  // the slot is reloaded after the next barrier
  }
  cp_async_wait<0>();
  __syncthreads();

  // accumulator 4j + c of lane (g, t) in half h: channel row (+8 for c >= 2), token
  // 128h + 8j + 2t + (c & 1). Staged through shared memory as [token][channel] so that the
  // stores to y are 16-byte rows of channels.
  constexpr int LD = kRows + 8;
  T* out = reinterpret_cast<T*>(&sm.x[0][0]);
  float s_lo = 1.f, s_hi = 1.f;
  if constexpr (!kGroups) {
    s_lo = n0 + row < p.n ? __ldg(p.scales + n0 + row) : 0.f;
    s_hi = n0 + row + 8 < p.n ? __ldg(p.scales + n0 + row + 8) : 0.f;
  }
#pragma unroll
  for (int h = 0; h < kHalves; ++h)
#pragma unroll
    for (int j = 0; j < 16; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int token = 128 * h + 8 * j + 2 * t + (c & 1);
        out[token * LD + row + 8 * (c >> 1)] = from_float<T>(acc[h][4 * j + c] * (c >> 1 ? s_hi : s_lo));
      }
  __syncthreads();
  T* y = static_cast<T*>(p.y);
  const bool vec = p.n % 8 == 0;
#pragma unroll
  for (int i = 0; i < BT * (kRows / 8) / kThreads; ++i) {
    const int idx = tid + kThreads * i, r = idx >> 4, c = idx & 15;
    const int64_t token = m0 + r;
    const int n = n0 + 8 * c;
    if (token >= p.m || n >= p.n) continue;
    const T* src = out + r * LD + 8 * c;
    T* dst = y + token * p.n + n;
    if (vec) {
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
    } else {
      for (int e = 0; e < 8 && n + e < p.n; ++e) dst[e] = src[e];
    }
  }
#else
  __trap();  // launched only where binaryVersion is 90 (see wgmma_ready)
#endif
}

// Whether the library holds sm_90a code of the kernels for the current device.
bool wgmma_ready() {
  static std::atomic<uint64_t> checked{0}, ready{0};
  return wgmma_binary_ready(wgmma_kernel<__nv_bfloat16, 128, 8, false, false>, checked, ready);
}

template <typename T, int BT, int BITS, bool kGroups, bool kPairs>
int launch_wgmma_as(const Problem& p, cudaStream_t stream) {
  constexpr size_t smem = sizeof(WgTiles<BT, BITS, kGroups>) + 1024;  // + alignment slack
  static std::atomic<uint64_t> opted{0};
  const int e = opt_in_shared_memory(wgmma_kernel<T, BT, BITS, kGroups, kPairs>, smem, opted);
  if (e) return e;
  const dim3 grid(static_cast<unsigned>((p.m + BT - 1) / BT), (p.n + kRows - 1) / kRows);
  const int steps = (p.k + kStepK - 1) / kStepK;
  wgmma_kernel<T, BT, BITS, kGroups, kPairs><<<grid, kThreads, smem, stream>>>(p, steps);
  return static_cast<int>(cudaGetLastError());
}

template <typename T, int BT, int BITS>
int launch_wgmma_bits(const Problem& p, cudaStream_t stream) {
  if (p.group_size == 0) return launch_wgmma_as<T, BT, BITS, false, false>(p, stream);
  return p.pairs ? launch_wgmma_as<T, BT, BITS, true, true>(p, stream)
                 : launch_wgmma_as<T, BT, BITS, true, false>(p, stream);
}

template <typename T, int BT>
int launch_wgmma_tokens(const Problem& p, cudaStream_t stream) {
  return p.bits == 8 ? launch_wgmma_bits<T, BT, 8>(p, stream) : launch_wgmma_bits<T, BT, 4>(p, stream);
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
                                            trtc_dtype dtype, cudaStream_t stream) {
  using namespace trtc;
  const bool shape_ok = m >= 0 && n > 0 && k > 0 && k % 8 == 0 && x_stride >= k &&
                        x_stride % 8 == 0 && (bits == 8 || bits == 4) && group_size >= 0 &&
                        (group_size == 0 || (group_size % 16 == 0 && k % group_size == 0)) &&
                        (zeros == nullptr || group_size > 0) && scales != nullptr &&
                        (tile_tokens == 0 || tile_tokens == 128 || tile_tokens == 256);
  if (!shape_ok || !aligned16(x) || !aligned16(packed) || !aligned16(y)) return cudaErrorInvalidValue;
  if (m == 0) return cudaSuccess;
  woq::Problem p{x, x_stride, static_cast<const uint8_t*>(packed), scales, zeros,
                 static_cast<const uint32_t*>(group_pairs), y, m, n, k, bits, group_size};
  // Measured on the H100 (bench_quant.py --tile-tokens 128,256): 256 tokens for group scales,
  // 128 (two blocks per SM) for per-channel scales.
  const int bt = tile_tokens ? tile_tokens : group_size > 0 ? 256 : 128;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    return bt == 128 ? woq::launch_wgmma_tokens<T, 128>(p, stream)
                     : woq::launch_wgmma_tokens<T, 256>(p, stream);
  };
  if (dtype == TRTC_F16) return run(__half{});
  if (dtype == TRTC_BF16) return run(__nv_bfloat16{});
  return cudaErrorNotSupported;
}
