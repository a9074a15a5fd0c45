# session 27 call 9: dev6 = 97bb302 + quantized pools' wide decode variant only for one-wave grids
# (.k10/s27/dev); h97 = the same objects with 97bb302's paged_attention.o
set -u
source .dev/pre.sh
mkdir -p $OUT build
D=.k10/s27/dev/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/dev.so $(find $D -name '*.o' | sort) || exit 1
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/h97.so \
  $(find $D -name '*.o' ! -name paged_attention.o | sort) .k10/s27/h97_paged_attention.o || exit 1
export TRTCOMPILE_KERNELS_LIB=$PWD/build/dev.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/gpu/test_kernels.py tests/gpu/test_runtime_gpu.py tests/gpu/test_cuda_graphs.py 2>&1 | tail -3 | tee $OUT/tests.log
echo "== plan sweep ${SECONDS}s"
for sh in 32_8_64 32_8_128; do
  timeout 60 python3 .dev/s27_plan64.py ${sh//_/,} 2>&1 | grep -E "shape|fp8" | tee $OUT/plan_$sh.log
  TRTCOMPILE_KERNELS_LIB=$PWD/build/h97.so timeout 60 python3 .dev/s27_plan64.py ${sh//_/,} 2>&1 | grep -E "fp8" | sed 's/^/h97 /' | tee -a $OUT/plan_$sh.log
done
echo "== kv_quant ${SECONDS}s"
timeout 120 python3 benchmarks/bench_kv_quant.py --baseline-lib build/h97.so 2>&1 | grep -E "decode|benchmark" | tee $OUT/kv_quant.log
echo "all done ${SECONDS}s"
