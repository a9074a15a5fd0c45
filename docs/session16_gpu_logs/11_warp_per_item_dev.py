"""Session 16 call 11: warp-per-item decode (TRTC_DEV_WARP) vs the planner's kernel vs SDPA; correctness."""
import os, sys, math
sys.path.insert(0, "benchmarks")
import torch
from bench_kernels import paged_case, sdpa_decode_us, gpu_time_us
from trtcompile.ops import cuda_kernels

lib = cuda_kernels.load()
MODES = ["off", "2", "3", "4"]

def setp(v):
    os.environ.pop("TRTC_DEV_WARP", None)
    if v != "off":
        os.environ["TRTC_DEV_WARP"] = v

# correctness: identical-ish outputs and identical pools, varied lengths, splits, windows
bad = 0
for seed, (lens, nsplit) in enumerate([([2048] * 64, None), ([777, 5, 16, 17, 300, 1, 4096, 33] * 9, None),
                                     ([1000] * 7, "3"), ([513] * 300, None), ([64] * 2000, None),
                                     ([4096, 12, 4000], "8"), ([31, 32, 33, 48] * 40, "2")]):
    case = paged_case([(n - 1, 1) for n in lens], seed=seed)
    if seed in (1, 5):
        case["sliding_window"] = 100
    outs, pools = [], []
    for v in MODES:
        setp(v)
        if nsplit: os.environ["TRTC_PA_NSPLIT"] = nsplit
        c = dict(case, kv_cache=case["kv_cache"].clone())
        outs.append(lib.paged_attention(**c).float())
        pools.append(c["kv_cache"])
        os.environ.pop("TRTC_PA_NSPLIT", None)
    for i in (1, 2, 3):
        err = (outs[i] - outs[0]).abs().max().item()
        same_pool = torch.equal(pools[i], pools[0])
        ok = err <= 4e-3 and same_pool and torch.isfinite(outs[i]).all().item()
        bad += not ok
        print(f"check {seed} mode {MODES[i]}: max |diff| {err:.3g}, pool equal {same_pool} {'ok' if ok else 'BAD'}")
setp("off")
print("checks failed:", bad, flush=True)

shapes = [(64, 2048), (256, 1024), (256, 512), (128, 512), (16, 4096), (1, 4096), (512, 256)]
cases = {s: paged_case([(s[1] - 1, 1)] * s[0]) for s in shapes}
res = {}
for rnd in range(2):
    for s in shapes:
        res.setdefault((s, "sdpa"), []).append(sdpa_decode_us(*s)[0])
        for v in MODES:
            setp(v)
            res.setdefault((s, v), []).append(gpu_time_us(lambda: lib.paged_attention(**cases[s])))
setp("off")
print("decode bf16 (us, two rounds; ratio vs SDPA of the same round)")
for s in shapes:
    r = res[(s, "sdpa")]
    print(f"B={s[0]} ctx={s[1]} SDPA {r[0]:.1f}/{r[1]:.1f}")
    for v in MODES:
        t = res[(s, v)]
        print(f"   warp={v:4} {t[0]:7.1f} {t[1]:7.1f}  ratio {t[0]/r[0]:.3f} {t[1]/r[1]:.3f}", flush=True)
# W1-like mixed lengths
import random
rng = random.Random(0)
mixed = [rng.randint(32, 768) for _ in range(256)]
case = paged_case([(n - 1, 1) for n in mixed])
for v in MODES:
    setp(v)
    print(f"mixed 256 seqs 32..768, warp={v}: {gpu_time_us(lambda: lib.paged_attention(**case)):.1f} us")
