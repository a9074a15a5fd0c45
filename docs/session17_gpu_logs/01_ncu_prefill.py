"""ncu target: prefill 8x512 causal (production) then SDPA flash / enable_gqa on the same shape."""
import sys
sys.path.insert(0, "benchmarks")
import torch
import torch.nn.functional as F
from bench_kernels import paged_case
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
case = paged_case([(0, 512)] * 8)
for _ in range(2):
    lib.paged_attention(**case)
torch.cuda.synchronize()
q = torch.randn(8, 32, 512, 128, device="cuda", dtype=torch.bfloat16)
k = torch.randn(8, 8, 512, 128, device="cuda", dtype=torch.bfloat16)
v = torch.randn_like(k)
ke, ve = k.repeat_interleave(4, 1), v.repeat_interleave(4, 1)
for _ in range(2):
    F.scaled_dot_product_attention(q, ke, ve, is_causal=True)
    F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
torch.cuda.synchronize()
