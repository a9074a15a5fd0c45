import csv, sys, collections
rows = []
with open(sys.argv[1]) as f:
    lines = [l for l in f if l.startswith('"')]
r = csv.reader(lines)
hdr = None
for row in r:
    if row[0] == "Address":
        hdr = row; continue
    if hdr is None or row[0] == "Kernel Name": continue
    rows.append(dict(zip(hdr, row)))
stall_cols = [h for h in hdr if h.startswith("stall_") and "Not Issued" not in h]
tot = collections.Counter()
ops = collections.Counter(); opsamp = collections.Counter()
n_exec = 0
for d in rows:
    for c in stall_cols:
        tot[c] += int(d[c] or 0)
    op = d["Source"].split()[0] if not d["Source"].strip().startswith("@") else d["Source"].split()[1]
    op = op.split(".")[0]
    ex = int(d["Instructions Executed"] or 0)
    ops[op] += ex; opsamp[op] += int(d["Warp Stall Sampling (All Samples)"] or 0)
    n_exec += ex
S = sum(tot.values())
print("samples", S, "instr executed", n_exec)
for c, v in tot.most_common(12): print(f"  {c:28s} {v/S*100:5.1f}%")
print("by opcode (executed, % samples):")
for op, v in ops.most_common(25): print(f"  {op:12s} {v:9d} {opsamp[op]/S*100:5.1f}%")
# top instructions by samples
print("top instructions:")
for d in sorted(rows, key=lambda d: -int(d["Warp Stall Sampling (All Samples)"] or 0))[:25]:
    top = max(stall_cols, key=lambda c: int(d[c] or 0))
    print(f"  {d['Address'][-5:]} {d['Warp Stall Sampling (All Samples)']:>6s} {top[6:]:12s} ex={d['Instructions Executed']:>7s} {d['Source'].strip()[:70]}")
