"""Session 26 dev A/B: decode over bf16 / fp8 / int8 pools, several kernel libraries interleaved.
python3 .dev/s26_ab.py name=path ...   (first is the reference for the output check)"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, "benchmarks")
from bench_kernels import gpu_times_us  # noqa: E402
from bench_kv_quant import POOLS, cycled_call, kv_bytes, pool_cases  # noqa: E402
from trtcompile.ops import cuda_kernels  # noqa: E402

libs = {}
for arg in sys.argv[1:]:
    name, path = arg.split("=", 1)
    libs[name] = cuda_kernels.KernelLibrary(Path(path))
names = list(libs)
print(torch.cuda.get_device_name(), names, flush=True)

# output check: every lib against the first on odd lengths, fp8 and int8 and bf16
for seqs in ([(4095, 1)] * 3, [(37, 1), (1000, 1), (5, 1), (2047, 1)], [(4095, 1)] * 64, [(511, 1)] * 256):
    for pn, p in POOLS.items():
        case = pool_cases(seqs, p, inner_min=1)[0]
        outs = {}
        for n, lib in libs.items():
            res = lib.paged_attention(**case)
            outs[n] = (res[0] if isinstance(res, tuple) else res).float().clone()
        ref = outs[names[0]]
        diffs = " ".join(f"{n}:{(o - ref).abs().max().item():.2e}" for n, o in outs.items() if n != names[0])
        nan = any(torch.isnan(o).any().item() for o in outs.values())
        print(f"check B={len(seqs)} {pn:5s} {diffs} nan={nan}", flush=True)

print(f"{'case':22s} {'pool':5s} " + " ".join(f"{n:>9s}" for n in names) + "   vs bf16(" + names[0] + ")")
for b, ctx in ((1, 4096), (16, 4096), (64, 4096), (128, 4096), (256, 512), (64, 1024)):
    cases = {pn: pool_cases([(ctx - 1, 1)] * b, p) for pn, p in POOLS.items()}
    inner = max(len(c) for c in cases.values())
    runs = {}
    for pn in POOLS:
        for n, lib in libs.items():
            runs[(pn, n)] = cycled_call(lib, cases[pn])
    t = gpu_times_us(runs, inner=inner, repeats=30)
    bf = t[("bf16", names[0])]
    for pn in POOLS:
        row = " ".join(f"{t[(pn, n)]:9.1f}" for n in names)
        ratios = " ".join(f"{bf / t[(pn, n)]:5.2f}x" for n in names)
        print(f"B={b:<3d} ctx={ctx:<5d}      {pn:5s} {row}   {ratios}", flush=True)
    del cases
    torch.cuda.empty_cache()
