# call A: copy GGUF part 1; build; whole test_kernels.py; bench_kernels.py (default cases)
set -u
cp .kz/part_aa /tmp/part_aa && echo "part_aa copied: $(stat -c %s /tmp/part_aa) bytes"
source .dev/pre.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
t0=$SECONDS
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build ${SECONDS}s"
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so
mkdir -p $OUT
timeout 330 python3 -m pytest tests/gpu/test_kernels.py -q -p no:cacheprovider -x 2>&1 | tail -4 | tee $OUT/a1_test_kernels.log
echo "tests done ${SECONDS}s"
timeout 170 python3 benchmarks/bench_kernels.py 2>&1 | tee $OUT/a1_bench_kernels.log | tail -30
echo "all done ${SECONDS}s"
