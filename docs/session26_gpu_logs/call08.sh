# session 26 call 8: tiles in pairs in the 8-warp quantized TMA kernel (pair4 / pair6: 4 / 6 stages) against f2 (HEAD) and base
set -u
source .dev/pre.sh
mkdir -p /tmp/libs $OUT
objs=$(find .k10/objs -name '*.o' | sort)
for v in base f2 pair4 pair6; do
  d=.k10/var/d_f.o; m=.k10/var/dm_$v.o; [ $v = f2 ] && m=.k10/var/dm_f.o
  [ $v = base ] && d=.k10/objs/paged_attention/paged_attention_decode.o && m=.k10/objs/paged_attention/paged_attention_decode_mma.o
  list=$(echo "$objs" | sed "s#.k10/objs/paged_attention/paged_attention_decode_mma.o#$m#; s#.k10/objs/paged_attention/paged_attention_decode.o#$d#")
  nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o /tmp/libs/$v.so $list &
done
wait
export TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
for v in pair4 pair6; do
  echo "== tests $v ${SECONDS}s"
  TRTCOMPILE_KERNELS_LIB=/tmp/libs/$v.so timeout 150 python3 -m pytest -q -x tests/gpu/test_kernels.py 2>&1 | tail -2 | tee $OUT/tests_$v.log
done
echo "== ab ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/base.so timeout 250 python3 .dev/s26_ab.py base=/tmp/libs/base.so f2=/tmp/libs/f2.so pair4=/tmp/libs/pair4.so pair6=/tmp/libs/pair6.so 2>&1 | tee $OUT/ab.log
echo "all done ${SECONDS}s"
