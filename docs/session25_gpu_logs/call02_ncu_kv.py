"""DEV (session 25): one fp8 (or bf16) pool decode case, B=16 ctx 4096, run 3 times (for ncu)."""
import sys
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import paged_case
from bench_kv_quant import POOLS, with_pool
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
pool = sys.argv[1] if len(sys.argv) > 1 else "fp8"
b = int(sys.argv[2]) if len(sys.argv) > 2 else 16
case = with_pool(paged_case([(4095, 1)] * b, 32, 8, 128, seed=0), POOLS[pool])
for _ in range(3):
    lib.paged_attention(**case)
torch.cuda.synchronize()
