# session 25 call 4: session 24's changes not yet run on a GPU (HEAD = 080fcc4 kernels and runtime)
set -u
source .dev/pre.sh
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
mkdir -p $OUT
echo "build ${SECONDS}s"
python3 benchmarks/bench_kernels.py --decode-only --baseline-lib $TRTCOMPILE_KERNELS_LIB 2>&1 | tee $OUT/decode_baseline_path.log | tail -14
echo "== w1 1b 32k (gpu_check step w1_llama1b_32k) ${SECONDS}s"
python3 benchmarks/bench_w1.py --shape llama-3.2-1b --json $OUT/w1_llama1b_32k.json --max-model-len 32768 2>&1 | tee $OUT/w1_llama1b_32k.log | tail -25
echo "== w1 8b 131072, start-up ${SECONDS}s"
python3 benchmarks/bench_w1.py --shape llama-3.1-8b --max-model-len 131072 --repeats 1 --warmup 0 --artifact /tmp/a8b --json $OUT/w1_8b_128k.json 2>&1 | tee $OUT/w1_8b_128k.log | tail -25
echo "all done ${SECONDS}s"
