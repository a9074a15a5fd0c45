// Shared pieces of the weight-only GEMM kernels: the problem description, int8/int4 -> fp16/bf16
// dequantization in registers, the m16n8k16 tensor-core MMA, and group scale lookup.
#pragma once

#include <cstdlib>

#include "../common/trtc_cuda.cuh"

namespace trtc {
namespace woq {

// One call: y[M, N] = x[M, K] @ dequant(qweight)^T, qweight [N, K] int8 or [N, K/2] uint8.
struct Problem {
  const void* x;
  int64_t x_stride;      // elements between rows of x
  const uint8_t* qweight;
  const float* scales;   // [N] (group_size 0) or [N, K/group_size]
  const float* zeros;    // [N, K/group_size] or NULL
  const uint32_t* pairs; // packed (scale, -zero*scale) in the activation type, [N, K/g], or NULL
  void* y;               // [M, N] contiguous
  int64_t m;
  int n, k, bits, group_size;
};

template <typename T> struct Types;
template <> struct Types<__half> {
  using T2 = __half2;
  static constexpr uint32_t kMagic = 0x6400;  // 1024.0: 10 mantissa bits hold a byte
  static constexpr uint32_t kOne = 0x3C00;    // 1.0
};
template <> struct Types<__nv_bfloat16> {
  using T2 = __nv_bfloat162;
  static constexpr uint32_t kMagic = 0x4300;  // 128.0: 7 mantissa bits hold a nibble
  static constexpr uint32_t kOne = 0x3F80;    // 1.0
};

template <typename T2> __device__ __forceinline__ uint32_t as_u32(T2 v) {
  return *reinterpret_cast<uint32_t*>(&v);
}
template <typename T2> __device__ __forceinline__ T2 as_t2(uint32_t v) {
  return *reinterpret_cast<T2*>(&v);
}

// Pair (scale, -zero * scale) of one group, rounded to the activation type.
template <typename T>
__device__ __forceinline__ uint32_t make_pair(float s, float z) {
  using T2 = typename Types<T>::T2;
  T2 p;
  p.x = from_float<T>(s);
  p.y = from_float<T>(-z * s);
  return as_u32(p);
}

// The words behind one group's pair, loadable ahead of use: the packed pair, or the bits of
// the float32 scale and zero.
struct GroupWords {
  uint32_t a, b;
};

__device__ __forceinline__ GroupWords load_group_words(const Problem& p, int64_t i) {
  if (p.pairs) return {__ldg(p.pairs + i), 0u};
  return {__float_as_uint(__ldg(p.scales + i)), p.zeros ? __float_as_uint(__ldg(p.zeros + i)) : 0u};
}

template <typename T>
__device__ __forceinline__ uint32_t to_pair(const Problem& p, GroupWords w) {
  return p.pairs ? w.a : make_pair<T>(__uint_as_float(w.a), __uint_as_float(w.b));
}

// The pair of row `row`, group `grp`.
template <typename T>
__device__ __forceinline__ uint32_t load_pair(const Problem& p, int row, int grp, int groups) {
  return to_pair<T>(p, load_group_words(p, static_cast<int64_t>(row) * groups + grp));
}

// A group's pair (scale, min) broadcast to both halves: w = q * s + m, one fused multiply-add
// per two integer codes q held exactly in T2.
struct Affine {
  uint32_t s2, m2;
  __device__ __forceinline__ explicit Affine(uint32_t pair) {
    s2 = __byte_perm(pair, pair, 0x1010);
    m2 = __byte_perm(pair, pair, 0x3232);
  }
  template <typename T>
  __device__ __forceinline__ uint32_t apply(uint32_t q) const {
    using T2 = typename Types<T>::T2;
    return as_u32(__hfma2(as_t2<T2>(q), as_t2<T2>(s2), as_t2<T2>(m2)));
  }
};

// 16 bytes of weights read once: bypass L1 so that it keeps the activations, which every
// warp of the SM re-reads, and have L2 fetch the whole 256-byte line: the warps of a block read
// neighbouring 64-byte pieces of each row at about the same time.
__device__ __forceinline__ uint4 load_stream(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// The four code pairs of one 32-bit word of int4 codes (nibble i = k 8w+i, low nibble first)
// as T2 integers, ordered (n0, n4), (n1, n5), (n2, n6), (n3, n7): one mask and one subtract per
// pair, no shuffles (the activations are permuted to match instead). flip = 0x00080008 for
// two's complement nibbles (offset to 0..15 for the magic trick), else 0.
template <typename T>
__device__ __forceinline__ void int4_word_to_pairs(uint32_t w, uint32_t flip, uint32_t (&out)[4]) {
  using T2 = typename Types<T>::T2;
  constexpr uint32_t magic = Types<T>::kMagic | (Types<T>::kMagic << 16);
  // the nibbles (bits 0-3 of each half) are disjoint from magic's bits and hold flip's bit,
  // so ((q ^ flip) | magic) == q ^ (flip | magic): one three-input logic op per pair
  const uint32_t bias_bits = magic | flip;
  const T2 bias = as_t2<T2>(bias_bits);  // magic (+ 8) as a T value
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint32_t v = ((w >> (4 * i)) & 0x000F000Fu) ^ bias_bits;
    out[i] = as_u32(__hsub2(as_t2<T2>(v), bias));
  }
}

// Bytes first, first+1 of a word of int8 codes (xor 0x80808080 applied: q + 128) as a T2 of
// the integers q.
template <typename T>
__device__ __forceinline__ uint32_t int8_pair(uint32_t w_flipped, int first);

// fp16: 1024 + (q + 128) fits the 10-bit mantissa exactly.
template <>
__device__ __forceinline__ uint32_t int8_pair<__half>(uint32_t w_flipped, int first) {
  const uint32_t sel = first == 0 ? 0x4140u : 0x4342u;  // bytes first, first+1 under 0x64
  const uint32_t v = __byte_perm(w_flipped, 0x64646464u, sel);
  return as_u32(__hsub2(as_t2<__half2>(v), as_t2<__half2>(0x64806480u)));
}

// bf16: 7 mantissa bits cannot hold a byte; go through float32 (2^23 + byte) instead.
template <>
__device__ __forceinline__ uint32_t int8_pair<__nv_bfloat16>(uint32_t w_flipped, int first) {
  const uint32_t sel = 0x7650u + first;  // byte `first` under the exponent bits of 2^23
  const float lo = __uint_as_float(__byte_perm(w_flipped, 0x4B000000u, sel)) - 8388736.f;
  const float hi = __uint_as_float(__byte_perm(w_flipped, 0x4B000000u, sel + 1)) - 8388736.f;
  return as_u32(__floats2bfloat162_rn(lo, hi));
}

// D += A * B, m16n8k16, fp32 accumulators.
template <typename T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1);

template <>
__device__ __forceinline__ void mma16816<__half>(float (&d)[4], const uint32_t (&a)[4],
                                                 uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4],
                                                        uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// One chunk of a 16-row weight tile on the MMAs: acc[j] += A B_j, where lane (g, t) holds 16
// code bytes of rows g (wa) and g + 8 (wb) for k [k0 + CH t, +CH) (CH = 16 int8 / 32 int4 k), and
// xv[j] the activations of token 8j + g at the same k. The k order inside a chunk is free as long
// as A and B agree (see weight_only_gemv.cu). pa, pb: the rows' group pairs (GROUPS); flip: as
// int4_word_to_pairs takes it.
template <typename T, int BITS, bool GROUPS, int NT>
__device__ __forceinline__ void chunk_mma(float (&acc)[NT][4], const uint4& wa, const uint4& wb,
                                          uint32_t pa, uint32_t pb, uint32_t flip,
                                          const uint4 (&xv)[NT][BITS == 8 ? 2 : 4]) {
  const uint32_t* w0 = reinterpret_cast<const uint32_t*>(&wa);
  const uint32_t* w1 = reinterpret_cast<const uint32_t*>(&wb);
  const Affine f0(pa), f1(pb);
#pragma unroll
  for (int wi = 0; wi < 4; ++wi) {
    if constexpr (BITS == 8) {
      // step wi: k 4wi..4wi+3 of the chunk; x words 2wi, 2wi+1 in natural order
      const uint32_t v0 = w0[wi] ^ 0x80808080u, v1 = w1[wi] ^ 0x80808080u;
      uint32_t a[4] = {int8_pair<T>(v0, 0), int8_pair<T>(v1, 0), int8_pair<T>(v0, 2),
                       int8_pair<T>(v1, 2)};
      if constexpr (GROUPS) {
        a[0] = f0.apply<T>(a[0]);
        a[1] = f1.apply<T>(a[1]);
        a[2] = f0.apply<T>(a[2]);
        a[3] = f1.apply<T>(a[3]);
      }
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const uint32_t* xw = reinterpret_cast<const uint32_t*>(&xv[j][0]);
        mma16816<T>(acc[j], a, xw[2 * wi], xw[2 * wi + 1]);
      }
    } else {
      // word wi: k 8wi..8wi+7 as pairs (0,4) (1,5) | (2,6) (3,7): two MMA steps
      uint32_t q0[4], q1[4];
      int4_word_to_pairs<T>(w0[wi], flip, q0);
      int4_word_to_pairs<T>(w1[wi], flip, q1);
      if constexpr (GROUPS) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          q0[i] = f0.apply<T>(q0[i]);
          q1[i] = f1.apply<T>(q1[i]);
        }
      }
      const uint32_t a_lo[4] = {q0[0], q1[0], q0[1], q1[1]};
      const uint32_t a_hi[4] = {q0[2], q1[2], q0[3], q1[3]};
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const uint4 xq = xv[j][wi];  // x k 8wi..8wi+7, two per word
        mma16816<T>(acc[j], a_lo, __byte_perm(xq.x, xq.z, 0x5410), __byte_perm(xq.x, xq.z, 0x7632));
        mma16816<T>(acc[j], a_hi, __byte_perm(xq.y, xq.w, 0x5410), __byte_perm(xq.y, xq.w, 0x7632));
      }
    }
  }
}

// Launch options of the decode GEMVs (the three kernels of M <= 32): a programmatic dependent
// launch on sm_90+, so that a GEMV may start while the kernel before it runs (RMSNorm, SiluMul
// and the decode attention kernel let it: allow_next_kernel). Each loads its first weights, then
// waits (wait_for_prior_grid) before it reads x or writes y. TRTC_WOQ_PDL=0: plain launches
// (tuning override, for benchmarks). The GEMVs themselves do not call allow_next_kernel.
inline LaunchOptions gemv_launch_options(size_t smem = 0) {
  const char* v = getenv("TRTC_WOQ_PDL");  // read at each launch (graphs capture it once)
  const bool off = v != nullptr && atoi(v) == 0;
  LaunchOptions o;
  o.smem = smem;
  o.pdl = !off && device_capability() >= 90;
  return o;
}

// Launchers of the two paths (weight_only_gemv.cu: M <= 32; weight_only_gemm.cu: any M), and
// the GEMV fed by tensor copies that weight_only_gemv.cu picks on Hopper where it fits
// (weight_only_gemv_bulk.cu).
bool gemv_supported(const Problem& p);
bool bulk_gemv_fits(const Problem& p);
bool bulk_gemv_shape_fits(int64_t m, int n, int k, int bits, int group_size, bool pairs);
template <typename T> int launch_bulk(const Problem& p, cudaStream_t stream);
template <typename T> int launch_gemv(const Problem& p, cudaStream_t stream);
template <typename T> int launch_tiled(const Problem& p, cudaStream_t stream);

}  // namespace woq
}  // namespace trtc
