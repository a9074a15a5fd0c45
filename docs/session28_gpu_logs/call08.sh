# session 28 call 8: Nsight Compute of the decode kernel, B=16 ctx 4096, fp8 and bf16 pools
set -u
source .dev/pre.sh
mkdir -p $OUT build
B=.k10/s28/base/kernels
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o build/base.so $(find $B -name '*.o' | sort) || exit 1
export TRTCOMPILE_KERNELS_LIB=$PWD/build/base.so
which ncu || ls /usr/local/cuda*/bin | grep -i ncu
for c in "fp8 16 4096" "bf16 16 4096" "fp8 64 4096" "bf16 64 4096"; do
  set -- $c
  echo "== $c"
  timeout 120 ncu --clock-control none --kernel-name regex:decode_mma --launch-skip 4 --launch-count 1 \
    --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats \
    --section LaunchStats --section Occupancy python3 .dev/s28_ncu.py $1 $2 $3 2>&1 | grep -v "^==PROF==" | \
    grep -E "Duration|Throughput|Busy|Issue|Eligible|Active Warps|Stall|stall|Registers|Shared Memory Config|Achieved|L2 Hit|Mem Pipes|Block Size|Grid Size|Waves|warp|cycles" | head -60 | tee $OUT/ncu_$1_$2.log
done
echo "all done ${SECONDS}s"
