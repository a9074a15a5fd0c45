set -u
source .dev/pre.sh
[ -f build/full/libtrtcompile_kernels.so ] || make -C plugins -j16 ARCHS=90a BUILD=$PWD/build/full > /tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
export TRTCOMPILE_KERNELS_LIB=$PWD/build/full/libtrtcompile_kernels.so
mkdir -p $OUT
python3 .dev/ab_inputs.py .dev/old_cuda_graphs.py 2>&1 | tee $OUT/c2_ab.log | head -80
