#!/bin/bash
# call 3: one hashed tensor-map cache of any rank (2D GEMV maps, 3D/4D pool maps): its users
source .dev/pre.sh
set -o pipefail
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full >/tmp/make.log 2>&1 || { tail -30 /tmp/make.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so
python3 -m pytest -q -p no:cacheprovider tests/gpu/test_quant_kernels.py -k "waits_for_the_kernel_before or bulk_gemv_dispatch" 2>&1 | tail -2 | tee $OUT/c3_tests.log
python3 -m pytest -q -p no:cacheprovider tests/gpu/test_kernels.py -k "tensor_copies or stale or many_waves" 2>&1 | tail -2 | tee -a $OUT/c3_tests.log
python3 benchmarks/bench_kernels.py --decode-only 2>&1 | tail -12 | tee $OUT/c3_decode.log
