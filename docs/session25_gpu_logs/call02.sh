# session 25 call 2: ncu of the fp8 / bf16 decode kernels at B=16 ctx 4096
set -u
source .dev/pre.sh
make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so
mkdir -p $OUT
echo "build ${SECONDS}s"
for pool in fp8 bf16; do
  ncu --clock-control none -k regex:decode_mma --launch-skip 1 --launch-count 1 --section SpeedOfLight --section Occupancy --section SchedulerStats --section WarpStateStats --section LaunchStats --section MemoryWorkloadAnalysis python3 .dev/ncu_kv.py $pool 16 > $OUT/ncu_${pool}_details.txt 2>&1
  ncu --clock-control none -k regex:decode_mma --launch-skip 1 --launch-count 1 --section SourceCounters --section WarpStateStats --page source --csv --print-source sass python3 .dev/ncu_kv.py $pool 16 > $OUT/ncu_${pool}_src.csv 2>&1
  echo "$pool done ${SECONDS}s"; grep -E "Duration|Issue Slots Busy|Warp Cycles Per Issued|Achieved Occupancy|DRAM Throughput|Registers" $OUT/ncu_${pool}_details.txt | head -12
done
echo "all done ${SECONDS}s"
