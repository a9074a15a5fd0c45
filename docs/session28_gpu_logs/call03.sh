# session 28 call 3: the decode's fixed cost (base library)
set -u
source .dev/pre.sh
mkdir -p $OUT build
B=.k10/s28/base/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/base.so $(find $B -name '*.o' | sort) || exit 1
export TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py TRTCOMPILE_KERNELS_LIB=$PWD/build/base.so
timeout 200 python3 .dev/s28_fixed.py 2>&1 | tee $OUT/fixed.log
echo "all done ${SECONDS}s"
