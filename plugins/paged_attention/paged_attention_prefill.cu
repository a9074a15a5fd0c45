// PagedAttention prefill kernel: FlashAttention-2 style tiles on tensor cores (mma.sync
// m16n8k16, fp16/bf16 in, fp32 accumulate).
//
// CTA = (query head, tile of 128 query rows of one sequence); 8 warps, 16 rows each. q rows
// are copied raw and rotated in shared memory. Keys are read 64 at a time through the block
// table with cp.async into padded shared memory, two K/V stages deep:
//
//   wait tile j, barrier | S = Q K_j^T, online softmax, O += P V_j | barrier | issue tile j+2
//
// A warp skips key tiles that are masked for all its rows (the causal diagonal). Tiles are
// found through tile_cum (prefix sums of tiles per sequence, written by the kv_write planning
// block); grid.y is a shape-only bound, walked from the end so that the long last tiles of
// the sequences start first; surplus CTAs return at once.
//
// Quantized pool (fp8/int8, P): the K/V stages hold the raw bytes (cp.async as above); after
// its wait each thread widens the chunks it copied itself into one K and one V tile of T in
// shared memory (exact), before the barrier that already precedes the math. The k scale is
// folded into the softmax scale, the v scale into the output.
#include <cstdlib>

#include "paged_attention.cuh"

namespace trtc {
namespace pa {
namespace {

constexpr int kBM = kPrefillBlockM, kBN = 64, kPad = 8, kWarps = kBM / 16;
constexpr int kThreadsP = kWarps * 32;

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int bytes = valid ? 16 : 0;  // 0: zero-fill, nothing read
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}

template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same<T, __half>::value) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

template <typename T>
__device__ __forceinline__ float2 unpack2(uint32_t v) {
  if constexpr (std::is_same<T, __half>::value) {
    return __half22float2(*reinterpret_cast<const __half2*>(&v));
  } else {
    return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&v));
  }
}

template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same<T, __half>::value) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  } else {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
}

// Copies the K and V rows of keys [kt, kt + kBN) into one stage (NT threads; element (r, col)
// of the stage at off(r, col); zero rows past kend).
template <typename P, int D, int NT, typename Off>
__device__ __forceinline__ void load_kv_tile(P* ks, P* vs, const P* kpool, const P* vpool,
                                             const int32_t* bt, int kt, int kend, int log2b,
                                             int64_t slot_stride, int hkv, Off off) {
  constexpr int EPC = 16 / sizeof(P), CPR = D / EPC;  // elements per 16-byte chunk, chunks per row
  static_assert(NT % CPR == 0, "a thread keeps its column");
  const int col = (threadIdx.x % CPR) * EPC;
#pragma unroll
  for (int r = threadIdx.x / CPR; r < kBN; r += NT / CPR) {
    const int key = kt + r;
    const bool ok = key < kend;
    const int kk = ok ? key : 0;
    const int64_t o = ((static_cast<int64_t>(__ldg(bt + (kk >> log2b))) << log2b) |
                       (kk & ((1 << log2b) - 1))) * slot_stride + hkv * D + col;
    const int so = off(r, col);
    cp_async16(ks + so, kpool + o, ok);
    cp_async16(vs + so, vpool + o, ok);
  }
}

// Row-major stage of rows LD elements apart.
template <int LD>
struct RowMajor {
  __device__ __forceinline__ int operator()(int r, int col) const { return r * LD + col; }
};

// Swizzled tile of rows of D elements (no padding): 16-byte chunk c of row r is stored at chunk
// c ^ (r & 7), so 8 consecutive rows read at one logical chunk (ldmatrix) hit distinct banks.
template <int D>
struct Swizzled {
  __device__ __forceinline__ int operator()(int r, int col) const {
    return r * D + (((col >> 3) ^ (r & 7)) << 3) + (col & 7);
  }
};

// The tile this CTA owns (grid.y walked from the end, so that the long last tiles of the
// sequences start first): sequence s, first token q0 and rows of tiles of `bm` query rows.
// False for the surplus CTAs of the shape-only grid bound.
struct TileRef {
  int s, q0, rows;
};
__device__ __forceinline__ bool locate_tile(const Args& a, int bm, TileRef& t) {
  const int tile = gridDim.y - 1 - blockIdx.y;
  const int S = a.num_seqs;
  if (tile >= a.tile_cum[S]) return false;
  int lo = 0, hi = S;  // find s: tile_cum[s] <= tile < tile_cum[s + 1]
  while (hi - lo > 1) {
    const int mid = (lo + hi) >> 1;
    if (a.tile_cum[mid] <= tile) lo = mid; else hi = mid;
  }
  t.s = lo;
  t.q0 = a.qsl[lo] + (tile - a.tile_cum[lo]) * bm;
  t.rows = min(a.qsl[lo + 1] - t.q0, bm);
  return true;
}

// Smallest and largest position of the tile's rows (block-wide: every thread calls it).
__device__ __forceinline__ void tile_positions(const Args& a, const TileRef& t, int& minpos, int& maxpos) {
  __shared__ int s_minpos, s_maxpos;
  if (threadIdx.x == 0) {
    s_minpos = INT_MAX;
    s_maxpos = -1;
  }
  __syncthreads();
  if (static_cast<int>(threadIdx.x) < t.rows) {
    const int p = a.positions[t.q0 + threadIdx.x];
    atomicMin(&s_minpos, p);
    atomicMax(&s_maxpos, p);
  }
  __syncthreads();
  minpos = s_minpos;
  maxpos = s_maxpos;
}

// Positions of the two rows r0, r0 + 8 a thread holds in mma fragments (-1: padding row, fully
// masked), and the warp's largest and smallest position over its valid rows.
struct WarpRows {
  int pos0, pos1, wmax, wmin;
};
__device__ __forceinline__ WarpRows warp_rows(const Args& a, const TileRef& t, int r0) {
  const int r1 = r0 + 8;
  WarpRows w;
  w.pos0 = r0 < t.rows ? a.positions[t.q0 + r0] : -1;
  w.pos1 = r1 < t.rows ? a.positions[t.q0 + r1] : -1;
  w.wmax = max(w.pos0, w.pos1);
  w.wmin = min(r0 < t.rows ? w.pos0 : INT_MAX, r1 < t.rows ? w.pos1 : INT_MAX);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    w.wmax = max(w.wmax, __shfl_xor_sync(0xffffffffu, w.wmax, o));
    w.wmin = min(w.wmin, __shfl_xor_sync(0xffffffffu, w.wmin, o));
  }
  return w;
}

// Copies `bm` q rows of head h (zero rows past t.rows) into Qs at off(r, col) (NT threads).
template <typename T, int D, int NT, typename Off>
__device__ __forceinline__ void load_q_rows(T* Qs, const Args& a, const TileRef& t, int h, int bm, Off off) {
  const T* qsrc = static_cast<const T*>(a.q);
  for (int c = threadIdx.x; c < bm * (D / 8); c += NT) {
    const int r = c / (D / 8), col = (c - r * (D / 8)) * 8;
    const bool valid = r < t.rows;
    const T* src = valid ? qsrc + static_cast<int64_t>(t.q0 + r) * a.q_stride + h * D + col : qsrc;
    cp_async16(Qs + off(r, col), src, valid);
  }
}

// Rotate-half of the staged q rows in place, rounded to T as a separate pass would store it
// (factors from the per-token table kv_write filled).
template <typename T, int NT, typename Off>
__device__ __forceinline__ void rotate_q_rows(T* Qs, const Args& a, const TileRef& t, Off off) {
  const int half = a.rot / 2;
  for (int idx = threadIdx.x; idx < t.rows * half; idx += NT) {
    const int r = idx / half, j = idx - r * half;
    const float2 c = a.rot_cs[static_cast<int64_t>(t.q0 + r) * half + j];
    T* x1p = Qs + off(r, j);
    T* x2p = Qs + off(r, j + half);
    const float x1 = to_float(*x1p), x2 = to_float(*x2p);
    *x1p = from_float<T>(rotate_q_cs<T>(x1, x2, true, c.x, c.y));
    *x2p = from_float<T>(rotate_q_cs<T>(x2, x1, false, c.x, c.y));
  }
}

// Full rotary (rot == D) on q held as mma A fragments: the pair (j, j + D/2) sits in k-steps
// kk and kk + D/32 of the same register of the same lane. Rows past t.rows are left alone.
template <typename T, int D>
__device__ __forceinline__ void rotate_q_frags(uint32_t (&qa)[D / 16][4], const Args& a, const TileRef& t, int r0) {
  const int t4 = threadIdx.x & 3;
#pragma unroll
  for (int hi = 0; hi < 2; ++hi) {  // registers 0, 2: row r0; 1, 3: row r0 + 8
    const int r = r0 + 8 * hi;
    if (r >= t.rows) continue;
    const float2* cs = a.rot_cs + static_cast<int64_t>(t.q0 + r) * (D / 2);
#pragma unroll
    for (int kk = 0; kk < D / 32; ++kk) {
#pragma unroll
      for (int c8 = 0; c8 < 2; ++c8) {
        const int i = hi + 2 * c8, j = kk * 16 + c8 * 8 + 2 * t4;
        const float4 c = *reinterpret_cast<const float4*>(cs + j);  // (cos, sin) of j, j + 1
        const float2 x = unpack2<T>(qa[kk][i]), y = unpack2<T>(qa[kk + D / 32][i]);
        qa[kk][i] = pack2<T>(rotate_q_cs<T>(x.x, y.x, true, c.x, c.y), rotate_q_cs<T>(x.y, y.y, true, c.z, c.w));
        qa[kk + D / 32][i] = pack2<T>(rotate_q_cs<T>(y.x, x.x, false, c.x, c.y),
                                      rotate_q_cs<T>(y.y, x.y, false, c.z, c.w));
      }
    }
  }
}

// Writes a warp's 16 output rows (fragments o, row sums l0, l1 of the thread's rows r0, r0 + 8
// still per lane) scaled by vscale / l.
template <typename T, int D>
__device__ __forceinline__ void store_rows(const Args& a, const TileRef& t, int h, int r0,
                                           const float (&o)[D / 8][4], float l0, float l1, float vscale) {
  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const float inv0 = l0 > 0.f ? vscale / l0 : 0.f, inv1 = l1 > 0.f ? vscale / l1 : 0.f;
  const int r1 = r0 + 8, t4 = threadIdx.x & 3;
  T* out = static_cast<T*>(a.out);
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) {
    const int col = h * D + dt * 8 + 2 * t4;
    if (r0 < t.rows)
      *reinterpret_cast<uint32_t*>(out + static_cast<int64_t>(t.q0 + r0) * a.num_heads * D + col) =
          pack2<T>(o[dt][0] * inv0, o[dt][1] * inv0);
    if (r1 < t.rows)
      *reinterpret_cast<uint32_t*>(out + static_cast<int64_t>(t.q0 + r1) * a.num_heads * D + col) =
          pack2<T>(o[dt][2] * inv1, o[dt][3] * inv1);
  }
}

// Quantized pool: widens the chunks this thread copied (load_kv_tile<P, D, D>) into T rows.
template <typename T, typename P, int D>
__device__ __forceinline__ void widen_kv_tile(T* kt, T* vt, const P* ks, const P* vs) {
  constexpr int CPR = D / 16, LD = D + kPad;
  const int col = (threadIdx.x % CPR) * 16;
#pragma unroll
  for (int r = threadIdx.x / CPR; r < kBN; r += kThreadsP / CPR) {
#pragma unroll
    for (int m = 0; m < 2; ++m) {
      float f[16];
      PoolVec<P>::to_floats(*reinterpret_cast<const uint4*>((m ? vs : ks) + r * D + col), f);
      T* dst = (m ? vt : kt) + r * LD + col;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        Vec16<T> x;
        x.from_floats(*reinterpret_cast<const float(*)[8]>(f + 8 * h));
        x.store(dst + 8 * h);
      }
    }
  }
}

// MINB: CTAs per SM the registers are capped for. MINB == 1 keeps the q fragments in
// registers (about 220 of them); MINB == 2 (the default: 208 vs 251 us on 8 x 512, H100)
// caps at 128 and reloads q from shared memory.
template <typename T, typename P>
struct PrefillSmem {
  static constexpr bool kQuant = kQuantPool<P>;
  static constexpr int kTStages = kQuant ? 1 : 2;  // K/V tiles of T (the stages themselves if P == T)
  template <int D>
  static constexpr int bytes() {
    return (kBM + 2 * kTStages * kBN) * (D + kPad) * static_cast<int>(sizeof(T)) +
           (kQuant ? 2 * 2 * kBN * D * static_cast<int>(sizeof(P)) : 0);
  }
};

template <typename T, typename P, int D, int MINB>
__global__ void __launch_bounds__(kThreadsP, MINB) prefill_kernel(const Args a) {
  constexpr int LD = D + kPad;
  constexpr bool kQuant = PrefillSmem<T, P>::kQuant;
  constexpr int TST = PrefillSmem<T, P>::kTStages;
  constexpr int LDS = kQuant ? D : LD;     // row stride of a stage
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* Qs = reinterpret_cast<T*>(smem_raw);  // [kBM][LD]
  T* Ks = Qs + kBM * LD;                   // [TST][kBN][LD]
  T* Vs = Ks + TST * kBN * LD;             // [TST][kBN][LD]
  // the stages: [2][kBN][LDS] each of K and V (raw bytes of a quantized pool)
  P* Kst = kQuant ? reinterpret_cast<P*>(Vs + TST * kBN * LD) : reinterpret_cast<P*>(Ks);
  P* Vst = kQuant ? Kst + 2 * kBN * LDS : reinterpret_cast<P*>(Vs);
  const int h = blockIdx.x;
  TileRef tr;
  if (!locate_tile(a, kBM, tr)) return;
  const int s = tr.s;
  const int n = a.seq_lens[s];
  const int hkv = h / a.group;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int32_t* bt = a.block_tables + static_cast<int64_t>(s) * a.max_blocks;
  const int64_t slot_stride = static_cast<int64_t>(a.num_kv_heads) * D;
  const P* kpool = static_cast<const P*>(a.k_pool);
  const P* vpool = static_cast<const P*>(a.v_pool);
  const float scale_log2 = a.scale_log2 * pool_scale(a.kv_scales, 0);
  const float vscale = pool_scale(a.kv_scales, 1);

  // Raw q rows first: they do not depend on the key range.
  load_q_rows<T, D, kThreadsP>(Qs, a, tr, h, kBM, RowMajor<LD>{});
  cp_async_commit();
  int minpos, maxpos;
  tile_positions(a, tr, minpos, maxpos);
  const int W = a.sliding_window;
  const int kend = min(n, maxpos + 1);
  const int kstart = (W > 0 ? max(0, minpos - W + 1) : 0) & ~(kBN - 1);

#pragma unroll
  for (int st = 0; st < 2; ++st) {
    if (kstart + st * kBN < kend)
      load_kv_tile<P, D, kThreadsP>(Kst + st * kBN * LDS, Vst + st * kBN * LDS, kpool, vpool, bt,
                                    kstart + st * kBN, kend, a.log2_block, slot_stride, hkv,
                                    RowMajor<LDS>{});
    cp_async_commit();
  }

  const int t4 = lane & 3;
  const int r0 = warp * 16 + (lane >> 2);
  const WarpRows wr = warp_rows(a, tr, r0);
  const int pos0 = wr.pos0, pos1 = wr.pos1, wmax = wr.wmax, wmin = wr.wmin;

  cp_async_wait<2>();
  __syncthreads();
  if (a.rot > 0) {
    rotate_q_rows<T, kThreadsP>(Qs, a, tr, RowMajor<LD>{});
    __syncthreads();
  }
  constexpr bool kQReg = MINB == 1;
  const T* qfrag = Qs + (warp * 16 + (lane & 15)) * LD + (lane >> 4) * 8;
  uint32_t qa[kQReg ? D / 16 : 2][4];
  if constexpr (kQReg) {
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) ldmatrix_x4(qa[kk], qfrag + kk * 16);
  }

  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m0 = -1e30f, m1 = -1e30f, l0 = 0.f, l1 = 0.f;

  for (int kt = kstart, it = 0; kt < kend; kt += kBN, ++it) {
    cp_async_wait<1>();
    if constexpr (kQuant) widen_kv_tile<T, P, D>(Ks, Vs, Kst + (it & 1) * kBN * LDS, Vst + (it & 1) * kBN * LDS);
    __syncthreads();
    const T* Kt = Ks + (TST == 2 ? (it & 1) : 0) * kBN * LD;
    const T* Vt = Vs + (TST == 2 ? (it & 1) : 0) * kBN * LD;
    if (kt <= wmax && (W == 0 || kt + kBN > wmin - W + 1)) {
      float sc[kBN / 8][4];
#pragma unroll
      for (int nt = 0; nt < kBN / 8; ++nt) {
        sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk += 2) {
          uint32_t b[4];
          ldmatrix_x4(b, Kt + (nt * 8 + (lane & 7)) * LD + kk * 16 + (lane >> 3) * 8);
          if constexpr (kQReg) {
            mma16816<T>(sc[nt], qa[kk], b[0], b[1]);
            mma16816<T>(sc[nt], qa[kk + 1], b[2], b[3]);
          } else {
            ldmatrix_x4(qa[0], qfrag + kk * 16);
            ldmatrix_x4(qa[1], qfrag + kk * 16 + 16);
            mma16816<T>(sc[nt], qa[0], b[0], b[1]);
            mma16816<T>(sc[nt], qa[1], b[2], b[3]);
          }
        }
      }
      // Online softmax in log2 units; mask only tiles not fully visible to the warp's rows.
      const bool full = kt + kBN - 1 <= wmin && kt + kBN <= n && (W == 0 || kt > wmax - W);
      float mx0 = m0, mx1 = m1;
#pragma unroll
      for (int nt = 0; nt < kBN / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float v = sc[nt][e] * scale_log2;
          if (!full) {
            const int key = kt + nt * 8 + 2 * t4 + (e & 1);
            const int p = e < 2 ? pos0 : pos1;
            if (key > p || key >= n || (W > 0 && key <= p - W)) v = -INFINITY;
          }
          sc[nt][e] = v;
        }
        mx0 = fmaxf(mx0, fmaxf(sc[nt][0], sc[nt][1]));
        mx1 = fmaxf(mx1, fmaxf(sc[nt][2], sc[nt][3]));
      }
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
      const float c0 = exp2f(m0 - mx0), c1 = exp2f(m1 - mx1);
      m0 = mx0;
      m1 = mx1;
      l0 *= c0;
      l1 *= c1;
#pragma unroll
      for (int nt = 0; nt < kBN / 8; ++nt) {
        sc[nt][0] = exp2f(sc[nt][0] - mx0);
        sc[nt][1] = exp2f(sc[nt][1] - mx0);
        sc[nt][2] = exp2f(sc[nt][2] - mx1);
        sc[nt][3] = exp2f(sc[nt][3] - mx1);
        l0 += sc[nt][0] + sc[nt][1];
        l1 += sc[nt][2] + sc[nt][3];
      }
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        o[dt][0] *= c0;
        o[dt][1] *= c0;
        o[dt][2] *= c1;
        o[dt][3] *= c1;
      }
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) {
        const uint32_t pa[4] = {pack2<T>(sc[2 * kk][0], sc[2 * kk][1]), pack2<T>(sc[2 * kk][2], sc[2 * kk][3]),
                                pack2<T>(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                                pack2<T>(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
        for (int dt = 0; dt < D / 8; dt += 2) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, Vt + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + dt * 8 + (lane >> 4) * 8);
          mma16816<T>(o[dt], pa, b[0], b[1]);
          mma16816<T>(o[dt + 1], pa, b[2], b[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with this stage
    if (kt + 2 * kBN < kend)
      load_kv_tile<P, D, kThreadsP>(Kst + (it & 1) * kBN * LDS, Vst + (it & 1) * kBN * LDS, kpool,
                                    vpool, bt, kt + 2 * kBN, kend, a.log2_block, slot_stride, hkv,
                                    RowMajor<LDS>{});
    cp_async_commit();
  }
  cp_async_wait<0>();
  store_rows<T, D>(a, tr, h, r0, o, l0, l1, vscale);
}

template <typename T, typename P, int D, int MINB>
int prefill_d(const Args& a, int tile_bound, cudaStream_t stream) {
  constexpr int smem = PrefillSmem<T, P>::template bytes<D>();
  auto kernel = prefill_kernel<T, P, D, MINB>;
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return static_cast<int>(e);
  }
  kernel<<<dim3(a.num_heads, tile_bound), kThreadsP, smem, stream>>>(a);
  return static_cast<int>(cudaGetLastError());
}

template <typename T, typename P, int D>
int prefill_t(const Args& a, int tile_bound, cudaStream_t stream) {
  const char* minb = getenv("TRTC_PA_PREFILL_MINB");  // tuning override, for benchmarks
  if (minb != nullptr && atoi(minb) == 1) return prefill_d<T, P, D, 1>(a, tile_bound, stream);
  return prefill_d<T, P, D, 2>(a, tile_bound, stream);
}

// ---------------------------------------------------------------- fast kernel (16-bit pools)
//
// CTA = (query head, tile of kFaRows = 64 query rows); 4 warps of 16 rows. q is staged once
// through shared memory (rotated there), then held in registers as mma A fragments for the
// whole key loop. K/V tiles of 64 keys stream through a ring of STAGES swizzled stages
// (cp.async, one barrier per tile); the q staging area is the last K stage, first overwritten
// after the barrier of the first iteration, when every warp holds its fragments.
//
//   wait tile j, barrier | issue tile j + STAGES - 1 | S = Q K_j^T, online softmax, O += P V_j
//
// Scores stay raw; the softmax scale (log2 units) is folded into one fma per exponent.
constexpr int kFaRows = 64, kFaWarps = kFaRows / 16, kFaThreads = kFaWarps * 32;

__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

template <typename T, int D, int STAGES, int MINB>
__global__ void __launch_bounds__(kFaThreads, MINB) prefill_fa_kernel(const Args a) {
  static_assert(kFaRows * D <= kBN * D, "q staging fits one K stage");
  constexpr int TILE = kBN * D;
  const Swizzled<D> swz;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* Ks = reinterpret_cast<T*>(smem_raw);  // [STAGES][kBN][D] swizzled
  T* Vs = Ks + STAGES * TILE;              // [STAGES][kBN][D] swizzled
  T* Qs = Ks + (STAGES - 1) * TILE;        // [kFaRows][D] swizzled, until the first iteration

  const int h = blockIdx.x;
  TileRef tr;
  if (!locate_tile(a, kFaRows, tr)) return;
  const int n = a.seq_lens[tr.s];
  const int hkv = h / a.group;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int32_t* bt = a.block_tables + static_cast<int64_t>(tr.s) * a.max_blocks;
  const int64_t slot_stride = static_cast<int64_t>(a.num_kv_heads) * D;
  const T* kpool = static_cast<const T*>(a.k_pool);
  const T* vpool = static_cast<const T*>(a.v_pool);
  const float scale = a.scale_log2;  // > 0 (the launcher checks)

  load_q_rows<T, D, kFaThreads>(Qs, a, tr, h, kFaRows, swz);
  cp_async_commit();
  int minpos, maxpos;
  tile_positions(a, tr, minpos, maxpos);
  const int W = a.sliding_window;
  const int kend = min(n, maxpos + 1);
  const int kstart = (W > 0 ? max(0, minpos - W + 1) : 0) & ~(kBN - 1);
#pragma unroll
  for (int st = 0; st < STAGES - 1; ++st) {
    if (kstart + st * kBN < kend)
      load_kv_tile<T, D, kFaThreads>(Ks + st * TILE, Vs + st * TILE, kpool, vpool, bt,
                                     kstart + st * kBN, kend, a.log2_block, slot_stride, hkv, swz);
    cp_async_commit();
  }

  const int t4 = lane & 3;
  const int r0 = warp * 16 + (lane >> 2);
  const WarpRows wr = warp_rows(a, tr, r0);

  cp_async_wait<STAGES - 1>();  // q has landed
  __syncthreads();
  if (a.rot > 0 && a.rot < D) {  // partial rotary: in shared memory
    rotate_q_rows<T, kFaThreads>(Qs, a, tr, swz);
    __syncthreads();
  }
  uint32_t qa[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk)
    ldmatrix_x4(qa[kk], Qs + swz(warp * 16 + (lane & 15), kk * 16 + (lane >> 4) * 8));
  if (a.rot == D) rotate_q_frags<T, D>(qa, a, tr, r0);

  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m0 = -1e30f, m1 = -1e30f, l0 = 0.f, l1 = 0.f;  // m: running max, scaled log2 units

  // Lane parts of the ldmatrix addresses: K (non-transposed B) and V (transposed B). Moving
  // 16 rows keeps r & 7; moving 16 columns flips chunk bit 1: swz(r + 16i, c + 16j) ==
  // 16 i D + (swz(r, c) ^ 16 j) for c < 16, so each address is one xor and one add.
  const int koff = swz((lane & 7) + ((lane >> 4) << 3), ((lane >> 3) & 1) * 8);
  const int voff = swz((lane & 7) + (((lane >> 3) & 1) << 3), (lane >> 4) * 8);

  int stage = 0;
  for (int kt = kstart; kt < kend; kt += kBN) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();  // tile kt visible to all; every warp is done with the stage refilled next
    {
      const int nk = kt + (STAGES - 1) * kBN;
      const int ns = stage == 0 ? STAGES - 1 : stage - 1;
      if (nk < kend)
        load_kv_tile<T, D, kFaThreads>(Ks + ns * TILE, Vs + ns * TILE, kpool, vpool, bt, nk, kend,
                                       a.log2_block, slot_stride, hkv, swz);
      cp_async_commit();
    }
    const T* Kt = Ks + stage * TILE;
    const T* Vt = Vs + stage * TILE;
    stage = stage == STAGES - 1 ? 0 : stage + 1;
    if (kt > wr.wmax || (W > 0 && kt + kBN <= wr.wmin - W + 1)) continue;  // masked for the warp

    float sc[kBN / 8][4];
#pragma unroll
    for (int nt = 0; nt < kBN / 8; ++nt) sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int np = 0; np < kBN / 16; ++np) {
        uint32_t b[4];
        ldmatrix_x4(b, Kt + np * 16 * D + (koff ^ (kk * 16)));
        mma16816<T>(sc[2 * np], qa[kk], b[0], b[1]);
        mma16816<T>(sc[2 * np + 1], qa[kk], b[2], b[3]);
      }
    }
    // Mask only tiles not fully visible to the warp's rows (the causal diagonal, the window
    // edge, the end of the context).
    const bool full = kt + kBN - 1 <= wr.wmin && kt + kBN <= n && (W == 0 || kt > wr.wmax - W);
    if (!full) {
#pragma unroll
      for (int nt = 0; nt < kBN / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = kt + nt * 8 + 2 * t4 + (e & 1);
          const int p = e < 2 ? wr.pos0 : wr.pos1;
          if (key > p || key >= n || (W > 0 && key <= p - W)) sc[nt][e] = -INFINITY;
        }
      }
    }
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < kBN / 8; ++nt) {
      mx0 = fmaxf(mx0, fmaxf(sc[nt][0], sc[nt][1]));
      mx1 = fmaxf(mx1, fmaxf(sc[nt][2], sc[nt][3]));
    }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    mx0 = fmaxf(m0, mx0 * scale);
    mx1 = fmaxf(m1, mx1 * scale);
    const float c0 = ex2(m0 - mx0), c1 = ex2(m1 - mx1);
    m0 = mx0;
    m1 = mx1;
    float ls0 = 0.f, ls1 = 0.f;
#pragma unroll
    for (int nt = 0; nt < kBN / 8; ++nt) {
      sc[nt][0] = ex2(fmaf(sc[nt][0], scale, -mx0));
      sc[nt][1] = ex2(fmaf(sc[nt][1], scale, -mx0));
      sc[nt][2] = ex2(fmaf(sc[nt][2], scale, -mx1));
      sc[nt][3] = ex2(fmaf(sc[nt][3], scale, -mx1));
      ls0 += sc[nt][0] + sc[nt][1];
      ls1 += sc[nt][2] + sc[nt][3];
    }
    l0 = fmaf(l0, c0, ls0);
    l1 = fmaf(l1, c1, ls1);
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      o[dt][0] *= c0;
      o[dt][1] *= c0;
      o[dt][2] *= c1;
      o[dt][3] *= c1;
    }
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      const uint32_t pa[4] = {pack2<T>(sc[2 * kk][0], sc[2 * kk][1]), pack2<T>(sc[2 * kk][2], sc[2 * kk][3]),
                              pack2<T>(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                              pack2<T>(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, Vt + kk * 16 * D + (voff ^ (dp * 16)));
        mma16816<T>(o[2 * dp], pa, b[0], b[1]);
        mma16816<T>(o[2 * dp + 1], pa, b[2], b[3]);
      }
    }
  }
  cp_async_wait<0>();
  store_rows<T, D>(a, tr, h, r0, o, l0, l1, 1.f);
}

template <typename T, int D, int STAGES, int MINB>
int prefill_fa_d(const Args& a, int tile_bound, cudaStream_t stream) {
  constexpr int smem = 2 * STAGES * kBN * D * static_cast<int>(sizeof(T));
  auto kernel = prefill_fa_kernel<T, D, STAGES, MINB>;
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return static_cast<int>(e);
  }
  kernel<<<dim3(a.num_heads, tile_bound), kFaThreads, smem, stream>>>(a);
  return static_cast<int>(cudaGetLastError());
}

template <typename T, int D>
int prefill_fa_t(const Args& a, int tile_bound, cudaStream_t stream) {
  const char* stages = getenv("TRTC_PA_PREFILL_STAGES");  // tuning override, for benchmarks
  if (stages != nullptr && atoi(stages) == 3) return prefill_fa_d<T, D, 3, 2>(a, tile_bound, stream);
  return prefill_fa_d<T, D, 2, 3>(a, tile_bound, stream);
}

// The fast kernel takes 16-bit pools of the activation type (and a positive scale, which
// keeps the running max of raw scores valid); the tile kernel above takes quantized pools.
bool fast_prefill(trtc_dtype dtype, trtc_dtype kv_dtype, float scale) {
  const char* legacy = getenv("TRTC_PA_PREFILL_LEGACY");  // tuning override, for benchmarks
  return kv_dtype == dtype && scale > 0.f && !(legacy != nullptr && atoi(legacy) == 1);
}

}  // namespace

int prefill_tile_rows(trtc_dtype dtype, trtc_dtype kv_dtype, float scale) {
  return fast_prefill(dtype, kv_dtype, scale) ? kFaRows : kPrefillBlockM;
}

int launch_prefill(const Args& a, trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim,
                   int tile_bound, cudaStream_t stream) {
  if (dtype != TRTC_F16 && dtype != TRTC_BF16) return cudaErrorNotSupported;
  return dispatch_pool(dtype, kv_dtype, [&](auto tag, auto pool_tag) {
    using T = decltype(tag);
    using P = decltype(pool_tag);
    if constexpr (sizeof(T) == 2) {
      if constexpr (std::is_same<T, P>::value) {
        if (fast_prefill(dtype, kv_dtype, a.scale_log2))
          return head_dim == 64 ? prefill_fa_t<T, 64>(a, tile_bound, stream)
                                : prefill_fa_t<T, 128>(a, tile_bound, stream);
      }
      return head_dim == 64 ? prefill_t<T, P, 64>(a, tile_bound, stream)
                            : prefill_t<T, P, 128>(a, tile_bound, stream);
    } else {
      return static_cast<int>(cudaErrorNotSupported);
    }
  });
}

}  // namespace pa
}  // namespace trtc
