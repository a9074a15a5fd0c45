# session 25 call 5: weights through pinned buffers (working tree) against HEAD's loader, 8B bf16 start-up
set -u
source .dev/pre.sh
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
mkdir -p $OUT
echo "build ${SECONDS}s"
NEW="$PYTHONPATH"; OLD="$PWD/.dev/h:$PYTHONPATH"
PYTHONPATH=$NEW python3 benchmarks/bench_w1.py --shape llama-3.1-8b --repeats 1 --warmup 0 --artifact /tmp/a8b --json $OUT/w1_8b_first_new.json > $OUT/w1_8b_first_new.log 2>&1
echo "artifact + first ${SECONDS}s"; grep -E "loaded|captured|built" $OUT/w1_8b_first_new.log
for i in 1 2; do
  for t in old new; do
    if [ $t = old ]; then P=$OLD; else P=$NEW; fi
    PYTHONPATH=$P python3 benchmarks/bench_w1.py --shape llama-3.1-8b --repeats 1 --warmup 0 --artifact /tmp/a8b --json $OUT/w1_8b_${t}_$i.json > $OUT/w1_8b_${t}_$i.log 2>&1
    python3 -c "import json; d=json.load(open('$OUT/w1_8b_${t}_$i.json')); print('$t $i', {k: round(v, 2) for k, v in d['startup_s'].items()}, round(d['median_tokens_per_s']))"
    grep -E "^loaded|^captured" $OUT/w1_8b_${t}_$i.log
  done
done
echo "== tests ${SECONDS}s"
timeout 200 python3 -m pytest -q -x tests/gpu/test_runtime_gpu.py 2>&1 | tail -4 | tee $OUT/tests.log
echo "all done ${SECONDS}s"
