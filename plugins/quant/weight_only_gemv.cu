// Weight-only GEMM for few rows (decode, M <= 32): a bandwidth-bound skinny kernel on tensor cores.
//
// Operands are swapped, y^T [N, M] = W [N, K] @ x^T [K, M], so the weight (row-major, K
// contiguous) is the MMA's A operand and is read with 16-byte loads straight into registers,
// dequantized there, and used once for all M tokens (B = x, up to 4 n8 tiles). The order of k
// inside a chunk is free as long as A and B agree, so each thread takes 16 contiguous weight
// bytes (16 int8 / 32 int4 k) and the x values it multiplies are permuted to match:
//
//   thread lane = 4g + t, warp chunk = 4 * CH consecutive k starting at k0
//   A rows g and g+8 of a 16-row tile: bytes [k0 + CH*t, +16) of each row
//   B column g (token g of the n8 tile): x[token][k0 + CH*t, +CH)
//
// Warps of a block split K; partial sums meet in shared memory at the end.
#include <algorithm>
#include <type_traits>

#include "weight_only.cuh"

namespace trtc {
namespace woq {
namespace {

// How a row's weights are scaled: one float per row applied to the sums, or per group
// (scale, min) pairs in the dequantization, packed in the activation type or made from the
// float32 scales (and zeros) as they are read.
enum Scales { kRowScales, kGroupPairs, kGroupFloats };

// One chunk of one warp as this thread holds it: 16 weight bytes of rows g and g+8 of each
// 16-row tile, and the words of their groups' (scale, min) pairs.
template <int TM>
struct Chunk {
  uint4 w[TM][2];
  GroupWords gw[TM][2];
};

// W: warps per block (they split K); TM: 16-row weight tiles per warp; NT: n8 token tiles
// (M <= 8 * NT); D: chunks in flight per warp; SC: a Scales mode; MB: blocks per SM the
// registers must allow; XA: x loaded a chunk ahead (two buffers) or as each chunk starts (one,
// fewer registers; x is re-read from L1).
template <typename T, int BITS, int SC, int W, int TM, int NT, int D, int MB, bool XA>
__global__ void __launch_bounds__(W * 32, MB) gemv_kernel(Problem p) {
  constexpr bool kGroups = SC != kRowScales;
  constexpr int kWarps = W;
  constexpr int CH = BITS == 8 ? 16 : 32;  // k per thread per chunk
  constexpr int KW = 4 * CH;                // k per warp per chunk
  constexpr int XV = CH / 8;                // 16-byte x vectors per thread per token
  __shared__ float red[kWarps][TM * NT * 4][32];

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int row0 = blockIdx.x * 16 * TM;
  const int64_t row_bytes = BITS == 8 ? p.k : p.k / 2;
  const int nchunks = (p.k + KW - 1) / KW;
  const int groups = kGroups ? p.k / p.group_size : 1;
  // k -> group: a shift for the usual power-of-two group sizes, not a division per chunk
  const bool group_pow2 = kGroups && (p.group_size & (p.group_size - 1)) == 0;
  const int group_shift = kGroups ? __ffs(p.group_size) - 1 : 0;
  auto group_of = [&](int k) { return group_pow2 ? k >> group_shift : k / p.group_size; };
  const uint32_t flip = (BITS == 4 && p.zeros == nullptr) ? 0x00080008u : 0u;
  const T* x = static_cast<const T*>(p.x);

  // Loads need no bounds checks: rows past N read row N-1 and tokens past M token M-1 (their
  // sums are never stored), chunks past the end and the lanes past K of a last partial chunk
  // read the last CH codes of the row, which meet x = 0 or are never used.
  const uint8_t* wrow[TM][2];
  int64_t grow[TM][2];  // index of the row's first group
#pragma unroll
  for (int r = 0; r < TM; ++r)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = min(row0 + 16 * r + g + 8 * h, p.n - 1);
      wrow[r][h] = p.qweight + row * row_bytes;
      grow[r][h] = static_cast<int64_t>(row) * groups;
    }
  const uint4* xrow[NT];
#pragma unroll
  for (int j = 0; j < NT; ++j)
    xrow[j] = reinterpret_cast<const uint4*>(
        x + min(static_cast<int64_t>(8 * j + g), p.m - 1) * p.x_stride + t * CH);

  auto issue = [&](Chunk<TM>& ch, int c) {
    const int k0 = min(c * KW + t * CH, p.k - CH);
#pragma unroll
    for (int r = 0; r < TM; ++r)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        ch.w[r][h] = load_stream(wrow[r][h] + k0 * BITS / 8);
        const int64_t gi = grow[r][h] + group_of(k0);
        if constexpr (SC == kRowScales) ch.gw[r][h] = {0u, 0u};
        if constexpr (SC == kGroupPairs) ch.gw[r][h] = {__ldg(p.pairs + gi), 0u};
        if constexpr (SC == kGroupFloats)
          ch.gw[r][h] = {__float_as_uint(__ldg(p.scales + gi)),
                         p.zeros ? __float_as_uint(__ldg(p.zeros + gi)) : 0u};
      }
  };

  float acc[TM][NT][4];
#pragma unroll
  for (int r = 0; r < TM; ++r)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[r][j][i] = 0.f;

  // x of chunk c for this thread's tokens (zeros past K)
  auto load_x = [&](uint4 (&xv)[NT][XV], int c) {
    const int k = c * KW;
    const bool kin = k + t * CH < p.k;
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int v = 0; v < XV; ++v)
        xv[j][v] = kin ? __ldg(xrow[j] + k / 8 + v) : make_uint4(0, 0, 0, 0);
  };

  auto compute = [&](const Chunk<TM>& ch, const uint4 (&xv)[NT][XV]) {
    auto pair = [&](GroupWords w) {
      if constexpr (SC == kGroupFloats)
        return make_pair<T>(__uint_as_float(w.a), __uint_as_float(w.b));
      return w.a;
    };
#pragma unroll
    for (int r = 0; r < TM; ++r)
      chunk_mma<T, BITS, kGroups, NT>(acc[r], ch.w[r][0], ch.w[r][1], pair(ch.gw[r][0]),
                                      pair(ch.gw[r][1]), flip, xv);
  };

  // A ring of D chunks of weights per warp stays in flight (chunk c is computed while the next
  // D-1 load), and x either one chunk ahead in two alternating buffers (D is even) or loaded
  // as its chunk starts. Chunks past the end are not loaded (warp-uniform branches).
  static_assert(D % 2 == 0, "x buffers alternate with the parity of d");
  Chunk<TM> ring[D];
  uint4 xa[NT][XV], xb[NT][XV];
#pragma unroll
  for (int d = 0; d < D; ++d)
    if (warp + d * kWarps < nchunks) issue(ring[d], warp + d * kWarps);
  wait_for_prior_grid();  // x (and y) only once the kernel before has finished: gemv_launch_options
  if (XA) load_x(xa, warp);
  for (int c0 = warp; c0 < nchunks; c0 += D * kWarps) {  // warp-uniform: all lanes reach the MMAs
#pragma unroll
    for (int d = 0; d < D; ++d) {
      const int c = c0 + d * kWarps;
      if (c >= nchunks) break;
      if (!XA) {
        load_x(xa, c);
        compute(ring[d], xa);
      } else if (d & 1) {
        load_x(xa, c + kWarps);
        compute(ring[d], xb);
      } else {
        load_x(xb, c + kWarps);
        compute(ring[d], xa);
      }
      if (c + D * kWarps < nchunks) issue(ring[d], c + D * kWarps);
    }
  }

#pragma unroll
  for (int r = 0; r < TM; ++r)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int i = 0; i < 4; ++i) red[warp][(r * NT + j) * 4 + i][lane] = acc[r][j][i];
  __syncthreads();

  // accumulator i of lane (g, t): row g + 8 (i >= 2), token 2t + (i & 1) of its tiles
  T* y = static_cast<T*>(p.y);
  for (int o = threadIdx.x; o < TM * NT * 4 * 32; o += kWarps * 32) {
    const int idx = o >> 5, ln = o & 31;
    const int r = idx / (NT * 4), j = (idx >> 2) % NT, i = idx & 3;
    const int row = row0 + 16 * r + (ln >> 2) + (i >= 2 ? 8 : 0);
    const int token = 8 * j + 2 * (ln & 3) + (i & 1);
    if (row >= p.n || token >= p.m) continue;
    float sum = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) sum += red[w][idx][ln];
    if (!kGroups) sum *= __ldg(p.scales + row);
    y[token * static_cast<int64_t>(p.n) + row] = from_float<T>(sum);
  }
}

// One instantiation: its blocks per SM (registers, shared memory; asked once) and its launch.
// D: chunks in flight per warp, deeper with fewer registers per chunk.
template <typename T, int BITS, int SC, int W, int TM, int NT,
          int D = (W == 8 && TM == 1 && NT < 4) ? 4 : 2, int MB = 1, bool XA = true>
struct Variant {
  static int blocks_per_sm() {
    static const int n = [] {
      int b = 1;
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, gemv_kernel<T, BITS, SC, W, TM, NT, D, MB, XA>,
                                                    W * 32, 0);
      return b > 0 ? b : 1;
    }();
    return n;
  }
  static int launch(const Problem& p, cudaStream_t stream) {
    const dim3 grid((p.n + 16 * TM - 1) / (16 * TM));
    return launch_ex(gemv_kernel<T, BITS, SC, W, TM, NT, D, MB, XA>, grid, dim3(W * 32), stream,
                     gemv_launch_options(), p);
  }
};

// Many rows (a wide projection): blocks of 4 warps, which split K half as many ways as 8, so that
// more 16-row tiles stream at once in the same registers and each warp runs through more chunks
// per ramp-up (H100, N 14336: 1.15-1.3x over 8 warps); with 9-16 tokens two tiles per warp halve
// the re-reads of x. Their registers are capped (x read as each chunk starts, one buffer) so that
// 7 blocks of one tile or 4 of two fit per SM: N 14336 runs in one wave instead of two (H100,
// int4: 1.25x over the same kernel uncapped, 1-16 tokens). int8 at 1-8 tokens fits 7-8 blocks with
// x a chunk ahead, its faster form there. Few rows: blocks of 8 warps keep enough loads in flight,
// with one or two tiles per warp: two halve the re-reads of x, one makes blocks half as long, so a
// last partial wave of blocks costs less; the smaller (waves x tiles) wins, two tiles on a tie.
template <typename T, int BITS, int SC, int NT>
int launch_nt(const Problem& p, cudaStream_t stream) {
  constexpr int kWideTM = NT == 1 ? 1 : 2;
  const int sms = sm_count();
  const int64_t wide_blocks = (p.n + 16 * kWideTM - 1) / (16 * kWideTM);
  if (wide_blocks >= 3 * static_cast<int64_t>(sms)) {
    if constexpr (NT == 1 && BITS == 8)
      return Variant<T, BITS, SC, 4, 1, NT>::launch(p, stream);
    else
      return Variant<T, BITS, SC, 4, kWideTM, NT, 2, NT == 1 ? 7 : 4, false>::launch(p, stream);
  }
  using One = Variant<T, BITS, SC, 8, 1, NT>;
  using Two = Variant<T, BITS, SC, 8, 2, NT>;
  auto cost = [&](int tm, int per_sm) {
    const int64_t blocks = (p.n + 16 * tm - 1) / (16 * tm), slots = static_cast<int64_t>(per_sm) * sms;
    return ((blocks + slots - 1) / slots) * tm;
  };
  if (cost(2, Two::blocks_per_sm()) <= cost(1, One::blocks_per_sm())) return Two::launch(p, stream);
  return One::launch(p, stream);
}

template <typename T, int BITS, int SC>
int launch_tm(const Problem& p, cudaStream_t stream) {
  if (p.m <= 8) return launch_nt<T, BITS, SC, 1>(p, stream);
  if (p.m <= 16) return launch_nt<T, BITS, SC, 2>(p, stream);
  // registers: one tile per warp; int8 capped at 2 blocks per SM (no spills)
  return Variant<T, BITS, SC, 8, 1, 4, 2, BITS == 8 ? 2 : 1>::launch(p, stream);
}

}  // namespace

bool gemv_supported(const Problem& p) {
  const int ch = p.bits == 8 ? 16 : 32;
  return p.m <= 32 && p.k % ch == 0 && (p.group_size == 0 || p.group_size % ch == 0) &&
         p.x_stride % 8 == 0 && aligned16(p.x) && aligned16(p.qweight);
}

template <typename T>
int launch_gemv(const Problem& p, cudaStream_t stream) {
  if (bulk_gemv_fits(p)) {
    const int e = launch_bulk<T>(p, stream);  // not supported: the driver refused a tensor map
    if (e != cudaErrorNotSupported) return e;
  }
  const Scales sc = p.group_size == 0 ? kRowScales : p.pairs ? kGroupPairs : kGroupFloats;
  auto run = [&](auto bits) {
    constexpr int B = decltype(bits)::value;
    if (sc == kGroupPairs) return launch_tm<T, B, kGroupPairs>(p, stream);
    if (sc == kGroupFloats) return launch_tm<T, B, kGroupFloats>(p, stream);
    return launch_tm<T, B, kRowScales>(p, stream);
  };
  return p.bits == 8 ? run(std::integral_constant<int, 8>{}) : run(std::integral_constant<int, 4>{});
}

template int launch_gemv<__half>(const Problem&, cudaStream_t);
template int launch_gemv<__nv_bfloat16>(const Problem&, cudaStream_t);

}  // namespace woq
}  // namespace trtc
