# call 5: committed tree (253bfb1) against session 23's (08033ea) at the default W1 limits
# (max_model_len 1024: one table width), llama-3.2-1b new / s23 x2, then smollm2-135m at
# max_model_len 32768 new / s23
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
for spec in "llama-3.2-1b 1024 new" "llama-3.2-1b 1024 s23" "llama-3.2-1b 1024 new" "llama-3.2-1b 1024 s23" \
            "smollm2-135m 32768 new" "smollm2-135m 32768 s23"; do
  set -- $spec; shape=$1; len=$2; which=$3
  echo "== W1 $shape max_model_len $len $which at ${SECONDS}s" | tee -a $OUT/c5_w1.log
  len_arg="--max-model-len $len"; [ $which = s23 ] && len_arg=""   # (built by the first run)
  run $which benchmarks/bench_w1.py --shape $shape --artifact /tmp/w1_${shape}_$len $len_arg --repeats 5 --warmup 2 --step-times \
      2>&1 | grep -v "it/s\]" | tee -a $OUT/c5_w1.log | grep -E "^run|median_tokens|load_and_capture|to_first_token|step timeline|^ +(prefill|decode)|steps +count|Error|error"
done
echo "all done ${SECONDS}s"
