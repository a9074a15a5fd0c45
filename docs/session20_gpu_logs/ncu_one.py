import os, sys
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import paged_case
from trtcompile.ops import cuda_kernels
lib = cuda_kernels.load()
b, ctx = int(os.environ.get("B", "64")), int(os.environ.get("CTX", "2048"))
case = paged_case([(ctx - 1, 1)] * b)
for tma in "10":
    os.environ["TRTC_PA_DECODE_TMA"] = tma
    for _ in range(3):
        lib.paged_attention(**case)
torch.cuda.synchronize()
