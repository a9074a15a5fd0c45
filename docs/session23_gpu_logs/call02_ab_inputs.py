"""Host time of one decode step's input handling, old (37ea976: copies per input + padding
fills; sampled ids fed before the call) against new (staged in one pinned copy), same process,
alternated. A trivial captured graph (one kernel) so only host work is timed."""
import sys, time, statistics, importlib.util
import torch
sys.path.insert(0, ".")
from trtcompile import io_names as io
from trtcompile.runtime.cuda_graphs import DecodeGraphs
from trtcompile.runtime.step_inputs import SampledFeed
from trtcompile.runtime.sampler import upload

spec = importlib.util.spec_from_file_location("old_cuda_graphs", "/tmp/old_cuda_graphs.py" if len(sys.argv) < 2 else sys.argv[1])
old_mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(old_mod)


class Tiny:
    def execute(self, feeds):
        return (feeds[io.INPUT_IDS] + feeds[io.BLOCK_TABLES][:, 0]).float()[:, None]


def old_feed(tensors, feed):
    tokens = feed.tokens
    index = upload(feed.dst + feed.src, tokens.device).view(2, -1)
    ids = tensors[io.INPUT_IDS].to(tokens.device, non_blocking=True)
    ids[index[0]] = tokens[index[1]].to(ids.dtype)
    t = dict(tensors); t[io.INPUT_IDS] = ids
    return t


def make(s, width, max_blocks):
    g = torch.Generator().manual_seed(0)
    r = lambda *sh: torch.randint(1, 1000, sh, generator=g, dtype=torch.int32)
    return {io.INPUT_IDS: r(s), io.POSITIONS: r(s), io.SEQ_LENS: r(s), io.SLOT_MAPPING: r(s),
            io.QUERY_START_LOC: torch.arange(s + 1, dtype=torch.int32), io.BLOCK_TABLES: r(s, width)}


kv = torch.zeros(1, device="cuda")
new = DecodeGraphs(Tiny(), kv, 256, 64); new.capture_all()
old = old_mod.DecodeGraphs(Tiny(), kv, 256, 64); old.capture_all()
tokens = torch.arange(300, device="cuda")
for s, label, src in ((200, "prefix feed", list(range(200))), (200, "gathered feed", list(range(1, 201))),
                      (200, "no feed", None), (16, "prefix feed", list(range(16))), (16, "gathered feed", list(range(1, 17)))):
    t = make(s, 20, 64)
    feed = SampledFeed(list(range(s)), src, tokens) if src else None
    times = {"old": [], "new": []}
    for rnd in range(20):
        for which in ("old", "new") if rnd % 2 else ("new", "old"):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(50):
                if which == "new":
                    new.run(t, feed)
                else:
                    old.run(old_feed(t, feed) if feed else t)
            t1 = time.perf_counter()
            torch.cuda.synchronize()
            times[which].append((t1 - t0) / 50 * 1e6)
    o, n = statistics.median(times["old"]), statistics.median(times["new"])
    print(f"S={s:4d} {label:14s} host us per step: old {o:6.1f}  new {n:6.1f}  (min {min(times['old']):.1f} / {min(times['new']):.1f})", flush=True)
# correctness: same graph outputs
t = make(200, 20, 64); feed = SampledFeed(list(range(200)), list(range(1, 201)), tokens)
a = old.run(old_feed(t, feed)).clone(); b = new.run(t, feed).clone()
print("same outputs:", torch.equal(a, b))
import cProfile, pstats
t = make(200, 20, 64); feed = SampledFeed(list(range(200)), list(range(1, 201)), tokens)
for which, fn in (("new", lambda: new.run(t, feed)), ("old", lambda: old.run(old_feed(t, feed)))):
    pr = cProfile.Profile(); pr.enable()
    for _ in range(300):
        fn()
    pr.disable(); torch.cuda.synchronize()
    print("== profile", which); pstats.Stats(pr).sort_stats("tottime").print_stats(12)
