"""ncu target: prefill 8x512 over 1536 cached keys (warp-specialized kernel), 2 calls."""
import sys
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import paged_case
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
case = paged_case([(1536, 512)] * 8)
for _ in range(3):
    lib.paged_attention(**case)
torch.cuda.synchronize()
