"""ncu target: production decode at B=256 ctx 512 and B=64 ctx 2048 (one call each after warm-up)."""
import sys
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import paged_case
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
for b, ctx in ((256, 512), (64, 2048)):
    case = paged_case([(ctx - 1, 1)] * b)
    for _ in range(2):
        lib.paged_attention(**case)
    torch.cuda.synchronize()
