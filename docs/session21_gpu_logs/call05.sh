#!/bin/bash
# call 5: the GPU suites around this session's changes not run yet (runtime end to end, lowering,
# SiluMul bits, fp8 GEMM)
source .dev/pre.sh
set -o pipefail
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full >/tmp/make.log 2>&1 || { tail -30 /tmp/make.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so
python3 -m pytest -q -p no:cacheprovider -rs tests/gpu/test_runtime_gpu.py tests/gpu/test_lowering_gpu.py tests/gpu/test_silu_mul_bits.py tests/gpu/test_fp8_gemm.py 2>&1 | tail -6 | tee $OUT/c5_tests.log
