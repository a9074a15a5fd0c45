# session 25 call 6: sharded weights, parallel checksum verification, start-up with verification (8B bf16)
set -u
source .dev/pre.sh
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
mkdir -p $OUT
echo "build ${SECONDS}s"
python3 benchmarks/bench_w1.py --shape llama-3.1-8b --repeats 1 --warmup 0 --artifact /tmp/a8b --json $OUT/w1_8b.json > $OUT/w1_8b.log 2>&1
echo "artifact + W1 ${SECONDS}s"; grep -E "^loaded|^captured|^built|^run" $OUT/w1_8b.log; ls -la /tmp/a8b | head -30
python3 .dev/verify_time.py /tmp/a8b 2>&1 | tee $OUT/verify_time.log
for i in 1 2; do
python3 - <<'PY' 2>&1 | tee -a $OUT/startup_verified.log
import time
t0 = time.perf_counter()
from trtcompile.llm import LLM
llm = LLM("/tmp/a8b", device="cuda", log=print)
llm.generate([[1, 2, 3, 4]], None)
print(f"start-up with verification, to the first token: {time.perf_counter() - t0:.2f} s (imports included)")
PY
done
echo "all done ${SECONDS}s"
