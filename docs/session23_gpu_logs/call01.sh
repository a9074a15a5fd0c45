# call 1: the staged decode inputs. GPU tests (DecodeGraphs alone, the engine on the GPU), then
# W1 with --step-times on llama-3.2-1b and smollm2-135m, this tree ("new") against the session's
# start 37ea976 ("base", .dev/base: its trtcompile and benchmarks, with this tree's bench_w1.py
# for the host-call column), same kernel library, same artifact, processes new/base/new/base
set -u
source .dev/pre.sh
[ -f build/full/libtrtcompile_kernels.so ] || make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
mkdir -p $OUT
echo "build ${SECONDS}s"
timeout 150 python3 -m pytest tests/gpu/test_cuda_graphs.py tests/gpu/test_runtime_gpu.py \
   -q -p no:cacheprovider -rs 2>&1 | tail -15 | tee $OUT/c1_tests.log
echo "tests ${SECONDS}s"
R=$PWD
run() {  # run new|base ARGS...: the benchmark of that tree
  local which=$1; shift
  if [ $which = new ]; then PYTHONPATH=$R:/tmp/site python3 "$@"; else (cd $R/.dev/base && PYTHONPATH=$R/.dev/base:/tmp/site python3 "$@"); fi
}
for shape in smollm2-135m llama-3.2-1b; do
  i=0
  for which in new base new base; do
    i=$((i + 1))
    echo "== W1 $shape $which ($i) at ${SECONDS}s" | tee -a $OUT/c1_w1_full.log
    run $which benchmarks/bench_w1.py --shape $shape --artifact /tmp/w1_$shape --repeats 5 --warmup 2 --step-times \
        2>&1 | grep -v "it/s\]" | tee -a $OUT/c1_w1_full.log | grep -E "^run|median_tokens|step timeline|^ +(prefill|decode)|steps +count"
  done
done
echo "all done ${SECONDS}s"
