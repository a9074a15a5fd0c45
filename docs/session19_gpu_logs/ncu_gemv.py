"""ncu target: weight-only GEMV, 4096 x 14336, args: bits m (lib from TRTCOMPILE_KERNELS_LIB)."""
import sys
sys.path.insert(0, "benchmarks")
import torch
from bench_quant import quantized_weight
from trtcompile.ops import cuda_kernels

bits, m = int(sys.argv[1]), int(sys.argv[2])
lib = cuda_kernels.load()
group = 0 if bits == 8 else 128
q, s, z = quantized_weight(4096, 14336, bits, group, bits == 4)
x = torch.randn(m, 4096, device="cuda", dtype=torch.bfloat16)
flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
for _ in range(3):
    flush.zero_()
    lib.weight_only_gemm(x, q, s, z, bits, group)
torch.cuda.synchronize()
