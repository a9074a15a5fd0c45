# session 26 call 9: what fused decode saves (bf16 fused vs unfused) next to fp8, HEAD's kernels
set -u
source .dev/pre.sh
mkdir -p /tmp/libs $OUT
objs=$(find .k10/objs -name '*.o' | sort)
list=$(echo "$objs" | sed "s#.k10/objs/paged_attention/paged_attention_decode_mma.o#.k10/var/dm_f.o#; s#.k10/objs/paged_attention/paged_attention_decode.o#.k10/var/d_f.o#")
nvcc --shared -gencode=arch=compute_90a,code=sm_90a -o /tmp/libs/f2.so $list
TRTCOMPILE_KERNELS_LIB=/tmp/libs/f2.so timeout 200 python3 .dev/s26_fused.py 2>&1 | tee $OUT/fused.log
echo "all done ${SECONDS}s"
