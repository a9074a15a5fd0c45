# session 25 call 3: half accumulators + 128-register cap for quantized-pool TMA decode kernels, against HEAD's library
set -u
source .dev/pre.sh
(make -C .dev/h/plugins -j8 ARCHS=90a BUILD=$PWD/build/base > /tmp/build_base.log 2>&1; echo "base build rc $?") &
make -C plugins -j12 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
wait
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so
mkdir -p $OUT
echo "build ${SECONDS}s"
python3 benchmarks/bench_kv_quant.py --baseline-lib $PWD/build/base/libtrtcompile_kernels.so 2>&1 | tee $OUT/kv_quant_ab.log | head -30
echo "== ring_check ${SECONDS}s"
python3 .dev/ring_check.py "4,3 8,3 4,4 4,5 8,6 2,6" 2>&1 | tee $OUT/ring_check.log
echo "all done ${SECONDS}s"
