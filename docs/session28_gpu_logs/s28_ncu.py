"""Session 28: one decode case for Nsight Compute (argv: pool, B, ctx[, env k=v ...])."""
import os, sys
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import paged_case
from bench_kv_quant import with_pool, POOLS
from trtcompile.ops import cuda_kernels

pool, b, ctx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for kv in sys.argv[4:]:
    k, v = kv.split("=")
    os.environ[k] = v
lib = cuda_kernels.load()
case = with_pool(paged_case([(ctx - 1, 1)] * b), POOLS[pool])
for _ in range(6):
    lib.paged_attention(**case)
torch.cuda.synchronize()
