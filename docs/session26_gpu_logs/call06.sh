# session 26 call 6: final candidate (f: transposed direct path, prmt conversions, 8-warp quantized kernel alone on its SM)
set -u
source .dev/pre.sh
mkdir -p /tmp/libs $OUT
objs=$(find .k10/objs -name '*.o' | sort)
for v in base f; do
  list=$(echo "$objs" | sed "s#.k10/objs/paged_attention/paged_attention_decode_mma.o#.k10/var/dm_$v.o#")
  nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o /tmp/libs/$v.so $list &
done
wait
export TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
echo "== tests f ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/f.so timeout 200 python3 -m pytest -q -x tests/gpu/test_kernels.py tests/gpu/test_runtime_gpu.py 2>&1 | tail -3 | tee $OUT/tests_f.log
echo "== bench_kv_quant ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/f.so OUT=$OUT timeout 200 python3 benchmarks/bench_kv_quant.py --baseline-lib /tmp/libs/base.so 2>&1 | tee $OUT/bench_kv_quant.log
echo "== sweep f ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/f.so timeout 150 python3 benchmarks/bench_kv_quant.py --sweep --batches 16,64 --pools fp8,int8 --kernels "4,3 8,3" --splits 1,2,4 2>&1 | tee $OUT/sweep_f.log
echo "all done ${SECONDS}s"
