# session 26 call 11: HEAD built from source on the device; GPU tests touching attention; W1 with fp8 KV on llama-3.2-1b (head_dim 64) and llama-3.1-8b (128)
set -u
source .dev/pre.sh
mkdir -p $OUT
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
echo "build ${SECONDS}s"
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/gpu/test_kernels.py tests/gpu/test_runtime_gpu.py tests/gpu/test_cuda_graphs.py 2>&1 | tail -3 | tee $OUT/tests.log
echo "== w1 1b fp8 kv ${SECONDS}s"
timeout 150 python3 benchmarks/bench_w1.py --shape llama-3.2-1b --set kv_cache.dtype=fp8 --repeats 3 --warmup 1 --json $OUT/w1_1b_fp8kv.json 2>&1 | grep -E "^run|target|start" | tail -6
echo "== w1 8b fp8 + fp8 kv ${SECONDS}s"
timeout 200 python3 benchmarks/bench_w1.py --shape llama-3.1-8b --artifact /tmp/a8 --set quantization.mode=fp8 --set kv_cache.dtype=fp8 --repeats 3 --warmup 1 --json $OUT/w1_8b_fp8kv.json 2>&1 | grep -E "^run|target|start" | tail -6
echo "all done ${SECONDS}s"
