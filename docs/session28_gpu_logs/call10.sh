# session 28 call 10: bench_kv_quant.py --sweep / --prefill-kernels with variants replayed in turn
# (this commit's benchmark), on the session's start kernels (no kernel source changed)
set -u
source .dev/pre.sh
mkdir -p $OUT build
B=.k10/s28/base/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/base.so $(find $B -name '*.o' | sort) || exit 1
export TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py TRTCOMPILE_KERNELS_LIB=$PWD/build/base.so
echo "== sweep d128 ${SECONDS}s"
timeout 150 python3 benchmarks/bench_kv_quant.py --sweep --batches 1,16,64 --pools bf16,fp8 --splits 1,2,4,16 2>&1 | tee $OUT/sweep_d128.log
echo "== sweep d64 ${SECONDS}s"
timeout 100 python3 benchmarks/bench_kv_quant.py --sweep --shape 32,8,64 --ctx 512 --batches 4,64 --pools bf16 --splits 1,2 2>&1 | tee $OUT/sweep_d64_ctx512.log
echo "== prefill kernels ${SECONDS}s"
timeout 200 python3 benchmarks/bench_kv_quant.py --prefill-kernels 2>&1 | tee $OUT/prefill_kernels.log
echo "all done ${SECONDS}s"
