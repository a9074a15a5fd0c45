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
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same<T, __half>::value) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  } else {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
}

// Copies the K and V rows of keys [kt, kt + kBN) into one stage (zero rows past kend).
template <typename T, int D>
__device__ __forceinline__ void load_kv_tile(T* ks, T* vs, const T* kpool, const T* vpool,
                                             const int32_t* bt, int kt, int kend, int log2b,
                                             int64_t slot_stride, int hkv) {
  constexpr int CPR = D / 8;  // 16-byte chunks per row
  static_assert(kThreadsP % CPR == 0, "a thread keeps its column");
  const int col = (threadIdx.x % CPR) * 8;
#pragma unroll
  for (int r = threadIdx.x / CPR; r < kBN; r += kThreadsP / CPR) {
    const int key = kt + r;
    const bool ok = key < kend;
    const int kk = ok ? key : 0;
    const int64_t o = ((static_cast<int64_t>(__ldg(bt + (kk >> log2b))) << log2b) |
                       (kk & ((1 << log2b) - 1))) * slot_stride + hkv * D + col;
    cp_async16(ks + r * (D + kPad) + col, kpool + o, ok);
    cp_async16(vs + r * (D + kPad) + col, vpool + o, ok);
  }
}

// MINB: CTAs per SM the registers are capped for. MINB == 1 keeps the q fragments in
// registers (about 220 of them); MINB == 2 (the default: 208 vs 251 us on 8 x 512, H100)
// caps at 128 and reloads q from shared memory.
template <typename T, int D, int MINB>
__global__ void __launch_bounds__(kThreadsP, MINB) prefill_kernel(const Args a) {
  constexpr int LD = D + kPad;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* Qs = reinterpret_cast<T*>(smem_raw);  // [kBM][LD]
  T* Ks = Qs + kBM * LD;                   // [2][kBN][LD]
  T* Vs = Ks + 2 * kBN * LD;               // [2][kBN][LD]
  __shared__ int s_minpos, s_maxpos;

  const int h = blockIdx.x, tile = gridDim.y - 1 - blockIdx.y;
  const int S = a.num_seqs;
  if (tile >= a.tile_cum[S]) return;
  int lo = 0, hi = S;  // find s: tile_cum[s] <= tile < tile_cum[s + 1]
  while (hi - lo > 1) {
    const int mid = (lo + hi) >> 1;
    if (a.tile_cum[mid] <= tile) lo = mid; else hi = mid;
  }
  const int s = lo;
  const int q0 = a.qsl[s] + (tile - a.tile_cum[s]) * kBM;
  const int rows = min(a.qsl[s + 1] - q0, kBM);
  const int n = a.seq_lens[s];
  const int hkv = h / a.group;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int32_t* bt = a.block_tables + static_cast<int64_t>(s) * a.max_blocks;
  const int64_t slot_stride = static_cast<int64_t>(a.num_kv_heads) * D;
  const T* kpool = static_cast<const T*>(a.k_pool);
  const T* vpool = static_cast<const T*>(a.v_pool);

  // Raw q rows first: they do not depend on the key range.
  const T* qsrc = static_cast<const T*>(a.q);
  for (int c = tid; c < kBM * (D / 8); c += kThreadsP) {
    const int r = c / (D / 8), col = (c - r * (D / 8)) * 8;
    const bool valid = r < rows;
    const T* src = valid ? qsrc + static_cast<int64_t>(q0 + r) * a.q_stride + h * D + col : qsrc;
    cp_async16(Qs + r * LD + col, src, valid);
  }
  cp_async_commit();

  if (tid == 0) {
    s_minpos = INT_MAX;
    s_maxpos = -1;
  }
  __syncthreads();
  if (tid < rows) {
    const int p = a.positions[q0 + tid];
    atomicMin(&s_minpos, p);
    atomicMax(&s_maxpos, p);
  }
  __syncthreads();
  const int minpos = s_minpos, maxpos = s_maxpos;
  const int W = a.sliding_window;
  const int kend = min(n, maxpos + 1);
  const int kstart = (W > 0 ? max(0, minpos - W + 1) : 0) & ~(kBN - 1);

#pragma unroll
  for (int st = 0; st < 2; ++st) {
    if (kstart + st * kBN < kend)
      load_kv_tile<T, D>(Ks + st * kBN * LD, Vs + st * kBN * LD, kpool, vpool, bt,
                         kstart + st * kBN, kend, a.log2_block, slot_stride, hkv);
    cp_async_commit();
  }

  const int g = lane >> 2, t4 = lane & 3;
  const int r0 = warp * 16 + g, r1 = r0 + 8;
  const int pos0 = r0 < rows ? a.positions[q0 + r0] : -1;  // -1: padding row, fully masked
  const int pos1 = r1 < rows ? a.positions[q0 + r1] : -1;
  int wmax = max(pos0, pos1);
  int wmin = min(r0 < rows ? pos0 : INT_MAX, r1 < rows ? pos1 : INT_MAX);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    wmax = max(wmax, __shfl_xor_sync(0xffffffffu, wmax, o));
    wmin = min(wmin, __shfl_xor_sync(0xffffffffu, wmin, o));
  }

  cp_async_wait<2>();
  __syncthreads();
  if (a.rot > 0) {  // rotate-half in place, rounded to T as a separate pass would store it
    const int half = a.rot / 2;
    for (int idx = tid; idx < rows * half; idx += kThreadsP) {
      const int r = idx / half, j = idx - r * half;
      const float pos = static_cast<float>(a.positions[q0 + r]);
      const float f = __ldg(a.inv_freq + j);
      T* row = Qs + r * LD;
      const float x1 = to_float(row[j]), x2 = to_float(row[j + half]);
      row[j] = from_float<T>(rotate_q<T>(x1, x2, true, pos, f, a.rotary_scaling));
      row[j + half] = from_float<T>(rotate_q<T>(x2, x1, false, pos, f, a.rotary_scaling));
    }
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
    __syncthreads();
    const T* Kt = Ks + (it & 1) * kBN * LD;
    const T* Vt = Vs + (it & 1) * kBN * LD;
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
          float v = sc[nt][e] * a.scale_log2;
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
      load_kv_tile<T, D>(Ks + (it & 1) * kBN * LD, Vs + (it & 1) * kBN * LD, kpool, vpool, bt,
                         kt + 2 * kBN, kend, a.log2_block, slot_stride, hkv);
    cp_async_commit();
  }
  cp_async_wait<0>();

  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
  T* out = static_cast<T*>(a.out);
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) {
    const int col = h * D + dt * 8 + 2 * t4;
    if (r0 < rows)
      *reinterpret_cast<uint32_t*>(out + static_cast<int64_t>(q0 + r0) * a.num_heads * D + col) =
          pack2<T>(o[dt][0] * inv0, o[dt][1] * inv0);
    if (r1 < rows)
      *reinterpret_cast<uint32_t*>(out + static_cast<int64_t>(q0 + r1) * a.num_heads * D + col) =
          pack2<T>(o[dt][2] * inv1, o[dt][3] * inv1);
  }
}

template <typename T, int D, int MINB>
int prefill_d(const Args& a, int tile_bound, cudaStream_t stream) {
  constexpr int smem = (kBM + 4 * kBN) * (D + kPad) * static_cast<int>(sizeof(T));
  auto kernel = prefill_kernel<T, D, MINB>;
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return static_cast<int>(e);
  }
  kernel<<<dim3(a.num_heads, tile_bound), kThreadsP, smem, stream>>>(a);
  return static_cast<int>(cudaGetLastError());
}

template <typename T, int D>
int prefill_t(const Args& a, int tile_bound, cudaStream_t stream) {
  const char* minb = getenv("TRTC_PA_PREFILL_MINB");  // tuning override, for benchmarks
  if (minb != nullptr && atoi(minb) == 1) return prefill_d<T, D, 1>(a, tile_bound, stream);
  return prefill_d<T, D, 2>(a, tile_bound, stream);
}

}  // namespace

int launch_prefill(const Args& a, trtc_dtype dtype, int head_dim, int tile_bound, cudaStream_t stream) {
  switch (dtype) {
    case TRTC_F16:
      return head_dim == 64 ? prefill_t<__half, 64>(a, tile_bound, stream) : prefill_t<__half, 128>(a, tile_bound, stream);
    case TRTC_BF16:
      return head_dim == 64 ? prefill_t<__nv_bfloat16, 64>(a, tile_bound, stream)
                            : prefill_t<__nv_bfloat16, 128>(a, tile_bound, stream);
    default: return cudaErrorNotSupported;
  }
}

}  // namespace pa
}  // namespace trtc
