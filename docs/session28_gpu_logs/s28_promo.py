"""Session 28: the pool maps' L2 promotion (TRTC_DEV_L2PROMO) against decode time, planner and
forced variants; argv: tag, shape, variants ('promo' or 'na')."""
import os, sys
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import tuning_env
from bench_kv_quant import POOLS, pool_cases, time_cases, PREFILL_CHUNKS
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
tag, shape, mode = sys.argv[1], tuple(int(x) for x in sys.argv[2].split(",")), sys.argv[3]
if mode == "promo":
    rows = [(1, 4096), (16, 4096), (64, 4096), (64, 2048), (16, 1024)]
    variants = [(f"promo{p}", {"TRTC_DEV_L2PROMO": str(p)}) for p in (128, 256, 0, 64)] + [
        (f"4,3 ns1 p{p}", {"TRTC_DEV_L2PROMO": str(p), "TRTC_PA_DECODE_MMA": "4,3", "TRTC_PA_NSPLIT": "1"}) for p in (128, 256)]
    pools = ("bf16", "fp8")
else:
    rows = [(16, 4096), (32, 4096), (16, 2048), (8, 4096)]
    variants = [("planner", {})] + [(f"{w} ns{n}", {"TRTC_PA_DECODE_MMA": w, "TRTC_PA_NSPLIT": str(n)})
                                    for w, n in (("8,3", 1), ("8,3", 2), ("8,3", 3), ("8,3", 4), ("4,3", 2), ("4,3", 4))]
    pools = ("fp8",)
print(tag, shape, "| " + " ".join(v for v, _ in variants), flush=True)
for pool_name in pools:
    for b, ctx in rows:
        cases = pool_cases([(ctx - 1, 1)] * b, POOLS[pool_name], shape=shape)
        row = []
        for name, env in variants:
            with tuning_env(env):
                row.append(time_cases(lib, cases)[0])
        print(f"{tag:5s} {pool_name:5s} B={b:<4d} ctx={ctx:<5d}", " ".join(f"{x:6.1f}" for x in row), flush=True)
        del cases
        torch.cuda.empty_cache()
if mode == "promo" and shape[2] == 128:
    for pool_name in ("bf16", "fp8"):
        for label, seqs in PREFILL_CHUNKS[128][1:4]:
            cases = pool_cases(seqs, POOLS[pool_name], shape=shape)
            row = []
            for p in (128, 256):
                with tuning_env({"TRTC_DEV_L2PROMO": str(p)}):
                    row.append(time_cases(lib, cases)[0])
            print(f"{tag:5s} {pool_name:5s} prefill {label:24s} p128 {row[0]:6.1f} p256 {row[1]:6.1f}", flush=True)
            del cases
            torch.cuda.empty_cache()
