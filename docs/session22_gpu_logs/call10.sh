# call D: the GPU runtime tests (engine on the GPU: CUDA graphs, async scheduling) with this tree
set -u
source .dev/pre.sh
[ -f build/full/libtrtcompile_kernels.so ] || make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so
mkdir -p $OUT
echo "build ${SECONDS}s"
timeout 300 python3 -m pytest tests/gpu/test_runtime_gpu.py tests/gpu/test_lowering_gpu.py tests/gpu/test_fp8_gemm.py \
   tests/gpu/test_silu_mul_bits.py -q -p no:cacheprovider -rs 2>&1 | tail -15 | tee $OUT/d1_tests.log
echo "all done ${SECONDS}s"
