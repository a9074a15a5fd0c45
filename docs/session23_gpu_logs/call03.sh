# call 3: the refined feed (index_select into rows 0..k-1). Tests, the in-process A/B of the host
# time, then W1 smollm2-135m new/base alternated x3, every process on CPUs 4-7
set -u
source .dev/pre.sh
[ -f build/full/libtrtcompile_kernels.so ] || make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
mkdir -p $OUT
echo "build ${SECONDS}s"
timeout 150 python3 -m pytest tests/gpu/test_cuda_graphs.py tests/gpu/test_runtime_gpu.py \
   -q -p no:cacheprovider -rs 2>&1 | tail -5 | tee $OUT/c3_tests.log
echo "tests ${SECONDS}s"
python3 .dev/ab_inputs.py .dev/old_cuda_graphs.py 2>&1 | head -6 | tee $OUT/c3_ab.log
R=$PWD
run() {  # run new|base ARGS...: the benchmark of that tree
  local which=$1; shift
  if [ $which = new ]; then PYTHONPATH=$R:/tmp/site taskset -c 4-7 python3 "$@"; else (cd $R/.dev/base && PYTHONPATH=$R/.dev/base:/tmp/site taskset -c 4-7 python3 "$@"); fi
}
for shape in smollm2-135m; do
  i=0
  for which in new base new base new base; do
    i=$((i + 1))
    echo "== W1 $shape $which ($i) at ${SECONDS}s" | tee -a $OUT/c3_w1_full.log
    run $which benchmarks/bench_w1.py --shape $shape --artifact /tmp/w1_$shape --repeats 5 --warmup 2 --step-times \
        2>&1 | grep -v "it/s\]" | tee -a $OUT/c3_w1_full.log | grep -E "^run|median_tokens|step timeline|^ +(prefill|decode)|steps +count"
  done
done
echo "all done ${SECONDS}s"
