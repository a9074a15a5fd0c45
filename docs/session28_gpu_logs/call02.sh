# session 28 call 2: L2 promotion of the pool maps; 8-warp quantized kernel allowed 2 a SM (na)
set -u
source .dev/pre.sh
mkdir -p $OUT build
B=.k10/s28/base/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/promo.so \
  $(find $B -name '*.o' ! -name paged_attention.o | sort) .k10/s28/promo/paged_attention.o || exit 1
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/na.so \
  $(find $B -name '*.o' ! -name paged_attention.o ! -name paged_attention_decode_mma.o | sort) .k10/s28/promo/paged_attention.o .k10/s28/na/paged_attention_decode_mma.o || exit 1
export TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
echo "== promo d128 ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=$PWD/build/promo.so timeout 150 python3 .dev/s28_promo.py promo 32,8,128 promo 2>&1 | tee $OUT/promo_d128.log
echo "== promo d64 ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=$PWD/build/promo.so timeout 100 python3 .dev/s28_promo.py promo 32,8,64 promo 2>&1 | tee $OUT/promo_d64.log
echo "== na ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=$PWD/build/na.so timeout 100 python3 .dev/s28_promo.py na 32,8,128 na 2>&1 | tee $OUT/na.log
TRTCOMPILE_KERNELS_LIB=$PWD/build/promo.so timeout 100 python3 .dev/s28_promo.py base 32,8,128 na 2>&1 | tee $OUT/na_base.log
echo "all done ${SECONDS}s"
