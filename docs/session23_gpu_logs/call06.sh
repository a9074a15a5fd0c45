# call 6: bench_w8a8's GEMM table timed one case after another (37ea976's script, .dev/base)
# against interleaved (this tree), alternated twice in one call
set -u
source .dev/pre.sh
[ -f build/full/libtrtcompile_kernels.so ] || make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so
mkdir -p $OUT
R=$PWD
echo "build ${SECONDS}s"
for i in 1 2; do
  for which in base new; do
    echo "== $which ($i) at ${SECONDS}s" | tee -a $OUT/c6_w8a8.log
    if [ $which = new ]; then PYTHONPATH=$R:/tmp/site python3 benchmarks/bench_w8a8.py --rows 256 2>&1;
    else (cd .dev/base && PYTHONPATH=$R/.dev/base:/tmp/site python3 benchmarks/bench_w8a8.py --rows 256 2>&1); fi \
      | tee -a $OUT/c6_w8a8.log | grep -E "^(qkv|gate_up|down) .* (1024|4096|8192) |^target"
  done
done
echo "all done ${SECONDS}s"
