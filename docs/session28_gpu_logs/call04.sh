# session 28 call 4: fp8 decode's fixed cost; pf = tensor maps prefetched at the decode kernel's entry
set -u
source .dev/pre.sh
mkdir -p $OUT build
B=.k10/s28/base/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/base.so $(find $B -name '*.o' | sort) || exit 1
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/pf.so \
  $(find $B -name '*.o' ! -name paged_attention_decode_mma.o | sort) .k10/s28/pf/paged_attention_decode_mma.o || exit 1
export TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
for v in base pf base pf; do
  TRTCOMPILE_KERNELS_LIB=$PWD/build/$v.so timeout 100 python3 .dev/s28_fixed2.py $v 2>&1 | tee -a $OUT/fixed2.log
done
echo "all done ${SECONDS}s"
