#!/usr/bin/env bash
# Compile every TensorRT adapter against one TensorRT include/ directory (syntax only).
#   plugins/check_adapters.sh /tmp/trt-11/include
set -euo pipefail
TRT_INCLUDE_DIR=${1:?usage: $0 TRT_INCLUDE_DIR}
CXX=${CXX:-g++-12}
CUDA_INCLUDE=${CUDA_INCLUDE:-/usr/local/cuda/include}
cd "$(dirname "$0")"
for src in common/plugin_fields.cpp common/plugin_registry.cpp \
           paged_attention/paged_attention_plugin.cpp rmsnorm/rmsnorm_plugin.cpp \
           silu_mul/silu_mul_plugin.cpp quant/weight_only_gemm_plugin.cpp; do
  echo "$CXX $src"
  "$CXX" -std=c++17 -Werror -Wall -Wextra -isystem "$TRT_INCLUDE_DIR" -I common -I "$CUDA_INCLUDE" \
    -I paged_attention -I quant -I rmsnorm -I silu_mul -fsyntax-only "$src"
done
