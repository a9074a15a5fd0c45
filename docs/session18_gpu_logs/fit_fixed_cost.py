"""Fit time = a + b * CTA-steps over the new-token prefill cases (n x new, causal), for a kernel
named in a sweep log of s18_wg2.py: b is the cost of a key tile; a holds the CTAs' own cost and
kv_write's (timed with the kernel; every case has 4096 tokens, so it is the same in each).

    python3 fit_fixed_cost.py LOG LIB/MODE ROWS KEYS SLOTS_PER_SM
(ROWS query rows and KEYS keys a CTA step; SLOTS_PER_SM resident CTAs a SM; 32 query heads)."""
import re, sys
import numpy as np

log, tag, rows, keys, slots = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
pts = []
for line in open(log):
    m = re.match(r"(\d+)x(\d+)\+0:", line)
    t = re.search(re.escape(tag) + r" ([\d.]+)", line)
    if not (m and t):
        continue
    n, new = int(m.group(1)), int(m.group(2))
    tiles = -(-new // rows)
    ctas = n * tiles * 32
    steps = n * 32 * sum(-(-min(new, (i + 1) * rows) // keys) for i in range(tiles))
    pts.append((n, new, ctas, steps, float(t.group(1))))
ctas = {p[2] for p in pts}
assert len(ctas) == 1, "the fit assumes one CTA count"
A = np.array([[1.0, p[3]] for p in pts])
y = np.array([p[4] for p in pts])
(a, b), *_ = np.linalg.lstsq(A, y, rcond=None)
c = pts[0][2]
sms = 132
print(f"{tag}: {c} CTAs; time = {a:.1f} us + {b * 1e3:.2f} ns x CTA-steps")
kv_write = 12.5  # us for 4096 tokens (session 17's ncu on 8 x 512)
print(f"  per CTA, on its slot: {(a - kv_write) * sms * slots / c:.1f} us fixed (intercept less kv_write's "
      f"{kv_write} us); per step {b * sms * slots:.2f} us")
for n, new, _, steps, t in pts:
    print(f"  {n}x{new}: {steps} CTA-steps, measured {t:.1f}, fit {a + b * steps:.1f}")
