# session 26 call 4: cp.async copies (TMA off) for the new quantized path; ncu of fp8 B=16
set -u
source .dev/pre.sh
mkdir -p /tmp/libs $OUT
objs=$(find .k10/objs -name '*.o' | sort)
list=$(echo "$objs" | sed "s#.k10/objs/paged_attention/paged_attention_decode_mma.o#.k10/var/dm_w.o#")
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o /tmp/libs/w.so $list
export TRTCOMPILE_KERNELS_LIB=/tmp/libs/w.so
echo "== sweep TMA=0 ${SECONDS}s"
TRTC_PA_DECODE_TMA=0 timeout 150 python3 benchmarks/bench_kv_quant.py --sweep --batches 16,64 --pools fp8,int8 --kernels "4,3 8,3 16,2" --splits 1,2,4 2>&1 | tee $OUT/sweep_cpasync.log
echo "== ncu ${SECONDS}s"
for pool in fp8 bf16; do
  ncu --clock-control none -k regex:decode_mma --launch-skip 1 --launch-count 1 --section SpeedOfLight --section Occupancy --section SchedulerStats --section WarpStateStats --section LaunchStats --section MemoryWorkloadAnalysis python3 .dev/ncu_kv.py $pool 16 > $OUT/ncu_${pool}_details.txt 2>&1
  grep -E "Duration|Issue Slots Busy|Warp Cycles Per Issued|Achieved Occupancy|DRAM Throughput|Registers|L2 Hit|Mem Busy|Max Bandwidth|Block Limit" $OUT/ncu_${pool}_details.txt | head -16
done
ncu --clock-control none -k regex:decode_mma --launch-skip 1 --launch-count 1 --section SourceCounters --section WarpStateStats --page source --csv --print-source sass python3 .dev/ncu_kv.py fp8 16 > /tmp/ncu_fp8_src.csv 2>&1
python3 .dev/stalls.py /tmp/ncu_fp8_src.csv > $OUT/stalls_fp8.txt 2>&1; head -45 $OUT/stalls_fp8.txt
echo "all done ${SECONDS}s"
