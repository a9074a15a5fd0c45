# session 27 call 6: dev3 = e4c4b7e + the 16-bit decode planner counting one 8-warp CTA a SM as a
# wave (objects .k10/s27/dev); oldplan = the same objects with e4c4b7e's paged_attention.o
set -u
source .dev/pre.sh
mkdir -p $OUT build
D=.k10/s27/dev/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/dev.so $(find $D -name '*.o' | sort) || exit 1
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/oldplan.so \
  $(find $D -name '*.o' ! -name paged_attention.o | sort) .k10/s27/oldplan_paged_attention.o || exit 1
export TRTCOMPILE_KERNELS_LIB=$PWD/build/dev.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/gpu/test_kernels.py tests/gpu/test_runtime_gpu.py tests/gpu/test_cuda_graphs.py 2>&1 | tail -3 | tee $OUT/tests.log
echo "== plan sweep ${SECONDS}s"
timeout 120 python3 .dev/s27_plan64.py 32,8,64 2>&1 | tee $OUT/plan_32x8x64.log
timeout 120 python3 .dev/s27_plan64.py 32,8,128 2>&1 | tee $OUT/plan_32x8x128.log
echo "== bench_kernels decode ${SECONDS}s"
timeout 150 python3 benchmarks/bench_kernels.py --decode-only --baseline-lib build/oldplan.so 2>&1 | tail -25 | tee $OUT/bench_kernels_decode.log
echo "all done ${SECONDS}s"
