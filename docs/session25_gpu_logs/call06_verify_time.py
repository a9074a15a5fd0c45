"""DEV (session 25): an artifact's checksum verification, files hashed in turn (as before) and
in parallel threads (now); then LLM start-up with verification (what `trtcompile run` does)."""
import sys, time
from pathlib import Path
from trtcompile.artifact import load_artifact, sha256, sha256_all

art = Path(sys.argv[1])
files = sorted(p for p in art.rglob("*") if p.is_file() and p.name != "manifest.json")
print(len(files), "files,", sum(p.stat().st_size for p in files) / 2**30, "GiB")
for rnd in range(2):
    t = time.perf_counter(); [sha256(p) for p in files]; seq = time.perf_counter() - t
    t = time.perf_counter(); sha256_all(files); par = time.perf_counter() - t
    t = time.perf_counter(); load_artifact(art, verify=True); full = time.perf_counter() - t
    print(f"round {rnd}: files in turn {seq:.2f} s, in parallel {par:.2f} s, load_artifact(verify) {full:.2f} s")
