# session 26 call 5: prmt conversions (p) against the transposed path (q0) and base; tests; sweep of p
set -u
source .dev/pre.sh
mkdir -p /tmp/libs $OUT
objs=$(find .k10/objs -name '*.o' | sort)
for v in base q0 p; do
  list=$(echo "$objs" | sed "s#.k10/objs/paged_attention/paged_attention_decode_mma.o#.k10/var/dm_$v.o#")
  nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o /tmp/libs/$v.so $list &
done
wait
export TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
echo "== tests p ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/p.so timeout 150 python3 -m pytest -q -x tests/gpu/test_kernels.py 2>&1 | tail -3 | tee $OUT/tests_p.log
echo "== ab ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/base.so timeout 200 python3 .dev/s26_ab.py base=/tmp/libs/base.so q0=/tmp/libs/q0.so p=/tmp/libs/p.so 2>&1 | tee $OUT/ab.log
echo "== sweep p ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/p.so timeout 150 python3 benchmarks/bench_kv_quant.py --sweep --batches 16,64 --pools fp8,int8 --kernels "4,3 8,3" --splits 1,2,3,4 2>&1 | tee $OUT/sweep_p.log
echo "all done ${SECONDS}s"
