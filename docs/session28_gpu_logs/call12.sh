# session 28 call 12: dev = start objects + the planner's fused 4-warp rule at head_dim 64 up to
# 1.5 waves (.k10/s28/dev/paged_attention.o); base = the session's start objects
set -u
source .dev/pre.sh
mkdir -p $OUT build
B=.k10/s28/base/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/base.so $(find $B -name '*.o' | sort) || exit 1
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/dev.so \
  $(find $B -name '*.o' ! -name paged_attention.o | sort) .k10/s28/dev/paged_attention.o || exit 1
export TRTCOMPILE_KERNELS_LIB=$PWD/build/dev.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/gpu/test_kernels.py tests/gpu/test_runtime_gpu.py tests/gpu/test_cuda_graphs.py 2>&1 | tail -5 | tee $OUT/tests.log
echo "== cmp ${SECONDS}s"
timeout 120 python3 .dev/s28_cmp.py build/dev.so build/base.so 2>&1 | tee $OUT/cmp.log
for lib in dev base dev base; do
  echo "== w1 1b latency, $lib ${SECONDS}s"
  TRTCOMPILE_KERNELS_LIB=$PWD/build/$lib.so timeout 150 python3 benchmarks/bench_w1.py --shape llama-3.2-1b --artifact /tmp/a1 --repeats 3 --warmup 1 --latency-batches 1,32,48,64 --json $OUT/w1_1b_$lib.json > $OUT/w1_1b_$lib.log 2>&1
  grep -E "^run|batch" $OUT/w1_1b_$lib.log | grep -v "^\s*\"" | tail -8
done
echo "all done ${SECONDS}s"
