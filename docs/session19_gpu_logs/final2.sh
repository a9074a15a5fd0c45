# Session 19, the kept GEMV fed by tensor copies (build s19a at the commit) against s18e.
set -u
NEW=build/s19a/libtrtcompile_kernels.so OLD=build/s18e/libtrtcompile_kernels.so
export TRTCOMPILE_KERNELS_LIB=$PWD/$NEW OMP_NUM_THREADS=4 REPEATS=20
echo "== sweep, both libraries under the default dispatch (old: 1a59f06's kernels)"
S19_CH=1 S19_SHAPES=4096:14336,4096:28672,4096:57344 S19_M=1,8,13,16,17,24,32 timeout 240 python3 .dev/s19_gemv.py new=$NEW old=$OLD
echo "== bench_quant --decode (new library)"
timeout 240 python3 benchmarks/bench_quant.py --decode --repeats 20
echo "== prefill tests (pool tensor maps now through tensor_map.h's encoder lookup)"
timeout 200 python3 -m pytest tests/gpu/test_kernels.py -q -k prefill 2>&1 | tail -2
echo "== dispatch test"
timeout 60 python3 -m pytest tests/gpu/test_quant_kernels.py -q -k "bulk_gemv_dispatch or tensor_core_gemv_policy" 2>&1 | tail -2
