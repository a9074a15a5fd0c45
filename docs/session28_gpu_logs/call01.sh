# session 28 call 1: quantized decode ring depth (w = 8-warp stages, l = 4-warp stages)
set -u
source .dev/pre.sh
mkdir -p $OUT build
B=.k10/s28/base/kernels
for v in w6l3 w4l3 w3l5; do
  nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/$v.so \
    $(find $B -name '*.o' ! -name paged_attention_decode_mma.o | sort) .k10/s28/$v/paged_attention_decode_mma.o || exit 1
done
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/w3l3.so $(find $B -name '*.o' | sort) || exit 1
export TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for v in w3l3 w6l3 w4l3 w3l5; do
  echo "== $v ${SECONDS}s"
  pools=fp8; [ $v = w3l3 ] && pools=bf16,fp8
  TRTCOMPILE_KERNELS_LIB=$PWD/build/$v.so timeout 90 python3 .dev/s28_stages.py $v $pools 2>&1 | tee $OUT/stages_$v.log
done
echo "== tests w6l3 ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=$PWD/build/w6l3.so timeout 150 python3 -m pytest -q -p no:cacheprovider -x tests/gpu/test_kernels.py -k "quantized and not prefill" 2>&1 | tail -3 | tee $OUT/tests_w6l3.log
echo "all done ${SECONDS}s"
