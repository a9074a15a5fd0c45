# call 3: block tables whole or packed by the ids saved (final form). Tests, the in-process A/B
# of input handling, W1 at max_model_len 32768 (2048 blocks a table): new / s23 alternated
set -u
source .dev/pre.sh
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
mkdir -p $OUT
echo "build ${SECONDS}s"
timeout 150 python3 -m pytest tests/gpu/test_cuda_graphs.py tests/gpu/test_runtime_gpu.py \
   -q -p no:cacheprovider -rs 2>&1 | tail -5 | tee $OUT/c3_tests.log
echo "tests ${SECONDS}s"
python3 .dev/ab_tables.py 2>&1 | tee $OUT/c3_ab_tables.log
echo "ab ${SECONDS}s"
R=$PWD
run() {  # run new|s23 ARGS...: the benchmark of that tree
  local which=$1; shift
  if [ $which = new ]; then PYTHONPATH=$R:/tmp/site taskset -c 4-7 python3 "$@"; else (cd $R/.dev/s23 && PYTHONPATH=$R/.dev/s23:/tmp/site taskset -c 4-7 python3 "$@"); fi
}
for shape in smollm2-135m llama-3.2-1b; do
  i=0
  for which in new s23 new s23; do
    i=$((i + 1))
    [ $shape = llama-3.2-1b ] && [ $i -gt 2 ] && break
    echo "== W1 $shape max_model_len 32768 $which ($i) at ${SECONDS}s" | tee -a $OUT/c3_w1_32k.log
    len_arg="--max-model-len 32768"; [ $which = s23 ] && len_arg=""   # (built by the first run)
    run $which benchmarks/bench_w1.py --shape $shape --artifact /tmp/w1_32k_$shape $len_arg --repeats 5 --warmup 2 --step-times \
        2>&1 | grep -v "it/s\]" | tee -a $OUT/c3_w1_32k.log | grep -E "^run|median_tokens|step timeline|^ +(prefill|decode)|steps +count|Error|error"
  done
done
echo "all done ${SECONDS}s"
