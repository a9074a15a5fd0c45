# session 27 call 7: dev4 = e4c4b7e + the 16-bit decode planner counting one CTA a SM as a wave
# where the grid has at most one CTA a SM (.k10/s27/dev); oldplan = e4c4b7e's paged_attention.o
set -u
source .dev/pre.sh
mkdir -p $OUT build
D=.k10/s27/dev/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/dev.so $(find $D -name '*.o' | sort) || exit 1
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/oldplan.so \
  $(find $D -name '*.o' ! -name paged_attention.o | sort) .k10/s27/oldplan_paged_attention.o || exit 1
export TRTCOMPILE_KERNELS_LIB=$PWD/build/dev.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/gpu/test_kernels.py tests/gpu/test_runtime_gpu.py tests/gpu/test_cuda_graphs.py 2>&1 | tail -3 | tee $OUT/tests.log
echo "== plan sweep ${SECONDS}s"
timeout 100 python3 .dev/s27_plan64.py 32,8,64 2>&1 | tee $OUT/plan_32x8x64.log
echo "== bench_kernels decode ${SECONDS}s"
timeout 100 python3 benchmarks/bench_kernels.py --decode-only --baseline-lib build/oldplan.so 2>&1 | grep -E "decode|same" | tee $OUT/bench_kernels_decode.log
for lib in dev oldplan dev oldplan; do
  echo "== w1 1b latency, $lib ${SECONDS}s"
  TRTCOMPILE_KERNELS_LIB=$PWD/build/$lib.so timeout 120 python3 benchmarks/bench_w1.py --shape llama-3.2-1b --artifact /tmp/a1 --repeats 3 --warmup 1 --latency-batches 1,8,16,32 --json $OUT/w1_1b_$lib.json > $OUT/w1_1b_$lib.log 2>&1
  grep -E "^run|latency|batch|tok/s" $OUT/w1_1b_$lib.log | grep -v "^\s*\"" | tail -12
done
echo "all done ${SECONDS}s"
