# session 26 call 2: transposed direct path, 8-warp quantized kernel capped to 2 CTAs a SM (q2) or not (q0): A/B and sweeps
set -u
source .dev/pre.sh
mkdir -p /tmp/libs $OUT
objs=$(find .k10/objs -name '*.o' | sort)
for v in base q0 q2; do
  list=$(echo "$objs" | sed "s#.k10/objs/paged_attention/paged_attention_decode_mma.o#.k10/var/dm_$v.o#")
  nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o /tmp/libs/$v.so $list &
done
wait
export TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
echo "== tests q2 ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/q2.so timeout 150 python3 -m pytest -q -x tests/gpu/test_kernels.py 2>&1 | tail -3 | tee $OUT/tests_q2.log
echo "== ab ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/base.so timeout 200 python3 .dev/s26_ab.py base=/tmp/libs/base.so q0=/tmp/libs/q0.so q2=/tmp/libs/q2.so 2>&1 | grep -v "^check" | tee $OUT/ab.log
for v in q0 q2; do
  echo "== sweep $v ${SECONDS}s"
  TRTCOMPILE_KERNELS_LIB=/tmp/libs/$v.so timeout 150 python3 benchmarks/bench_kv_quant.py --sweep --batches 1,16,64 --pools fp8,int8 --splits 1,2,3,4,6,8,16 2>&1 | tee $OUT/sweep_$v.log
done
echo "all done ${SECONDS}s"
