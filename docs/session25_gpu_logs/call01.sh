# session 25 call 1: quantized decode rings (dev instantiations), the start-up line test
set -u
source .dev/pre.sh
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
mkdir -p $OUT
echo "build ${SECONDS}s"
python3 .dev/ring_check.py 2>&1 | tee $OUT/ring_check.log
echo "== tests ${SECONDS}s"
timeout 200 python3 -m pytest -q -x tests/gpu/test_runtime_gpu.py 2>&1 | tail -8 | tee $OUT/tests.log
echo "all done ${SECONDS}s"
