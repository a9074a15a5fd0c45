# call C: host time per step and W1 (llama-3.2-1b, smollm2-135m), this tree ("new") against the
# session's start 36abd74 ("old", .dev/old: its trtcompile and benchmarks), same kernel library,
# same artifact, processes alternated new/old/new/old
set -u
source .dev/pre.sh
[ -f build/full/libtrtcompile_kernels.so ] || make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
mkdir -p $OUT
R=$PWD
run() {  # run new|old ARGS...: the benchmark of that tree
  local which=$1; shift
  if [ $which = new ]; then PYTHONPATH=$R:/tmp/site python3 "$@"; else (cd $R/.dev/old && PYTHONPATH=$R/.dev/old:/tmp/site python3 "$@"); fi
}
for which in new old; do
  echo "== host overhead ($which)"; run $which benchmarks/bench_host_overhead.py --vocab 8 --repeats 5 2>&1 | tail -11 | tee -a $OUT/c1_host.log
done
echo "host done ${SECONDS}s"
for shape in llama-3.2-1b smollm2-135m; do
  i=0
  for which in new old new old; do
    i=$((i + 1))
    echo "== W1 $shape $which ($i) at ${SECONDS}s" | tee -a $OUT/c1_w1_full.log
    run $which benchmarks/bench_w1.py --shape $shape --artifact /tmp/w1_$shape --repeats 5 --warmup 2 \
        2>&1 | tee -a $OUT/c1_w1_full.log | grep -E "^built|^run|median_tokens|to_first_token" 
  done
done
echo "all done ${SECONDS}s"
