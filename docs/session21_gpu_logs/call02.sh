#!/bin/bash
# call 2: build, PDL GEMV tests, W1 1B int8 latency with and without early launches
source .dev/pre.sh
set -o pipefail
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full >/tmp/make.log 2>&1 || { tail -30 /tmp/make.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so
python3 -m pytest -q -p no:cacheprovider tests/gpu/test_quant_kernels.py -k "waits_for_the_kernel_before or wide_decode_batches or bulk_gemv_dispatch or via_torch_op or tensor_core_gemv" 2>&1 | tail -5 | tee $OUT/c2_tests.log
python3 -m pytest -q -p no:cacheprovider tests/gpu/test_runtime_gpu.py -k "weight_only" 2>&1 | tail -3 | tee -a $OUT/c2_tests.log
python3 -m pytest -q -p no:cacheprovider tests/gpu/test_kernels.py -k "rms or silu" 2>&1 | tail -2 | tee -a $OUT/c2_tests.log
for mode in on off; do
  if [ $mode = off ]; then export TRTC_WOQ_PDL=0; fi
  python3 benchmarks/bench_w1.py --shape llama-3.2-1b --artifact /tmp/w1_1b_int8 --set quantization.mode=int8_weight_only --repeats 3 --warmup 1 --latency-batches 1,4,8 --json $OUT/c2_w1_1b_int8_$mode.json 2>&1 | grep -E "^(run|batch|built)" | sed "s/^/$mode: /"
done
unset TRTC_WOQ_PDL
