#!/bin/bash
# call 4: W1 llama-3.2-1b bf16 (the issue 7 target) and small-batch step timelines, bf16 and int8
source .dev/pre.sh
set -o pipefail
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full >/tmp/make.log 2>&1 || { tail -30 /tmp/make.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so
python3 benchmarks/bench_w1.py --shape llama-3.2-1b --artifact /tmp/w1_1b_bf16 --repeats 5 --warmup 2 --latency-batches 1,8 --step-times --json $OUT/c4_w1_1b_bf16.json 2>&1 | grep -v -E "build:|Loading|Writing|^\[W\]" | tee $OUT/c4_w1_1b_bf16.log | grep -v '^ *"'
python3 benchmarks/bench_w1.py --shape llama-3.2-1b --artifact /tmp/w1_1b_int8 --set quantization.mode=int8_weight_only --repeats 1 --warmup 1 --latency-batches 1,8 --step-times --json $OUT/c4_w1_1b_int8.json 2>&1 | grep -v -E "build:|Loading|Writing|^\[W\]" | tee $OUT/c4_w1_1b_int8.log | grep -E "timeline|steps|decode|prefill|batch|^run"
