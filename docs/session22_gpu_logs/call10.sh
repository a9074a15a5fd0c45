# call 10: call 8's script as edited on the device by the call's own sed: test_runtime_gpu.py alone, under timeout 100
set -u
source .dev/pre.sh
[ -f build/full/libtrtcompile_kernels.so ] || make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so
mkdir -p $OUT
echo "build ${SECONDS}s"
timeout 100 python3 -m pytest tests/gpu/test_runtime_gpu.py \
   -q -p no:cacheprovider -rs 2>&1 | tail -15 | tee $OUT/d1_tests.log
echo "all done ${SECONDS}s"
