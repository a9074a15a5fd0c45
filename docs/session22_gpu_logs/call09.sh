# call E: the whole test_quant_kernels.py on this tree (kernels unchanged this session)
set -u
source .dev/pre.sh
[ -f build/full/libtrtcompile_kernels.so ] || make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so
mkdir -p $OUT
echo "build ${SECONDS}s"
timeout 400 python3 -m pytest tests/gpu/test_quant_kernels.py -q -x -p no:cacheprovider 2>&1 | tee $OUT/e1_quant.log | tail -6
echo "all done ${SECONDS}s"
