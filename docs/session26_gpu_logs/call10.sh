# session 26 call 10: fused decode for quantized pools (fq) — tests, kv bench against base, fused vs unfused
set -u
source .dev/pre.sh
mkdir -p /tmp/libs $OUT
objs=$(find .k10/objs -name '*.o' | sort)
list=$(echo "$objs" | sed "s#.k10/objs/paged_attention/paged_attention_decode_mma.o#.k10/var/dm_fq.o#; s#.k10/objs/paged_attention/paged_attention_decode.o#.k10/var/d_f.o#; s#.k10/objs/paged_attention/paged_attention.o#.k10/var/pa_fq.o#")
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o /tmp/libs/fq.so $list &
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o /tmp/libs/base.so $objs &
wait
export TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
echo "== tests fq ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/fq.so timeout 200 python3 -m pytest -q -x tests/gpu/test_kernels.py tests/gpu/test_runtime_gpu.py 2>&1 | tail -3 | tee $OUT/tests_fq.log
echo "== fused ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/fq.so timeout 100 python3 .dev/s26_fused.py 2>&1 | tee $OUT/fused.log
echo "== bench_kv_quant ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/fq.so OUT=$OUT timeout 200 python3 benchmarks/bench_kv_quant.py --baseline-lib /tmp/libs/base.so 2>&1 | grep -v prefill | tee $OUT/bench_kv_quant.log
echo "all done ${SECONDS}s"
