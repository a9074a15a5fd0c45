# session 26 call 3: wider quantized variants (16 warps x 2/3 stages, 8 x 4), forced by TRTC_PA_DECODE_MMA
set -u
source .dev/pre.sh
mkdir -p /tmp/libs $OUT
objs=$(find .k10/objs -name '*.o' | sort)
for v in w; do
  list=$(echo "$objs" | sed "s#.k10/objs/paged_attention/paged_attention_decode_mma.o#.k10/var/dm_$v.o#")
  nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o /tmp/libs/$v.so $list &
done
wait
export TRTCOMPILE_WORKLOAD=$PWD/.shared_bench/workload.py
echo "== sweep w ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/w.so timeout 250 python3 benchmarks/bench_kv_quant.py --sweep --batches 16,64 --pools fp8,int8 --kernels "8,3 8,4 16,2 16,3" --splits 1,2,3 2>&1 | tee $OUT/sweep_w.log
echo "== sweep w ctx 512 B 256 ${SECONDS}s"
TRTCOMPILE_KERNELS_LIB=/tmp/libs/w.so timeout 100 python3 benchmarks/bench_kv_quant.py --sweep --batches 256 --ctx 512 --pools fp8 --kernels "4,3 8,3 16,2" --splits 1,2 2>&1 | tee $OUT/sweep_w512.log
echo "all done ${SECONDS}s"
