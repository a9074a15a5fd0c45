# session 28 call 13: the failing planned-grid test (d64 B=64 bf16, fused beyond one wave): why
set -u
source .dev/pre.sh
mkdir -p $OUT build
B=.k10/s28/base/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/dev.so \
  $(find $B -name '*.o' ! -name paged_attention.o | sort) .k10/s28/dev/paged_attention.o || exit 1
export TRTCOMPILE_KERNELS_LIB=$PWD/build/dev.so
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/gpu/test_kernels.py -k planned_grids --tb=line 2>&1 | tail -8 | tee $OUT/tests.log
timeout 100 python3 .dev/s28_fusediag.py 2>&1 | tee $OUT/diag.log
echo "all done ${SECONDS}s"
