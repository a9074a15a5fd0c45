# call 4: where the W1 modes come from (CPU placement), and the host's launch time per step,
# new against base on pinned CPUs
set -u
source .dev/pre.sh
[ -f build/full/libtrtcompile_kernels.so ] || make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
mkdir -p $OUT
echo "build ${SECONDS}s"
{
nvidia-smi topo -m
lscpu | grep -iE "numa|socket|core|model name|mhz"
BUS=$(nvidia-smi --query-gpu=pci.bus_id --format=csv,noheader | head -1 | tr A-Z a-z | sed 's/^0000//')
echo "gpu $BUS local_cpulist: $(cat /sys/bus/pci/devices/$BUS/local_cpulist 2>&1)"
} 2>&1 | tee $OUT/c4_topo.log
R=$PWD
run() {  # run new|base CPUS ARGS...
  local which=$1 cpus=$2; shift 2
  local pin=""; [ "$cpus" = all ] || pin="taskset -c $cpus"
  if [ $which = new ]; then PYTHONPATH=$R:/tmp/site $pin python3 "$@"; else (cd $R/.dev/base && PYTHONPATH=$R/.dev/base:/tmp/site $pin python3 "$@"); fi
}
w1() {  # w1 which cpus shape [extra]
  local which=$1 cpus=$2 shape=$3; shift 3
  echo "== W1 $shape $which cpus=$cpus at ${SECONDS}s" | tee -a $OUT/c4_w1_full.log
  run $which $cpus benchmarks/bench_w1.py --shape $shape --artifact /tmp/w1_$shape --repeats 5 --warmup 2 "$@" \
      2>&1 | grep -v "it/s\]" | tee -a $OUT/c4_w1_full.log | grep -E "^run|median_tokens|step timeline|^ +(prefill|decode)|steps +count"
}
for cpus in 4-7 12-15 all 0-3 8-11 all; do w1 new $cpus smollm2-135m; done
for which in new base new base; do w1 $which 4-7 llama-3.2-1b --step-times; done
for which in new base; do w1 $which 4-7 smollm2-135m --step-times; done
echo "all done ${SECONDS}s"
