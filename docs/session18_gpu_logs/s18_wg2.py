"""Session 18 dev: persistent warp-specialized prefill vs the libraries given (same process)."""
import os, sys
from pathlib import Path
# the repo's benchmarks/ (run from the repo root, e.g. python3 docs/session18_gpu_logs/s18_wg2.py LIB:MODES ...)
sys.path.insert(0, str(next(p for p in Path(__file__).resolve().parents if (p / "benchmarks").is_dir()) / "benchmarks"))
import torch
import bench_kernels as bk
from trtcompile.ops import cuda_kernels

ALL = {"default": {}, "wg2": {"TRTC_PA_PREFILL_WG": "2"}, "wg1": {"TRTC_PA_PREFILL_WG": "1"},
       "wg2notma": {"TRTC_PA_PREFILL_WG": "2", "TRTC_PA_PREFILL_TMA": "0"},
       "wg2grid": {"TRTC_PA_PREFILL_WG": "2", "TRTC_PA_PREFILL_CTAS": "100000"},
       "wg2grid_notma": {"TRTC_PA_PREFILL_WG": "2", "TRTC_PA_PREFILL_CTAS": "100000", "TRTC_PA_PREFILL_TMA": "0"},
       "wg2nopp": {"TRTC_PA_PREFILL_WG": "2", "TRTC_PA_PREFILL_PINGPONG": "0"}}
for v in range(1, 9):
    ALL[f"v{v}"] = {"TRTC_PA_PREFILL_WG": "2", "TRTC_DEV_VAR": str(v)}
libs, lib_modes = [], {}
for arg in sys.argv[1:]:  # PATH[:mode,mode]
    path, _, ms = arg.partition(":")
    libs.append((path, cuda_kernels.KernelLibrary(Path(path))))
    lib_modes[path] = ms.split(",") if ms else ["default", "wg2", "wg1"]
cases = [(32, 128, 0), (16, 256, 0), (8, 512, 0), (4, 1024, 0), (1, 4096, 0), (8, 512, 1536), (2, 512, 7680)]
if os.environ.get("S18_QUICK"):
    cases = [(8, 512, 0), (8, 512, 1536), (1, 4096, 0)]
modes = {"default": {}, "wg2": {"TRTC_PA_PREFILL_WG": "2"}, "wg1": {"TRTC_PA_PREFILL_WG": "1"}}
for n, new, cached in cases:
    case = bk.paged_case([(cached, new)] * n)
    flops = 4 * n * 32 * 128 * new * (cached + new / 2)
    line = f"{n}x{new}+{cached}:"
    if cached == 0:
        ref, _ = bk.sdpa_prefill_us(n, new)
        line += f" SDPA {ref:.1f} |"
    outs = {}
    for name, lib in libs:
        for m in lib_modes[name]:
            env = ALL[m]
            os.environ.update(env)
            out = lib.paged_attention(**case).clone()
            t = bk.gpu_time_us(lambda: lib.paged_attention(**case), inner=5)
            for k in env:
                del os.environ[k]
            outs[(name, m)] = out
            tag = Path(name).parent.name
            line += f" {tag}/{m} {t:.1f}" + (f" ({t / ref:.2f}x)" if cached == 0 else "")
            print("  ..", tag, m, f"{t:.1f}", flush=True)
    ref_out = outs[(libs[-1][0], lib_modes[libs[-1][0]][0])].float()
    diffs = {f"{Path(k[0]).parent.name}/{k[1]}": (v.float() - ref_out).abs().max().item() for k, v in outs.items()}
    print(line, flush=True)
    print("   maxdiff vs last lib default:", {k: round(v, 4) for k, v in diffs.items()}, flush=True)
