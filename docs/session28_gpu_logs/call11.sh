# session 28 call 11: fused 4-warp decode on 16-bit grids beyond one wave (dev planner, env-switched)
set -u
source .dev/pre.sh
mkdir -p $OUT build
B=.k10/s28/base/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/fw.so \
  $(find $B -name '*.o' ! -name paged_attention.o | sort) .k10/s28/fw/paged_attention.o || exit 1
export TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py TRTCOMPILE_KERNELS_LIB=$PWD/build/fw.so
timeout 300 python3 .dev/s28_fw.py 2>&1 | tee $OUT/fw.log
echo "all done ${SECONDS}s"
