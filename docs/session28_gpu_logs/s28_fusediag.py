"""Session 28: fused 4-warp decode beyond one wave at head_dim 64: errors against the reference
and against the kernels after kv_write (the planned-grid test's seqs)."""
import os, sys
sys.path.insert(0, "tests/gpu")
import torch
import test_kernels as tk
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
for dtype in (torch.float16, torch.bfloat16):
    for batch in (40, 48, 56, 64, 72):
        seqs = [((37 * i) % 700 + (i % 3) * 16, 1) for i in range(batch)]
        case = tk._make_case(seqs, 32, 8, 64, 16, dtype, seed=batch + 64)
        res = {}
        for fused in ("1", "0"):
            os.environ["TRTC_PA_DECODE_FUSED"] = fused
            out, ref, kv, kv_ref = tk._run_both(lib, dict(case, kv_cache=case["kv_cache"].clone()))
            res[fused] = (out.float(), ref.float())
        e_f = (res["1"][0] - res["1"][1]).abs().max().item()
        e_u = (res["0"][0] - res["0"][1]).abs().max().item()
        e_fu = (res["1"][0] - res["0"][0]).abs().max().item()
        print(f"{str(dtype):15s} B={batch:<3d} fused-ref {e_f:.5f} unfused-ref {e_u:.5f} fused-unfused {e_fu:.5f}"
              f" (atol {tk.ATOL[dtype]}, /4 {tk.ATOL[dtype] / 4})", flush=True)
