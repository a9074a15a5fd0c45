# session 26 call 1: transposed direct decode path (v0: integer conversions, v1: cvt e4m3x2), A/B vs base
set -u
source .dev/pre.sh
mkdir -p /tmp/libs $OUT
objs=$(find .k10/objs -name '*.o' | sort)
for v in base v0 v1; do
  list=$(echo "$objs" | sed "s#.k10/objs/paged_attention/paged_attention_decode_mma.o#.k10/var/dm_$v.o#")
  nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o /tmp/libs/$v.so $list &
done
wait
ls -la /tmp/libs
echo "link ${SECONDS}s"
export TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
for v in v0 v1; do
  echo "== tests $v ${SECONDS}s"
  TRTCOMPILE_KERNELS_LIB=/tmp/libs/$v.so timeout 150 python3 -m pytest -q -x tests/gpu/test_kernels.py 2>&1 | tail -6 | tee $OUT/tests_$v.log
done
echo "== ab ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/base.so timeout 300 python3 .dev/s26_ab.py base=/tmp/libs/base.so v0=/tmp/libs/v0.so v1=/tmp/libs/v1.so 2>&1 | tee $OUT/ab.log
echo "all done ${SECONDS}s"
