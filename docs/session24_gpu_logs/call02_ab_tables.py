"""A decode step's input handling, session 23's DecodeGraphs (whole table rows up to the
bucket) against this tree's (tables packed to the step's width, then one device copy), same
process, alternated; a trivial captured graph, so the time is the inputs' own. Per step: host
time (the run() call) and wall time of 50 steps up to the GPU's end."""
import importlib.util
import statistics
import sys
import time

import torch

sys.path.insert(0, ".")
from trtcompile import io_names as io  # noqa: E402
from trtcompile.runtime.cuda_graphs import DecodeGraphs  # noqa: E402
from trtcompile.runtime.step_inputs import SampledFeed  # noqa: E402

spec = importlib.util.spec_from_file_location("old_cuda_graphs", ".dev/s23_cuda_graphs.py")
old_mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(old_mod)


class Tiny:
    def execute(self, feeds):
        return (feeds[io.INPUT_IDS] + feeds[io.BLOCK_TABLES][:, 0]).float()[:, None]


def make(s, width):
    g = torch.Generator().manual_seed(0)
    r = lambda *sh: torch.randint(1, 1000, sh, generator=g, dtype=torch.int32)  # noqa: E731
    return {io.INPUT_IDS: r(s), io.POSITIONS: r(s), io.SEQ_LENS: r(s), io.SLOT_MAPPING: r(s),
            io.QUERY_START_LOC: torch.arange(s + 1, dtype=torch.int32), io.BLOCK_TABLES: r(s, width)}


kv = torch.zeros(1, device="cuda")
tokens = torch.arange(600, device="cuda")
print(torch.cuda.get_device_name())
for max_blocks, widths in ((64, (20, 64)), (2048, (32, 2048)), (8192, (32, 8192))):
    graphs = {}
    for name, mod in (("s23", old_mod), ("new", sys.modules[DecodeGraphs.__module__])):
        graphs[name] = mod.DecodeGraphs(Tiny(), kv, 256, max_blocks)
        graphs[name].capture_all()
    for width in widths:
        for s in (256, 16):
            t = make(s, width)
            feed = SampledFeed(list(range(s)), list(range(s)), tokens)
            host, wall = {"s23": [], "new": []}, {"s23": [], "new": []}
            for rnd in range(12):
                for which in ("s23", "new") if rnd % 2 else ("new", "s23"):
                    g = graphs[which]
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    for _ in range(50):
                        g.run(t, feed)
                    t1 = time.perf_counter()
                    torch.cuda.synchronize()
                    t2 = time.perf_counter()
                    host[which].append((t1 - t0) / 50 * 1e6)
                    wall[which].append((t2 - t0) / 50 * 1e6)
            a, b = graphs["s23"].run(t, feed).clone(), graphs["new"].run(t, feed).clone()
            print(f"max_blocks {max_blocks:5d} width {width:5d} S={s:3d}: host us/step s23 "
                  f"{statistics.median(host['s23']):7.1f} new {statistics.median(host['new']):7.1f}"
                  f" | wall s23 {statistics.median(wall['s23']):7.1f} new "
                  f"{statistics.median(wall['new']):7.1f} | same outputs {torch.equal(a, b)}",
                  flush=True)
    del graphs
