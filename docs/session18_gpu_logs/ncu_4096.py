"""ncu target: prefill 1x4096 causal (the warp-specialized kernel is the default there)."""
import sys
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import paged_case
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
case = paged_case([(0, int(sys.argv[1]) if len(sys.argv) > 1 else 4096)])
for _ in range(2):
    lib.paged_attention(**case)
torch.cuda.synchronize()
