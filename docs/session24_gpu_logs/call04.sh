# call 4: decode graphs per batch bucket and block-table width (final form), tables as wide as
# each step's longest. Tests, the in-process A/B of input handling (session 23's DecodeGraphs
# against this tree's), W1 llama-3.2-1b at max_model_len 32768 and 1024: new / s23 alternated
set -u
source .dev/pre.sh
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
mkdir -p $OUT
echo "build ${SECONDS}s"
timeout 200 python3 -m pytest tests/gpu/test_cuda_graphs.py tests/gpu/test_runtime_gpu.py tests/runtime/test_decode_graph_widths.py \
   -q -p no:cacheprovider -rs 2>&1 | tail -5 | tee $OUT/c4_tests.log
echo "tests ${SECONDS}s"
python3 .dev/ab_tables.py 2>&1 | tee $OUT/c4_ab_tables.log
echo "ab ${SECONDS}s"
R=$PWD
run() {  # run new|s23 ARGS...: the benchmark of that tree
  local which=$1; shift
  if [ $which = new ]; then PYTHONPATH=$R:/tmp/site taskset -c 4-7 python3 "$@"; else (cd $R/.dev/s23 && PYTHONPATH=$R/.dev/s23:/tmp/site taskset -c 4-7 python3 "$@"); fi
}
for len in 32768 1024; do
  i=0
  for which in new s23 new s23; do
    i=$((i + 1))
    [ $len = 1024 ] && [ $i -gt 2 ] && break
    echo "== W1 llama-3.2-1b max_model_len $len $which ($i) at ${SECONDS}s" | tee -a $OUT/c4_w1.log
    len_arg="--max-model-len $len"; [ $which = s23 ] && len_arg=""   # (built by the first run)
    run $which benchmarks/bench_w1.py --shape llama-3.2-1b --artifact /tmp/w1_1b_$len $len_arg --repeats 5 --warmup 2 --step-times \
        2>&1 | grep -v "it/s\]" | tee -a $OUT/c4_w1.log | grep -E "^run|median_tokens|load_and_capture|to_first_token|step timeline|^ +(prefill|decode)|steps +count|Error|error"
  done
done
echo "all done ${SECONDS}s"
