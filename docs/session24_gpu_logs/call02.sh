# call 2: block tables packed to the step's width. Tests, the in-process A/B of input handling
# (session 23's DecodeGraphs against this tree's), W1 llama-3.2-1b new / s23 / new / s23, and
# the fp8 KV decode kernel's split counts at B = 1
set -u
source .dev/pre.sh
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
mkdir -p $OUT
echo "build ${SECONDS}s"
timeout 150 python3 -m pytest tests/gpu/test_cuda_graphs.py tests/gpu/test_runtime_gpu.py \
   -q -p no:cacheprovider -rs 2>&1 | tail -5 | tee $OUT/c2_tests.log
echo "tests ${SECONDS}s"
python3 .dev/ab_tables.py 2>&1 | tee $OUT/c2_ab_tables.log
echo "ab ${SECONDS}s"
python3 benchmarks/bench_kv_quant.py --sweep --batches 1 --pools bf16,fp8 --splits 1,2,4,8,16,24,32 2>&1 \
  | tee $OUT/c2_kv_sweep_b1.log
echo "sweep ${SECONDS}s"
R=$PWD
run() {  # run new|s23 ARGS...: the benchmark of that tree
  local which=$1; shift
  if [ $which = new ]; then PYTHONPATH=$R:/tmp/site taskset -c 4-7 python3 "$@"; else (cd $R/.dev/s23 && PYTHONPATH=$R/.dev/s23:/tmp/site taskset -c 4-7 python3 "$@"); fi
}
i=0
for which in new s23 new s23; do
  i=$((i + 1))
  echo "== W1 llama-3.2-1b $which ($i) at ${SECONDS}s" | tee -a $OUT/c2_w1.log
  run $which benchmarks/bench_w1.py --shape llama-3.2-1b --artifact /tmp/w1_1b --repeats 5 --warmup 2 --step-times \
      2>&1 | grep -v "it/s\]" | tee -a $OUT/c2_w1.log | grep -E "^run|median_tokens|step timeline|^ +(prefill|decode)|steps +count"
done
echo "all done ${SECONDS}s"
