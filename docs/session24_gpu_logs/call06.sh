# call 6: W1 llama-3.2-1b at the default limits (max_model_len 1024), session 23's tree first,
# alternated four times with this tree (253bfb1)
set -u
source .dev/pre.sh
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
mkdir -p $OUT
echo "build ${SECONDS}s"
R=$PWD
run() {  # run new|s23 ARGS...: the benchmark of that tree
  local which=$1; shift
  if [ $which = new ]; then PYTHONPATH=$R:/tmp/site taskset -c 4-7 python3 "$@"; else (cd $R/.dev/s23 && PYTHONPATH=$R/.dev/s23:/tmp/site taskset -c 4-7 python3 "$@"); fi
}
for which in s23 new s23 new s23 new s23 new; do
  echo "== W1 llama-3.2-1b max_model_len 1024 $which at ${SECONDS}s" | tee -a $OUT/c6_w1.log
  run $which benchmarks/bench_w1.py --shape llama-3.2-1b --artifact /tmp/w1_1b --repeats 5 --warmup 2 --step-times \
      2>&1 | grep -v "it/s\]" | tee -a $OUT/c6_w1.log | grep -E "median_tokens|^ +decode (1-32|225-256)"
done
echo "all done ${SECONDS}s"
