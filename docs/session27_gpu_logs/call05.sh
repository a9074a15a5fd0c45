# session 27 call 5: e4c4b7e's kernels; the decode planner at head_dim 64 and 128 against forced variants
set -u
source .dev/pre.sh
mkdir -p $OUT build
D=.k10/s27/dev/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/dev.so $(find $D -name '*.o' | sort) || exit 1
export TRTCOMPILE_KERNELS_LIB=$PWD/build/dev.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
timeout 250 python3 .dev/s27_plan64.py 32,8,64 2>&1 | tee $OUT/plan_32x8x64.log
timeout 200 python3 .dev/s27_plan64.py 32,8,128 2>&1 | tee $OUT/plan_32x8x128.log
echo "all done ${SECONDS}s"
