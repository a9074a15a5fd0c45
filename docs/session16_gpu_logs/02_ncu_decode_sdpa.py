"""ncu target: production decode (kv_write + decode kernel) and SDPA at B=64 ctx 2048 and B=256 ctx 1024."""
import sys
sys.path.insert(0, "benchmarks")
import torch
import torch.nn.functional as F
from bench_kernels import paged_case
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
for b, ctx in ((64, 2048), (256, 1024)):
    case = paged_case([(ctx - 1, 1)] * b)
    q = torch.randn(b, 32, 1, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(b, 8, ctx, 128, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    qg = q.view(b, 8, 4, 128)
    for _ in range(2):
        lib.paged_attention(**case)
        F.scaled_dot_product_attention(qg, k, v)
    torch.cuda.synchronize()
