// Building blocks of the PagedAttention prefill kernels (internal): cp.async, ldmatrix and
// mma.sync m16n8k16 wrappers, K/V tile loads through the block table, tile lookup, q staging
// and rotation, output rows.
#pragma once

#include "paged_attention.cuh"

namespace trtc {
namespace pa {
namespace prefill {

constexpr int kBN = 64;      // keys per K/V tile
constexpr int kFaRows = 64;  // query rows per tile of the fast kernel

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int bytes = valid ? 16 : 0;  // 0: zero-fill, nothing read
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

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

// Max and sum over the 4 lanes of a quad (the lanes holding one row of an mma accumulator).
__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// 2^x (approximate, flushes denormals; 2^-inf = 0).
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
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

// a * b, 32 x 32 -> 64 bits signed (one wide multiply).
__device__ __forceinline__ int64_t mul_wide(int a, int b) {
  int64_t r;
  asm("mul.wide.s32 %0, %1, %2;" : "=l"(r) : "r"(a), "r"(b));
  return r;
}

// Byte offset of `key`'s row in a pool (its block table bt, blocks of 2^log2b slots of row_bytes
// each) from the pool's start: block ids and a block's bytes fit 32 bits, so one wide multiply.
__device__ __forceinline__ int64_t pool_row_offset(const int32_t* bt, int key, int log2b, int row_bytes) {
  return mul_wide(__ldg(bt + (key >> log2b)), row_bytes << log2b) + (key & ((1 << log2b) - 1)) * row_bytes;
}

// Copies the K and V rows of keys [kt, kt + BN) into one stage (NT threads, the block's
// threads: each copies rows threadIdx.x / CPR + i * NT / CPR; element (r, col) of the stage at
// off(r, col); zero rows past kend). Addresses in bytes from this thread's column of the head
// (pool_row_offset).
template <typename P, int D, int NT, typename Off, int BN = kBN>
__device__ __forceinline__ void load_kv_tile(P* ks, P* vs, const P* kpool, const P* vpool,
                                             const int32_t* bt, int kt, int kend, int log2b,
                                             int64_t slot_stride, int hkv, Off off) {
  constexpr int EPC = 16 / sizeof(P), CPR = D / EPC, RPP = NT / CPR;  // rows per pass
  static_assert(NT % CPR == 0 && BN % RPP == 0, "a thread keeps its column and copies BN / RPP rows");
  const int r0 = threadIdx.x / CPR, col = (threadIdx.x % CPR) * EPC;
  const int row_bytes = static_cast<int>(slot_stride) * static_cast<int>(sizeof(P));
  const char* kb = reinterpret_cast<const char*>(kpool + hkv * D + col);  // this thread's column
  const char* vb = reinterpret_cast<const char*>(vpool + hkv * D + col);
#pragma unroll
  for (int i = 0; i < BN / RPP; ++i) {
    const int r = r0 + i * RPP, key = kt + r;
    const bool ok = key < kend;
    const int64_t o = pool_row_offset(bt, ok ? key : 0, log2b, row_bytes);
    const int so = off(r, col);
    cp_async16(ks + so, kb + o, ok);
    cp_async16(vs + so, vb + o, ok);
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

// Tile number `tile` (< tile_cum[S]): sequence s, first token q0 and rows of tiles of `bm` query
// rows. s is the number of sequences s' >= 1 with tile_cum[s'] <= tile (tile_cum is
// non-decreasing), counted by each warp 32 at a time: one round of loads where S <= 32, not one
// per bisection step (every lane of the warp calls it).
struct TileRef {
  int s, q0, rows;
};
__device__ __forceinline__ void locate_tile_at(const Args& a, int tile, int bm, TileRef& t) {
  const int S = a.num_seqs, lane = threadIdx.x & 31;
  int s = 0;
  for (int base = 1; base <= S; base += 32) {
    const int i = base + lane;
    const int n = __popc(__ballot_sync(0xffffffffu, i <= S && a.tile_cum[i] <= tile));
    s += n;
    if (n < 32) break;
  }
  t.s = s;
  t.q0 = a.qsl[s] + (tile - a.tile_cum[s]) * bm;
  t.rows = min(a.qsl[s + 1] - t.q0, bm);
}

// The tile this CTA owns: grid.y walked from the last tile down, so that the long last tiles of
// the sequences start first and the surplus CTAs of the shape-only grid bound come last, once the
// real ones are under way (with one CTA per SM each surplus one costs a launch). False for a
// surplus CTA.
__device__ __forceinline__ bool locate_tile(const Args& a, int bm, TileRef& t) {
  const int tile = a.tile_cum[a.num_seqs] - 1 - static_cast<int>(blockIdx.y);
  if (tile < 0) return false;
  locate_tile_at(a, tile, bm, t);
  return true;
}

// The position of row threadIdx.x of the tile (-1 past its rows), for tile_range.
__device__ __forceinline__ int row_position(const Args& a, const TileRef& t) {
  return static_cast<int>(threadIdx.x) < t.rows ? a.positions[t.q0 + threadIdx.x] : -1;
}

// Smallest and largest of the rows' positions p (row_position of each thread; block-wide: every
// thread calls it).
__device__ __forceinline__ void tile_range(int p, int& minpos, int& maxpos) {
  __shared__ int s_minpos, s_maxpos;
  if (threadIdx.x == 0) {
    s_minpos = INT_MAX;
    s_maxpos = -1;
  }
  __syncthreads();
  if (p >= 0) {
    atomicMin(&s_minpos, p);
    atomicMax(&s_maxpos, p);
  }
  __syncthreads();
  minpos = s_minpos;
  maxpos = s_maxpos;
}

// Smallest and largest position of the tile's rows (block-wide: every thread calls it).
__device__ __forceinline__ void tile_positions(const Args& a, const TileRef& t, int& minpos, int& maxpos) {
  tile_range(row_position(a, t), minpos, maxpos);
}

// tile_positions found by one warp alone (no block-wide barrier; every warp that calls it gets
// the range).
__device__ __forceinline__ void tile_positions_warp(const Args& a, const TileRef& t, int& minpos, int& maxpos) {
  int lo = INT_MAX, hi = -1;
  for (int r = threadIdx.x & 31; r < t.rows; r += 32) {
    const int p = a.positions[t.q0 + r];
    lo = min(lo, p);
    hi = max(hi, p);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    lo = min(lo, __shfl_xor_sync(0xffffffffu, lo, o));
    hi = max(hi, __shfl_xor_sync(0xffffffffu, hi, o));
  }
  minpos = lo;
  maxpos = hi;
}

// Pipeline prologue of the fast kernels and the tile's key range [kstart, kend) (kstart
// tile-aligned): q's loads first (load_q(), its result handed to store_q()), then K/V tiles
// kstart, kstart + BN, .. into stages 0..STAGES-2 (issue(stage, key, bound): keys >= bound
// zero-filled; one cp.async group each), then q stored (store_q(loaded), its own group). Without
// a window the tiles need no positions: they are issued bounded by the context (keys past the
// tile's last position are masked anyway), and the rows' positions are loaded with q, so that
// the loads of q, of the block table and of the positions are in flight together. Block-wide.
template <int BN, int STAGES, typename Issue, typename LoadQ, typename StoreQ>
__device__ __forceinline__ void fast_prologue(const Args& a, const TileRef& t, int n, int& kstart,
                                              int& kend, Issue issue, LoadQ load_q, StoreQ store_q) {
  const int W = a.sliding_window;
  int minpos = 0, maxpos = n - 1;
  if (W > 0) tile_positions(a, t, minpos, maxpos);
  kstart = (W > 0 ? max(0, minpos - W + 1) : 0) & ~(BN - 1);
  auto q = load_q();
  const int pos = W == 0 ? row_position(a, t) : -1;
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (kstart + s * BN <= maxpos) issue(s, kstart + s * BN, maxpos + 1);
    cp_async_commit();
  }
  store_q(q);
  cp_async_commit();
  if (W == 0) tile_range(pos, minpos, maxpos);
  kend = min(n, maxpos + 1);
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

// Copies `bm` q rows of head h (zero rows past t.rows) into Qs at off(r, col) (NT threads,
// this one number tid of them).
template <typename T, int D, int NT, typename Off>
__device__ __forceinline__ void load_q_rows(T* Qs, const Args& a, const TileRef& t, int h, int bm, Off off,
                                            int tid = threadIdx.x) {
  const T* qsrc = static_cast<const T*>(a.q);
  for (int c = tid; c < bm * (D / 8); c += NT) {
    const int r = c / (D / 8), col = (c - r * (D / 8)) * 8;
    const bool valid = r < t.rows;
    const T* src = valid ? qsrc + static_cast<int64_t>(t.q0 + r) * a.q_stride + h * D + col : qsrc;
    cp_async16(Qs + off(r, col), src, valid);
  }
}

// One 16-byte chunk of q row r at column col and, where `pair` (col < rot / 2), its partner
// chunk at col + rot / 2 with their (cos, sin): as loaded, zero past t.rows.
template <typename T>
struct QChunk {
  Vec16<T> x, y;
  float4 cs[Vec16<T>::N / 2];
};

template <typename T, int D>
__device__ __forceinline__ void load_q_chunk(QChunk<T>& u, const Args& a, const TileRef& t, int h, int r, int col,
                                             bool pair) {
  u.x.raw = u.y.raw = make_uint4(0u, 0u, 0u, 0u);
  if (r >= t.rows) return;
  const int half = a.rot / 2;
  const T* src = static_cast<const T*>(a.q) + static_cast<int64_t>(t.q0 + r) * a.q_stride + h * D + col;
  u.x.load(src);
  if (pair) {
    u.y.load(src + half);
    const float4* cs = reinterpret_cast<const float4*>(a.rot_cs + static_cast<int64_t>(t.q0 + r) * half + col);
#pragma unroll
    for (int k = 0; k < Vec16<T>::N / 2; ++k) u.cs[k] = cs[k];
  }
}

// Stores a loaded chunk (and its partner) into Qs at off(r, col), rotated where `rotate`.
template <typename T, typename Off>
__device__ __forceinline__ void store_q_chunk(QChunk<T>& u, T* Qs, Off off, int r, int col, int half, bool pair,
                                              bool rotate) {
  constexpr int EPC = Vec16<T>::N;
  if (pair && rotate) {
    float xf[EPC], yf[EPC], x2[EPC], y2[EPC];
    u.x.to_floats(xf);
    u.y.to_floats(yf);
#pragma unroll
    for (int k = 0; k < EPC / 2; ++k) {
      const float4 c = u.cs[k];
      x2[2 * k] = rotate_q_cs<T>(xf[2 * k], yf[2 * k], true, c.x, c.y);
      y2[2 * k] = rotate_q_cs<T>(yf[2 * k], xf[2 * k], false, c.x, c.y);
      x2[2 * k + 1] = rotate_q_cs<T>(xf[2 * k + 1], yf[2 * k + 1], true, c.z, c.w);
      y2[2 * k + 1] = rotate_q_cs<T>(yf[2 * k + 1], xf[2 * k + 1], false, c.z, c.w);
    }
    u.x.from_floats(x2);
    u.y.from_floats(y2);
  }
  u.x.store(Qs + off(r, col));
  if (pair) u.y.store(Qs + off(r, col + half));
}

// A thread's share of staging BM q rows of head h, loaded before it is stored (QStage::load,
// then store): with full rotary (rot == D) its units of work are pairs only (BM * D / 2 / 8 of
// them shared evenly), all in registers between the two; else nothing is held and store does
// all of stage_q_rotated's work.
template <typename T, int D, int NT, int BM>
struct QStage {
  static constexpr int EPC = 16 / sizeof(T), CPR = D / EPC, U = BM * (CPR / 2) / NT;
  static constexpr bool kPairs = BM * (CPR / 2) % NT == 0;
  QChunk<T> u[kPairs ? U : 1];
  bool held = false;

  __device__ __forceinline__ void load(const Args& a, const TileRef& t, int h, int tid) {
    held = kPairs && a.rot == D;
    if (!held) return;
#pragma unroll
    for (int i = 0; i < U; ++i) {
      const int v = tid + i * NT;
      load_q_chunk<T, D>(u[i], a, t, h, v / (CPR / 2), (v % (CPR / 2)) * EPC, true);
    }
  }
  template <typename Off>
  __device__ __forceinline__ void store(T* Qs, const Args& a, const TileRef& t, int h, Off off, int tid) {
    const int rot = a.rot, half = rot / 2;
    if (held) {
#pragma unroll
      for (int i = 0; i < U; ++i) {
        const int v = tid + i * NT, r = v / (CPR / 2);
        store_q_chunk<T>(u[i], Qs, off, r, (v % (CPR / 2)) * EPC, half, true, r < t.rows);
      }
      return;
    }
#pragma unroll
    for (int i = 0; i < BM * CPR / NT; ++i) {
      const int c = tid + i * NT, r = c / CPR, col = (c % CPR) * EPC;
      if (col >= half && col < rot) continue;  // the second of a pair: written with the first
      QChunk<T> w;
      load_q_chunk<T, D>(w, a, t, h, r, col, col < half);
      store_q_chunk<T>(w, Qs, off, r, col, half, col < half, r < t.rows);
    }
  }
};

// Stages BM q rows of head h into Qs at off(r, col) (zero rows past t.rows) with plain 16-byte
// loads, rotated on the way where a.rot > 0 (pairs (j, j + rot / 2) as 16-byte chunks: needs
// rot % 16 == 0); with full rotary every load of a thread is in flight at once (QStage).
template <typename T, int D, int NT, int BM, typename Off>
__device__ __forceinline__ void stage_q_rotated(T* Qs, const Args& a, const TileRef& t, int h, Off off,
                                                int tid = threadIdx.x) {
  QStage<T, D, NT, BM> q;
  q.load(a, t, h, tid);
  q.store(Qs, a, t, h, off, tid);
}

// Rotate-half of the staged q rows in place, rounded to T as a separate pass would store it
// (factors from the per-token table kv_write filled).
template <typename T, int NT, typename Off>
__device__ __forceinline__ void rotate_q_rows(T* Qs, const Args& a, const TileRef& t, Off off,
                                              int tid = threadIdx.x) {
  const int half = a.rot / 2;
  for (int idx = tid; idx < t.rows * half; idx += NT) {
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

// Running max m (scaled log2 units) and sum l of the thread's two rows r0, r0 + 8.
struct RowStats {
  float m0 = -1e30f, m1 = -1e30f, l0 = 0.f, l1 = 0.f;
};

// The softmax scale of row r0 (hi = 0) or r0 + 8 (hi = 1): one for both, or one each (float2).
__device__ __forceinline__ float row_scale(float s, int) { return s; }
__device__ __forceinline__ float row_scale(float2 s, int hi) { return hi ? s.y : s.x; }

// Online softmax over one tile of BN keys from kt: raw scores sc (mma C fragments: key
// kt + 8 nt + 2 t4 + (e & 1), row r0 for e < 2 else r0 + 8) -> probabilities, masked where the
// tile is not fully visible to the warp's rows (the causal diagonal, the window edge, the end
// of the context), and the running stats updated. Returns the factors (rows r0, r0 + 8) the
// output accumulated so far must be scaled by. The softmax scale (log2 units; S = float, or
// float2 for a scale per row) is folded into one fma per exponent.
template <int BN, typename S>
__device__ __forceinline__ float2 softmax_scores(float (&sc)[BN / 8][4], RowStats& st, const WarpRows& wr,
                                                 int kt, int n, int W, S scale) {
  const float scale0 = row_scale(scale, 0), scale1 = row_scale(scale, 1);
  const int t4 = threadIdx.x & 3;
  const bool full = kt + BN - 1 <= wr.wmin && kt + BN <= n && (W == 0 || kt > wr.wmax - W);
  if (!full) {
    // Row r sees keys [lo_r, hi_r]: up to its position and the end of the context, from the
    // window's start; as offsets from the thread's first key of the tile.
    const int base = kt + 2 * t4;
    const int hi0 = min(wr.pos0, n - 1) - base, hi1 = min(wr.pos1, n - 1) - base;
    const int lo0 = (W > 0 ? wr.pos0 - W + 1 : 0) - base, lo1 = (W > 0 ? wr.pos1 - W + 1 : 0) - base;
#pragma unroll
    for (int nt = 0; nt < BN / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int off = nt * 8 + (e & 1);
        if (off > (e < 2 ? hi0 : hi1) || off < (e < 2 ? lo0 : lo1)) sc[nt][e] = -INFINITY;
      }
    }
  }
  float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
  for (int nt = 0; nt < BN / 8; ++nt) {
    mx0 = fmaxf(mx0, fmaxf(sc[nt][0], sc[nt][1]));
    mx1 = fmaxf(mx1, fmaxf(sc[nt][2], sc[nt][3]));
  }
  mx0 = quad_max(mx0);
  mx1 = quad_max(mx1);
  mx0 = fmaxf(st.m0, mx0 * scale0);
  mx1 = fmaxf(st.m1, mx1 * scale1);
  const float2 c = make_float2(ex2(st.m0 - mx0), ex2(st.m1 - mx1));
  st.m0 = mx0;
  st.m1 = mx1;
  float ls0 = 0.f, ls1 = 0.f;
#pragma unroll
  for (int nt = 0; nt < BN / 8; ++nt) {
    sc[nt][0] = ex2(fmaf(sc[nt][0], scale0, -mx0));
    sc[nt][1] = ex2(fmaf(sc[nt][1], scale0, -mx0));
    sc[nt][2] = ex2(fmaf(sc[nt][2], scale1, -mx1));
    sc[nt][3] = ex2(fmaf(sc[nt][3], scale1, -mx1));
    ls0 += sc[nt][0] + sc[nt][1];
    ls1 += sc[nt][2] + sc[nt][3];
  }
  st.l0 = fmaf(st.l0, c.x, ls0);
  st.l1 = fmaf(st.l1, c.y, ls1);
  return c;
}

// Output fragments o (rows r0, r0 + 8) times the factors c.
template <int D>
__device__ __forceinline__ void rescale_rows(float (&o)[D / 8][4], float2 c) {
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) {
    o[dt][0] *= c.x;
    o[dt][1] *= c.x;
    o[dt][2] *= c.y;
    o[dt][3] *= c.y;
  }
}

// softmax_scores, then the output so far rescaled.
template <int BN, int D, typename S>
__device__ __forceinline__ void softmax_tile(float (&sc)[BN / 8][4], float (&o)[D / 8][4], RowStats& st,
                                             const WarpRows& wr, int kt, int n, int W, S scale) {
  rescale_rows<D>(o, softmax_scores<BN>(sc, st, wr, kt, n, W, scale));
}

// The A fragment (m16k16) of keys 16 kk .. 16 kk + 15 of the probabilities p (C fragments).
template <typename T, int BN>
__device__ __forceinline__ void p_fragment(const float (&p)[BN / 8][4], int kk, uint32_t (&a)[4]) {
  a[0] = pack2<T>(p[2 * kk][0], p[2 * kk][1]);
  a[1] = pack2<T>(p[2 * kk][2], p[2 * kk][3]);
  a[2] = pack2<T>(p[2 * kk + 1][0], p[2 * kk + 1][1]);
  a[3] = pack2<T>(p[2 * kk + 1][2], p[2 * kk + 1][3]);
}

// Writes a warp's 16 output rows (fragments o, row sums l0, l1 of the thread's rows r0, r0 + 8
// still per lane) scaled by vscale / l.
template <typename T, int D>
__device__ __forceinline__ void store_rows(const Args& a, const TileRef& t, int h, int r0,
                                           const float (&o)[D / 8][4], float l0, float l1, float vscale) {
  l0 = quad_sum(l0);
  l1 = quad_sum(l1);
  const float inv0 = l0 > 0.f ? vscale / l0 : 0.f, inv1 = l1 > 0.f ? vscale / l1 : 0.f;
  const int r1 = r0 + 8;
  const bool w0 = r0 < t.rows, w1 = r1 < t.rows;
  const int64_t ld = static_cast<int64_t>(a.num_heads) * D;
  T* out0 = static_cast<T*>(a.out) + (t.q0 + r0) * ld + h * D + 2 * (threadIdx.x & 3);
  T* out1 = out0 + 8 * ld;
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) {
    if (w0) *reinterpret_cast<uint32_t*>(out0 + dt * 8) = pack2<T>(o[dt][0] * inv0, o[dt][1] * inv0);
    if (w1) *reinterpret_cast<uint32_t*>(out1 + dt * 8) = pack2<T>(o[dt][2] * inv1, o[dt][3] * inv1);
  }
}

// Fast kernels (16-bit pools, tiles of kFaRows): whether they take this call; the mma.sync
// kernel (paged_attention_prefill_fa.cu) and, for head_dim 128 on sm_90a, the wgmma kernel
// (paged_attention_prefill_wgmma.cu; wgmma_prefill: whether it runs on this device).
bool fast_prefill(trtc_dtype dtype, trtc_dtype kv_dtype, float scale);
int launch_prefill_fa(const Args& a, trtc_dtype dtype, trtc_dtype kv_dtype, int head_dim,
                      int tile_bound, cudaStream_t stream);
bool wgmma_prefill();
int launch_prefill_wg(const Args& a, trtc_dtype dtype, trtc_dtype kv_dtype, int tile_bound,
                      cudaStream_t stream);
// The two-warpgroup wgmma kernel (paged_attention_prefill_wg2.cu; head_dim 128, sm_90a) and
// its tiles of kWg2Rows query rows.
constexpr int kWg2Rows = 128;
bool wg2_prefill();
int launch_prefill_wg2(const Args& a, trtc_dtype dtype, trtc_dtype kv_dtype, int tile_bound,
                       cudaStream_t stream);

}  // namespace prefill
}  // namespace pa
}  // namespace trtc
