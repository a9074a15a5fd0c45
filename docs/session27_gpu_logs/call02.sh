# session 27 call 2: dev = working tree (wg2 kernel takes quantized pools: its producer widens
# the codes; wg kernel widens V under S = Q K^T), objects built locally (.k10/s27/dev);
# base = the same objects with HEAD's three prefill objects (.k10/s27/base_*.o)
set -u
source .dev/pre.sh
mkdir -p $OUT build
D=.k10/s27/dev/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/dev.so $(find $D -name '*.o' | sort) || exit 1
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/base.so \
  $(find $D -name '*.o' ! -name paged_attention_prefill.o ! -name paged_attention_prefill_wg2.o ! -name paged_attention_prefill_wgmma.o | sort) \
  .k10/s27/base_*.o || exit 1
export TRTCOMPILE_KERNELS_LIB=$PWD/build/dev.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
echo "link ${SECONDS}s"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/gpu/test_kernels.py 2>&1 | tail -15 | tee $OUT/tests.log
echo "== kv_quant ${SECONDS}s"
timeout 150 python3 benchmarks/bench_kv_quant.py --baseline-lib build/base.so 2>&1 | grep -E "prefill|benchmark|H200"
echo "== prefill kernels, dev ${SECONDS}s"
timeout 150 python3 benchmarks/bench_kv_quant.py --prefill-kernels 2>&1 | tail -20
echo "== prefill kernels, base ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=$PWD/build/base.so timeout 150 python3 benchmarks/bench_kv_quant.py --prefill-kernels 2>&1 | tail -20
echo "all done ${SECONDS}s"
