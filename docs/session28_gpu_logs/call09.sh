# session 28 call 9: paired direct tiles in the quantized 8-warp decode kernel (pair: 4 stages,
# pair6: 6 stages) against base (bc.. start of session)
set -u
source .dev/pre.sh
mkdir -p $OUT build
B=.k10/s28/base/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/base.so $(find $B -name '*.o' | sort) || exit 1
for v in pair pair6; do
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/$v.so \
  $(find $B -name '*.o' ! -name paged_attention_decode_mma.o | sort) .k10/s28/$v/paged_attention_decode_mma.o || exit 1
done
export TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
echo "== tests pair ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=$PWD/build/pair.so timeout 150 python3 -m pytest -q -p no:cacheprovider -x tests/gpu/test_kernels.py -k "quantized and not prefill" 2>&1 | tail -4 | tee $OUT/tests_pair.log
echo "== fixed2 ${SECONDS}s"
for v in base pair pair6 base pair; do
  TRTCOMPILE_KERNELS_LIB=$PWD/build/$v.so timeout 60 python3 .dev/s28_fixed2.py $v 2>&1 | grep fp8 | tee -a $OUT/fixed2.log
done
echo "== kv_quant ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=$PWD/build/pair.so timeout 150 python3 benchmarks/bench_kv_quant.py --baseline-lib build/base.so 2>&1 | grep -E "decode|benchmark" | grep -v "CUDA cores" | tee $OUT/kv_quant.log
echo "all done ${SECONDS}s"
