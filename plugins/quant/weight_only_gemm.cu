// Weight-only GEMM for any M (prefill): a tiled tensor-core GEMM. x tiles and the raw weight
// codes of each 32-wide k step stream into shared memory through a 4-stage cp.async pipeline;
// each step's codes are dequantized to fp16/bf16 into one shared tile that the MMAs read, so W
// is never materialized in global memory.
// Also the C launcher of both paths (the GEMV for M <= 32 is in weight_only_gemv.cu).
#include "async_copy.cuh"
#include "weight_only.cuh"

namespace trtc {
namespace woq {
namespace {

constexpr int BM = 128;       // tokens per block
constexpr int BN = 128;       // output channels per block
constexpr int BK = 32;        // k per step
constexpr int LDS = BK + 8;   // smem row stride (80 bytes: ldmatrix rows hit distinct banks)
constexpr int kThreads = 256; // 8 warps: 2 along tokens x 4 along channels, 64 x 32 each
constexpr int kStages = 4;    // cp.async stages in flight

// 16 consecutive k of one weight row, dequantized in natural k order into 8 T2 words.
template <typename T, int BITS, bool kGroups>
__device__ __forceinline__ void dequant16(const uint4& raw, uint32_t pair, uint32_t flip,
                                          uint32_t (&out)[8]) {
  if constexpr (BITS == 8) {
    const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[2 * i] = int8_pair<T>(w[i] ^ 0x80808080u, 0);
      out[2 * i + 1] = int8_pair<T>(w[i] ^ 0x80808080u, 2);
    }
  } else {
    const uint32_t w[2] = {raw.x, raw.y};
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      uint32_t q[4];  // (n0, n4) (n1, n5) (n2, n6) (n3, n7)
      int4_word_to_pairs<T>(w[i], flip, q);
      out[4 * i] = __byte_perm(q[0], q[1], 0x5410);
      out[4 * i + 1] = __byte_perm(q[2], q[3], 0x5410);
      out[4 * i + 2] = __byte_perm(q[0], q[1], 0x7632);
      out[4 * i + 3] = __byte_perm(q[2], q[3], 0x7632);
    }
  }
  if constexpr (kGroups) {
    const Affine f(pair);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = f.apply<T>(out[i]);
  }
}

// Shared memory of one block: kStages of (x tile, raw weight codes, pair words) in flight
// through cp.async, and the dequantized weight tile the MMAs read.
template <typename T>
struct Tiles {
  T x[kStages][BM][LDS];
  uint8_t codes[kStages][BN][BK];    // int8: 32 bytes per row; int4: the first 16
  uint32_t pairs[kStages][BN][2];    // (scale, min) of k 0..15 and 16..31 of the step
  T w[BN][LDS];
};

//   step kt: wait for stage kt -> sync -> dequantize its codes into w -> start loading stage
//   kt + kStages - 1 (into the slot stage kt - 1 used) -> sync -> MMAs on x[kt % kStages], w
template <typename T, int BITS, bool kGroups>
__global__ void __launch_bounds__(kThreads) tiled_kernel(Problem p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  Tiles<T>& sm = *reinterpret_cast<Tiles<T>*>(smem_raw);
  constexpr int RB = BK * BITS / 8;         // code bytes per row per step
  constexpr int KP16 = 16 * 8 / BITS;       // k per 16 code bytes
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM;
  const int n0 = blockIdx.y * BN;
  const T* x = static_cast<const T*>(p.x);
  const int64_t row_bytes = BITS == 8 ? p.k : p.k / 2;
  const int groups = kGroups ? p.k / p.group_size : 1;
  const uint32_t flip = (BITS == 4 && p.zeros == nullptr) ? 0x00080008u : 0u;
  const int w_row = tid >> 1, w_half = tid & 1;  // this thread dequantizes k 16*w_half.. of w_row
  const bool w_ok = n0 + w_row < p.n;
  const bool aligned_rows = row_bytes % 16 == 0;

  auto issue = [&](int slot, int kt) {
    const int kb = kt * BK;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int idx = tid + kThreads * i;
      const int64_t row = m0 + (idx >> 2);
      const int k = kb + (idx & 3) * 8;
      const bool ok = row < p.m && k < p.k;
      cp_async16(&sm.x[slot][idx >> 2][(idx & 3) * 8], ok ? x + row * p.x_stride + k : x, ok ? 16 : 0);
    }
    if (tid < BN * RB / 16) {
      const int row = tid / (RB / 16), part = tid % (RB / 16);
      const int k = kb + part * KP16;
      const int bytes = n0 + row < p.n ? max(0, min(16, (p.k - k) * BITS / 8)) : 0;
      const uint8_t* src = bytes ? p.qweight + (n0 + row) * row_bytes + k * BITS / 8 : p.qweight;
      uint8_t* dst = &sm.codes[slot][row][part * 16];
      if (aligned_rows) {
        cp_async16(dst, src, bytes);
      } else {  // rows 4-byte aligned only (K % 16 != 0 int8, K % 32 != 0 int4)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int b = max(0, min(4, bytes - 4 * i));
          cp_async4(dst + 4 * i, b ? src + 4 * i : p.qweight, b);
        }
      }
    }
    if (kGroups && p.pairs) {
      const int k = kb + 16 * w_half;
      const bool ok = w_ok && k < p.k;
      const uint32_t* src = ok ? p.pairs + static_cast<int64_t>(n0 + w_row) * groups + k / p.group_size : p.pairs;
      cp_async4(&sm.pairs[slot][w_row][w_half], src, ok ? 4 : 0);
    }
  };

  auto dequant = [&](int slot, int kt) {
    uint4 raw;
    if constexpr (BITS == 8) {
      raw = *reinterpret_cast<const uint4*>(&sm.codes[slot][w_row][16 * w_half]);
    } else {
      const uint2 h = *reinterpret_cast<const uint2*>(&sm.codes[slot][w_row][8 * w_half]);
      raw = make_uint4(h.x, h.y, 0u, 0u);
    }
    uint32_t pair = 0;
    if constexpr (kGroups) {
      const int k = kt * BK + 16 * w_half;
      if (p.pairs) pair = sm.pairs[slot][w_row][w_half];
      else if (w_ok && k < p.k) pair = load_pair<T>(p, n0 + w_row, k / p.group_size, groups);
    }
    uint32_t w[8];
    dequant16<T, BITS, kGroups>(raw, pair, flip, w);
    uint4* dst = reinterpret_cast<uint4*>(&sm.w[w_row][16 * w_half]);
    dst[0] = make_uint4(w[0], w[1], w[2], w[3]);
    dst[1] = make_uint4(w[4], w[5], w[6], w[7]);
  };

  const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;
  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[i][j][c] = 0.f;

  const int steps = (p.k + BK - 1) / BK;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < steps) issue(s, s);
    cp_async_commit();  // one group per stage, empty or not, keeps the wait count uniform
  }
  for (int kt = 0; kt < steps; ++kt) {
    const int slot = kt % kStages;
    cp_async_wait<kStages - 2>();
    __syncthreads();
    dequant(slot, kt);
    if (kt + kStages - 1 < steps) issue((kt + kStages - 1) % kStages, kt + kStages - 1);
    cp_async_commit();
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      uint32_t a[4][4], b[4][2];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        ldmatrix_x4(a[i], &sm.x[slot][wm + 16 * i + (lane & 15)][kk + (lane >> 4) * 8]);
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        uint32_t r[4];
        ldmatrix_x4(r, &sm.w[wn + 16 * jj + (lane >> 4) * 8 + (lane & 7)][kk + ((lane >> 3) & 1) * 8]);
        b[2 * jj][0] = r[0];
        b[2 * jj][1] = r[1];
        b[2 * jj + 1][0] = r[2];
        b[2 * jj + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mma16816<T>(acc[i][j], a[i], b[j][0], b[j][1]);
    }
  }

  // accumulator c of lane (g, t) in tile (i, j): token 16i + g (+8 for c >= 2), channel 8j + 2t + (c & 1)
  T* y = static_cast<T*>(p.y);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int n = n0 + wn + 8 * j + 2 * t;
    if (n >= p.n) continue;
    const bool two = n + 1 < p.n;
    const float s0 = kGroups ? 1.f : __ldg(p.scales + n);
    const float s1 = kGroups || !two ? 1.f : __ldg(p.scales + n + 1);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t token = m0 + wm + 16 * i + g + 8 * h;
        if (token >= p.m) continue;
        T* dst = y + token * p.n + n;
        const T v0 = from_float<T>(acc[i][j][2 * h] * s0), v1 = from_float<T>(acc[i][j][2 * h + 1] * s1);
        if (two && (p.n & 1) == 0) {
          typename Types<T>::T2 v;
          v.x = v0;
          v.y = v1;
          *reinterpret_cast<typename Types<T>::T2*>(dst) = v;
        } else {
          dst[0] = v0;
          if (two) dst[1] = v1;
        }
      }
  }
}

template <typename T, int BITS, bool kGroups>
int launch_tiled_as(const Problem& p, cudaStream_t stream) {
  static std::atomic<uint64_t> opted{0};  // more than the 48 KB default, once per device
  const int e = opt_in_shared_memory(tiled_kernel<T, BITS, kGroups>, sizeof(Tiles<T>), opted);
  if (e) return e;
  const dim3 grid(static_cast<unsigned>((p.m + BM - 1) / BM), (p.n + BN - 1) / BN);
  tiled_kernel<T, BITS, kGroups><<<grid, kThreads, sizeof(Tiles<T>), stream>>>(p);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

template <typename T>
int launch_tiled(const Problem& p, cudaStream_t stream) {
  const bool groups = p.group_size > 0;
  if (p.bits == 8) return groups ? launch_tiled_as<T, 8, true>(p, stream) : launch_tiled_as<T, 8, false>(p, stream);
  return groups ? launch_tiled_as<T, 4, true>(p, stream) : launch_tiled_as<T, 4, false>(p, stream);
}

}  // namespace woq
}  // namespace trtc

extern "C" int trtc_weight_only_gemm(const void* x, int64_t x_stride, const void* qweight,
                                     const float* scales, const float* zeros,
                                     const void* group_pairs, void* y, int64_t m, int32_t n,
                                     int32_t k, int32_t bits, int32_t group_size,
                                     trtc_dtype dtype, cudaStream_t stream) {
  using namespace trtc;
  const bool shape_ok = m >= 0 && n > 0 && k > 0 && k % 8 == 0 && x_stride >= k &&
                        x_stride % 8 == 0 && (bits == 8 || bits == 4) && group_size >= 0 &&
                        (group_size == 0 || (group_size % 16 == 0 && k % group_size == 0)) &&
                        (zeros == nullptr || group_size > 0) && scales != nullptr;
  if (!shape_ok || !aligned16(x) || !aligned16(qweight) || !aligned16(y)) return cudaErrorInvalidValue;
  if (m == 0) return cudaSuccess;
  woq::Problem p{x, x_stride, static_cast<const uint8_t*>(qweight), scales, zeros,
                 static_cast<const uint32_t*>(group_pairs), y, m, n, k, bits, group_size};
  auto run = [&](auto tag) {
    using T = decltype(tag);
    return woq::gemv_supported(p) ? woq::launch_gemv<T>(p, stream) : woq::launch_tiled<T>(p, stream);
  };
  if (dtype == TRTC_F16) return run(__half{});
  if (dtype == TRTC_BF16) return run(__nv_bfloat16{});
  return cudaErrorNotSupported;
}
