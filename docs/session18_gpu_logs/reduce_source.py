"""Reduce an ncu --page source --csv export to the SASS lines holding >= 0.2 % of the samples."""
import csv, sys
rows = list(csv.reader(open(sys.argv[1], errors="replace")))
hdr_i = next(i for i, r in enumerate(rows) if "Source" in r and any("Warp Stall Sampling (All" in c for c in r))
hdr = rows[hdr_i]
si = next(i for i, c in enumerate(hdr) if c.startswith("Warp Stall Sampling (All"))
body = [r for r in rows[hdr_i + 1:] if len(r) == len(hdr)]
def num(x):
    try: return float(x)
    except ValueError: return 0.0
total = sum(num(r[si]) for r in body)
keep = [i for i, c in enumerate(hdr) if c in ("# Address", "Address", "Source") or c.startswith("Warp Stall Sampling")]
stall_cols = [i for i, c in enumerate(hdr) if c.startswith("stall_") or "Stall" in c and i not in keep]
print("total samples", total)
print("\t".join(["pct"] + [hdr[i] for i in keep]))
for r in body:
    s = num(r[si])
    if s >= 0.002 * total:
        print("\t".join([f"{100 * s / total:.2f}"] + [r[i] for i in keep]))
