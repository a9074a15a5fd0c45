"""Device copy and a plain torch read (sum) of 29-469 MiB, L2 flushed before each, median of 15."""
import statistics
import torch

fl = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")


def med(fn):
    ts = []
    for _ in range(15):
        fl.zero_()
        s, e = torch.cuda.Event(True), torch.cuda.Event(True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        ts.append(s.elapsed_time(e) * 1000)
    return statistics.median(ts)


for mb in [29, 58, 117, 234, 469]:
    n = mb << 20
    a = torch.empty(n, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    t = med(lambda: b.copy_(a))
    t2 = med(lambda: torch.sum(a.view(torch.float32)))
    print(f"{mb} MiB: copy {t:.1f} us ({2 * n / t / 1e6:.2f} TB/s read + write), "
          f"sum {t2:.1f} us ({n / t2 / 1e6:.2f} TB/s read)", flush=True)
