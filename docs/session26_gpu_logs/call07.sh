# session 26 call 7: f2 = f + quantized planning on the tensor-copy kernel's residency; kv bench; W1 8B fp8 + fp8 KV, base vs f2 alternated
set -u
source .dev/pre.sh
mkdir -p /tmp/libs $OUT
objs=$(find .k10/objs -name '*.o' | sort)
list=$(echo "$objs" | sed "s#.k10/objs/paged_attention/paged_attention_decode_mma.o#.k10/var/dm_base.o#")
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o /tmp/libs/base.so $list &
list=$(echo "$objs" | sed "s#.k10/objs/paged_attention/paged_attention_decode_mma.o#.k10/var/dm_f.o#; s#.k10/objs/paged_attention/paged_attention_decode.o#.k10/var/d_f.o#")
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o /tmp/libs/f2.so $list &
wait
export TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
echo "== tests f2 ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/f2.so timeout 150 python3 -m pytest -q -x tests/gpu/test_kernels.py 2>&1 | tail -2 | tee $OUT/tests_f2.log
echo "== bench_kv_quant ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/f2.so OUT=$OUT timeout 200 python3 benchmarks/bench_kv_quant.py --baseline-lib /tmp/libs/base.so 2>&1 | grep -v prefill | tee $OUT/bench_kv_quant.log
echo "== w1 8b fp8 kv fp8 ${SECONDS}s"
for i in 1 2; do
  for v in base f2; do
    TRTCOMPILE_KERNELS_LIB=/tmp/libs/$v.so timeout 300 python3 benchmarks/bench_w1.py --shape llama-3.1-8b --artifact /tmp/a8 --set quantization.mode=fp8 --set kv_cache.dtype=fp8 --repeats 3 --warmup 1 --json $OUT/w1_8b_fp8kv_${v}_$i.json > /tmp/w1_${v}_$i.log 2>&1
    echo "$v run $i ${SECONDS}s"; grep -E "tok/s|output tokens|W1" /tmp/w1_${v}_$i.log | tail -4
  done
done
echo "all done ${SECONDS}s"
