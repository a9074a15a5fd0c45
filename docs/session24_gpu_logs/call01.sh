# call 1: WeightOnlyGemm timing methods; decode/prefill vs SDPA and the KV pools, interleaved
set -u
source .dev/pre.sh
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so
mkdir -p $OUT
echo "build ${SECONDS}s"
python3 .dev/woq_method.py 2>&1 | tee $OUT/c1_woq_method.log
echo "== bench_kernels decode+prefill ${SECONDS}s"
python3 benchmarks/bench_kernels.py --decode-only 2>&1 | tee $OUT/c1_decode.log | tail -12
python3 benchmarks/bench_kernels.py --prefill-only 2>&1 | tee $OUT/c1_prefill.log | tail -6
echo "== bench_kv_quant ${SECONDS}s"
python3 benchmarks/bench_kv_quant.py 2>&1 | tee $OUT/c1_kv_quant.log | tail -30
echo "all done ${SECONDS}s"
