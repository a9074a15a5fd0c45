source .dev/pre.sh > /dev/null
export TRTCOMPILE_KERNELS_LIB=$PWD/build/s18c/libtrtcompile_kernels.so TRTC_PA_PREFILL_WG=2 TRTC_DEV_VAR=8
M=gpu__time_duration.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_elapsed,smsp__issue_active.avg.per_cycle_active,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio,smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio,smsp__average_warps_issue_stalled_wait_per_issue_active.ratio,smsp__average_warps_issue_stalled_membar_per_issue_active.ratio,smsp__average_warps_issue_stalled_math_pipe_throttle_per_issue_active.ratio,smsp__average_warps_issue_stalled_sleeping_per_issue_active.ratio
ncu --clock-control none -k regex:prefill_wg2 --launch-skip 1 --launch-count 1 --metrics $M python3 .dev/s18/ncu_4096.py 2>&1 | grep -E "prefill_wg|duration|pipe|issue|stalled|bank|wavefronts" | sed 's/(Args.*//'
ncu --clock-control none -k regex:prefill_wg2 --launch-skip 1 --launch-count 1 --section SourceCounters --section WarpStateStats --page source --csv --print-source sass python3 .dev/s18/ncu_4096.py > /tmp/src.csv 2>&1
python3 .dev/s18/reduce_source.py /tmp/src.csv > $OUT/09_v8_sass_samples.tsv 2>&1
head -40 $OUT/09_v8_sass_samples.tsv | cut -c1-150
