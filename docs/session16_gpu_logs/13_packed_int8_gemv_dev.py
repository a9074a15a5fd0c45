"""Session 16 call 13: int8 GEMV on the repacked (wgmma) layout (TRTC_DEV_PACKED8=v) vs the shipped GEMV vs bf16."""
import os, sys
sys.path.insert(0, "benchmarks")
import torch
from bench_quant import Timer, quantized_weight
from trtcompile.ops import cuda_kernels, quant_kernels

lib = cuda_kernels.load()
timer = Timer(50)
VARS = [1, 2, 3, 4, 5, 6]   # W,D: 4,2 / 4,4 / 8,2 / 2,4 / 4,3 / 8,4

def packed_call(x, packed, s, y, n, k):
    return lib._woq(x.data_ptr(), x.stride(0), packed.data_ptr(), s.data_ptr(), None, None,
                    y.data_ptr(), x.shape[0], n, k, 8, 0, 2, torch.cuda.current_stream().cuda_stream)

for (k, n) in ((4096, 14336), (14336, 4096), (4096, 28672), (4096, 6144)):
    q, s, _ = quantized_weight(k, n, 8, 0, False)
    packed = quant_kernels.repack_for_wgmma(q, 8)
    w = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
    print(f"== int8 {k}x{n} (us; x = bf16 / time)")
    for m in (1, 2, 4, 8, 16, 32):
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        bf = timer.us(lambda: x @ w)
        os.environ.pop("TRTC_DEV_PACKED8", None)
        ref = lib.weight_only_gemm(x, q, s, None, 8, 0)
        nat = timer.us(lambda: lib.weight_only_gemm(x, q, s, None, 8, 0))
        cells = []
        for v in VARS:
            os.environ["TRTC_DEV_PACKED8"] = str(v)
            y = torch.empty(m, n, device="cuda", dtype=torch.bfloat16)
            rc = packed_call(x, packed, s, y, n, k)
            torch.cuda.synchronize()
            err = ((y.float() - ref.float()).abs().max() / ref.float().abs().max()).item()
            t = timer.us(lambda: packed_call(x, packed, s, y, n, k))
            cells.append(f"v{v} {t:5.1f} ({bf / t:.2f}x){' ERR %.2g' % err if err > 1e-2 or rc else ''}")
        os.environ.pop("TRTC_DEV_PACKED8", None)
        print(f"M={m:2d} bf16 {bf:5.1f} shipped {nat:5.1f} ({bf / nat:.2f}x) | " + "  ".join(cells), flush=True)
