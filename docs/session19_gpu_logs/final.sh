# Session 19's last device call: the bulk-copy GEMV (build s19a) against the shipped one (s18e).
set -u
NEW=build/s19a/libtrtcompile_kernels.so OLD=build/s18e/libtrtcompile_kernels.so
export TRTCOMPILE_KERNELS_LIB=$PWD/$NEW OMP_NUM_THREADS=4 REPEATS=20
echo "== pytest (bulk path on N >= 64 x SMs, K a multiple of a stage)"
timeout 200 python3 -m pytest tests/gpu/test_quant_kernels.py -q -k "many_stages or wide_projection" 2>&1 | tail -2
echo "== default block (TM 1, WR 4, KSPLIT 1), new against shipped"
S19_SHAPES=4096:14336,4096:28672,4096:57344,16384:28672 timeout 150 python3 .dev/s19_gemv.py new=$NEW old=$OLD
echo "== the same, consumers only wait and release (streaming floor)"
TRTC_WOQ_BULK_SKIP=1 S19_SHAPES=4096:14336,4096:28672,4096:57344,16384:28672 S19_M=1,16 timeout 100 python3 .dev/s19_gemv.py new=$NEW
echo "== device copy and torch read"
timeout 60 python3 .dev/s19/read_floor.py
