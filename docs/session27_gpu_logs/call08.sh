# session 27 call 8: dev5 = f90e92d + 16-bit one-wave grids of more CTAs than SMs on the fused
# 4-warp kernel (.k10/s27/dev); f90 = the same objects with f90e92d's paged_attention.o and
# paged_attention_decode.o
set -u
source .dev/pre.sh
mkdir -p $OUT build
D=.k10/s27/dev/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/dev.so $(find $D -name '*.o' | sort) || exit 1
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/f90.so \
  $(find $D -name '*.o' ! -name paged_attention.o ! -name paged_attention_decode.o | sort) .k10/s27/f90_*.o || exit 1
export TRTCOMPILE_KERNELS_LIB=$PWD/build/dev.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/gpu/test_kernels.py tests/gpu/test_runtime_gpu.py tests/gpu/test_cuda_graphs.py 2>&1 | tail -12 | tee $OUT/tests.log
echo "== plan sweep ${SECONDS}s"
for sh in 32,8,64 32,8,128; do
  timeout 80 python3 .dev/s27_plan64.py $sh 2>&1 | tee $OUT/plan_$sh.log
  TRTCOMPILE_KERNELS_LIB=$PWD/build/f90.so timeout 80 python3 .dev/s27_plan64.py $sh 2>&1 | grep -E "bf16" | sed 's/^/f90 /' | tee -a $OUT/plan_$sh.log
done
echo "== bench_kernels decode ${SECONDS}s"
timeout 100 python3 benchmarks/bench_kernels.py --decode-only --baseline-lib build/f90.so 2>&1 | grep -E "decode|same" | tee $OUT/bench_kernels_decode.log
for lib in dev f90 dev f90; do
  echo "== w1 1b latency, $lib ${SECONDS}s"
  TRTCOMPILE_KERNELS_LIB=$PWD/build/$lib.so timeout 120 python3 benchmarks/bench_w1.py --shape llama-3.2-1b --artifact /tmp/a1 --repeats 3 --warmup 1 --latency-batches 1,16,32,48,64 --json $OUT/w1_1b_$lib.json > $OUT/w1_1b_$lib.log 2>&1
  grep -E "^run|batch" $OUT/w1_1b_$lib.log | grep -v "^\s*\"" | tail -8
done
echo "all done ${SECONDS}s"
