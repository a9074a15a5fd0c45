// Micro-benchmark (sm_90a): cycles per batch of 8 wgmma m64n128k16 (bf16, fp32 accumulate), the
// MMA batches of the warp-specialized prefill kernel (paged_attention_prefill_wg2.cu), with one
// or two consumer warpgroups a CTA and one CTA a SM; no loads, operands of random values. It shows what the kernel's MMA skeleton can reach on its own.
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -o /tmp/wgmma_micro benchmarks/wgmma_micro.cu
//   /tmp/wgmma_micro
// Session 18 (H200) results: docs/benchmarks.md.
// MODE 0: RS (A in registers, B MN-major like P V), wait<0> after each batch
// MODE 1: MODE 0 + 64 FMUL + 32 packs after the wait (rescale, make P)
// MODE 2: SS (A and B K-major like Q K^T), wait<0> after each batch
// MODE 3: MODE 1 with ping-pong turns (named barriers) around the issue, as the kernel does
// MODE 4: RS, two batches in flight (wait<1>): the pipe's rate
// MODE 5: SS then RS (a full step: 16 MMAs), wait<1> then wait<0>, + MODE 1's ALU, with turns
// MODE 6: MODE 5 while a third warpgroup copies 16-byte chunks (cp.async) from an L2-resident
//         1 MiB buffer into another 64 KB of shared memory as fast as it can (the producer's
//         writes competing with the MMAs' operand reads)
#include <cstdio>
#include <cuda_bf16.h>
#include "../plugins/common/wgmma.cuh"
using namespace trtc;

template <int NWG, int MODE>
__global__ void __launch_bounds__(NWG * 128 + (MODE == 6 ? 128 : 0), 1)
    bench(float* out, long long* cyc, int iters, const uint4* src) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char raw[];
  unsigned char* sm = raw + ((1024 - (smem_u32(raw) & 1023)) & 1023);
  // operands: bf16 values in [-1, 1) from a hash of the index (zeros ran faster than the pipe's
  // rate, so they would not measure it)
  auto val = [](uint32_t i) {
    i = i * 2654435761u ^ (i >> 13);
    i = i * 2246822519u ^ (i >> 16);
    return __float2bfloat16(static_cast<float>(i & 0xffff) / 32768.f - 1.f);
  };
  for (int i = threadIdx.x; i < 96 * 1024 / 2; i += blockDim.x) reinterpret_cast<__nv_bfloat16*>(sm)[i] = val(i);
  __shared__ volatile int done;
  if (threadIdx.x == 0) done = 0;
  __syncthreads();
  if (MODE == 6 && threadIdx.x >= NWG * 128) {  // the copying warpgroup
    setmaxnreg_dec<40>();
    const uint32_t dst = smem_u32(sm) + 96 * 1024;
    const int t = threadIdx.x - NWG * 128;
    for (int round = 0; !done; ++round) {
      for (int c = t; c < 4096; c += 128) {
        const uint4* g = src + ((round * 4096 + c) & 65535);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst + c * 16), "l"(g));
      }
      asm volatile("cp.async.commit_group;\ncp.async.wait_group 0;\n" ::: "memory");
    }
    return;
  }
  if (MODE == 6) setmaxnreg_inc<232>();  // as the prefill kernel's consumers
  const int wg = __shfl_sync(0xffffffffu, threadIdx.x >> 7, 0);
  const uint32_t vb = smem_u32(sm), kb = smem_u32(sm) + 32768, qb = smem_u32(sm) + 65536 + wg * 64 * 128;
  constexpr uint32_t kSlab = 128 * 128;
  float o[64], s[64];
  for (int i = 0; i < 64; ++i) o[i] = s[i] = 0.f;
  uint32_t pa[8][4];
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 4; ++j) {
      __nv_bfloat162 h = __halves2bfloat162(val(threadIdx.x * 64 + i * 8 + 2 * j), val(threadIdx.x * 64 + i * 8 + 2 * j + 1));
      pa[i][j] = *reinterpret_cast<uint32_t*>(&h);
    }
  auto pv = [&] {
    wgmma_fence_operand(o);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 8; ++kk)
      wgmma_m64n128k16_rs<__nv_bfloat16, true>(o, pa[kk], swizzled_desc(vb + kk * 16 * 128, kSlab), 1);
    wgmma_commit();
  };
  auto qk = [&] {
    wgmma_fence();
#pragma unroll
    for (int k = 0; k < 8; ++k)
      wgmma_m64n128k16_ss<__nv_bfloat16>(s, swizzled_desc(qb + (k >> 2) * kSlab + (k & 3) * 32),
                                         swizzled_desc(kb + (k >> 2) * kSlab + (k & 3) * 32), k > 0);
    wgmma_commit();
  };
  auto alu = [&] {
#pragma unroll
    for (int i = 0; i < 64; ++i) o[i] *= 1.0000001f;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      __nv_bfloat162 h = __floats2bfloat162_rn(s[8 * i], s[8 * i + 1]);
      pa[i][0] ^= *reinterpret_cast<uint32_t*>(&h) & 0x1;
    }
  };
  auto turn = [&] { if (NWG == 2) named_barrier_sync(2 + wg, 256); };
  auto pass = [&] { if (NWG == 2) named_barrier_arrive(3 - wg, 256); };
  if ((MODE == 3 || MODE >= 5) && NWG == 2 && wg == 1) named_barrier_arrive(2, 256);
  long long t0 = clock64();
  for (int it = 0; it < iters; ++it) {
    if (MODE == 0 || MODE == 1) {
      pv();
      wgmma_wait<0>();
      wgmma_fence_operand(o);
      if (MODE == 1) alu();
    } else if (MODE == 2) {
      qk();
      wgmma_wait<0>();
      wgmma_fence_operand(s);
    } else if (MODE == 3) {
      turn();
      pv();
      pass();
      wgmma_wait<0>();
      wgmma_fence_operand(o);
      alu();
    } else if (MODE == 4) {
      pv();
      wgmma_wait<1>();
    } else {
      turn();
      qk();
      pv();
      pass();
      wgmma_wait<1>();
      wgmma_fence_operand(s);
      wgmma_wait<0>();
      wgmma_fence_operand(o);
      alu();
    }
  }
  wgmma_wait<0>();
  wgmma_fence_operand(o);
  long long t1 = clock64();
  if ((MODE == 3 || MODE >= 5) && NWG == 2 && wg == 0) named_barrier_sync(2, 256);  // WG1's last pass
  if (threadIdx.x == 0) done = 1;
  float acc = 0.f;
  for (int i = 0; i < 64; ++i) acc += o[i] + s[i];
  out[blockIdx.x * 384 + threadIdx.x] = acc;
  if ((threadIdx.x & 127) == 0) cyc[blockIdx.x * 2 + wg] = t1 - t0;
#endif
}

template <int NWG, int MODE>
void run(const char* name, float* out, long long* cyc, int sms) {
  const int iters = 2000, smem = (MODE == 6 ? 160 : 96) * 1024 + 1024;
  static uint4* src = nullptr;
  if (src == nullptr) {
    cudaMalloc(&src, 1 << 20);
    cudaMemset(src, 0x3c, 1 << 20);
  }
  const int threads = NWG * 128 + (MODE == 6 ? 128 : 0);
  cudaFuncSetAttribute(bench<NWG, MODE>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  bench<NWG, MODE><<<sms, threads, smem>>>(out, cyc, 10, src);
  cudaEvent_t a, b;
  cudaEventCreate(&a); cudaEventCreate(&b);
  cudaEventRecord(a);
  bench<NWG, MODE><<<sms, threads, smem>>>(out, cyc, iters, src);
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float ms; cudaEventElapsedTime(&ms, a, b);
  long long h[2];
  cudaMemcpy(h, cyc, sizeof(h), cudaMemcpyDeviceToHost);
  const int mmas = (MODE >= 5 ? 16 : 8) * NWG;
  const double flop = 2.0 * 64 * 128 * 16 * mmas * iters * sms;
  printf("%-52s WGs=%d  cycles/iter WG0 %.0f  WG1 %.0f  (ideal pipe %d)  %.0f TFLOP/s  err=%s\n", name, NWG,
         double(h[0]) / iters, NWG == 2 ? double(h[1]) / iters : 0.0, 64 * mmas, flop / (ms * 1e-3) / 1e12,
         cudaGetErrorString(cudaGetLastError()));
}

int main() {
  int sms; cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  float* out; long long* cyc;
  cudaMalloc(&out, sms * 384 * 4); cudaMalloc(&cyc, sms * 2 * 8);
  run<1, 0>("RS x8, wait each batch", out, cyc, sms);
  run<2, 0>("RS x8, wait each batch", out, cyc, sms);
  run<1, 1>("RS x8, wait, + ALU", out, cyc, sms);
  run<2, 1>("RS x8, wait, + ALU", out, cyc, sms);
  run<1, 2>("SS x8, wait each batch", out, cyc, sms);
  run<2, 2>("SS x8, wait each batch", out, cyc, sms);
  run<2, 3>("RS x8 + ALU, ping-pong turns", out, cyc, sms);
  run<1, 4>("RS x8, two batches in flight", out, cyc, sms);
  run<2, 4>("RS x8, two batches in flight", out, cyc, sms);
  run<1, 5>("step: SS x8 + RS x8, waits, ALU", out, cyc, sms);
  run<2, 5>("step: SS x8 + RS x8, waits, ALU, ping-pong", out, cyc, sms);
  run<2, 6>("same, a warpgroup copying into shared memory", out, cyc, sms);
  return 0;
}
