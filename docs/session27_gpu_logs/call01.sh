# session 27 call 1: working tree built on the device (dev = HEAD bc0b162 + V widened under S = Q K^T);
# base = the same objects with HEAD's prefill_wgmma.o (.k10/s27/wgmma_base.o, built locally)
set -u
source .dev/pre.sh
mkdir -p $OUT
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/dev > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
objs=$(find build/dev/kernels -name '*.o' ! -name 'paged_attention_prefill_wgmma.o' | sort)
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/base.so $objs .k10/s27/wgmma_base.o || exit 1
export TRTCOMPILE_KERNELS_LIB=$PWD/build/dev/libtrtcompile_kernels.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
echo "build ${SECONDS}s"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/gpu/test_kernels.py 2>&1 | tail -3 | tee $OUT/tests.log
echo "== kv_quant ${SECONDS}s"
timeout 150 python3 benchmarks/bench_kv_quant.py --baseline-lib build/base.so 2>&1 | tail -40
echo "== prefill kernels ${SECONDS}s"
timeout 100 python3 benchmarks/bench_kv_quant.py --prefill-kernels 2>&1 | tail -14
echo "all done ${SECONDS}s"
