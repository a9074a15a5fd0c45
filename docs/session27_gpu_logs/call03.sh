# session 27 call 3: e4c4b7e's kernels (objects built locally, .k10/s27/dev; base = HEAD bc0b162's
# three prefill objects); GPU tests touching attention and the runtime; kv_quant; W1 8B fp8 + fp8 KV
set -u
source .dev/pre.sh
mkdir -p $OUT build
D=.k10/s27/dev/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/dev.so $(find $D -name '*.o' | sort) || exit 1
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/base.so \
  $(find $D -name '*.o' ! -name paged_attention_prefill.o ! -name paged_attention_prefill_wg2.o ! -name paged_attention_prefill_wgmma.o | sort) \
  .k10/s27/base_*.o || exit 1
export TRTCOMPILE_KERNELS_LIB=$PWD/build/dev.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
echo "link ${SECONDS}s"
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/gpu/test_kernels.py tests/gpu/test_runtime_gpu.py tests/gpu/test_cuda_graphs.py 2>&1 | tail -3 | tee $OUT/tests.log
echo "== kv_quant ${SECONDS}s"
timeout 150 python3 benchmarks/bench_kv_quant.py --baseline-lib build/base.so 2>&1 | tail -40 | tee $OUT/kv_quant.log
echo "== prefill kernels ${SECONDS}s"
timeout 150 python3 benchmarks/bench_kv_quant.py --prefill-kernels 2>&1 | tail -20 | tee $OUT/prefill_kernels.log
echo "== w1 8b fp8 + fp8 kv ${SECONDS}s"
timeout 260 python3 benchmarks/bench_w1.py --shape llama-3.1-8b --artifact /tmp/a8 --set quantization.mode=fp8 --set kv_cache.dtype=fp8 --repeats 3 --warmup 1 --step-times --json $OUT/w1_8b_fp8kv.json > $OUT/w1_8b.log 2>&1
grep -E "^run|target|start|tok/s|prefill|decode|between|step" $OUT/w1_8b.log | tail -40
echo "all done ${SECONDS}s"
