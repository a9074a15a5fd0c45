# call 5: bench_w8a8 with the GEMMs of each row interleaved (the fp8 GEMM target), twice
set -u
source .dev/pre.sh
[ -f build/full/libtrtcompile_kernels.so ] || make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so
mkdir -p $OUT
echo "build ${SECONDS}s"
for i in 1 2; do
  python3 benchmarks/bench_w8a8.py --rows 2048 --json $OUT/c5_w8a8_$i.json 2>&1 | tee $OUT/c5_w8a8_$i.log | grep -vE "^(rmsnorm|silu_mul|quantizing)" | head -40
  echo "run $i done ${SECONDS}s"
done
