# session 27 call 4: e4c4b7e's kernels (.k10/s27/dev objects); bench_kv_quant at llama-3.2-1b's
# attention shape (32/8, head_dim 64) and SmolLM2's (9/3, 64); decode sweep at 32/8/64
set -u
source .dev/pre.sh
mkdir -p $OUT build
D=.k10/s27/dev/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/dev.so $(find $D -name '*.o' | sort) || exit 1
export TRTCOMPILE_KERNELS_LIB=$PWD/build/dev.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
echo "== 32,8,64 ${SECONDS}s"
timeout 150 python3 benchmarks/bench_kv_quant.py --shape 32,8,64 2>&1 | tail -32 | tee $OUT/kv_quant_32x8x64.log
echo "== sweep 32,8,64 ${SECONDS}s"
timeout 200 python3 benchmarks/bench_kv_quant.py --shape 32,8,64 --sweep --batches 16,64,256 --ctx 1024 --pools bf16,fp8 --splits 1,2,4 2>&1 | tail -60 | tee $OUT/sweep_32x8x64.log
echo "all done ${SECONDS}s"
