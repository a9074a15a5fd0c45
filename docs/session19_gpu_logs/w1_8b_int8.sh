# 8B int8 weight-only: small-batch time per token with the GEMV fed by tensor copies on and off.
set -u
export TRTCOMPILE_KERNELS_LIB=$PWD/build/s19a/libtrtcompile_kernels.so
A=/tmp/w1_8b_int8wo
for mode in on off; do
  echo "== TRTC_WOQ_GEMV_BULK $mode"
  if [ $mode = off ]; then export TRTC_WOQ_GEMV_BULK=0; fi
  timeout 270 python3 benchmarks/bench_w1.py --shape llama-3.1-8b --set quantization.mode=int8_weight_only \
    --artifact $A --repeats 1 --warmup 0 --num-requests 64 --latency-batches 16,24,32 2>&1 | grep -E "built|batch|run 0|to_first_token|Error|error" 
done
