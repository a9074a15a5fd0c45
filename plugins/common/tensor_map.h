// Host side of tensor copies (TMA): the driver's cuTensorMapEncodeTiled, looked up once, and the
// maps made with it, kept by every argument that shapes them.
#pragma once

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace trtc {

// nullptr where the driver offers no cuTensorMapEncodeTiled.
inline PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult q{};
    const bool ok = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault,
                                                     &q) == cudaSuccess &&
                    q == cudaDriverEntryPointSuccess;
    cudaGetLastError();
    return ok ? reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn) : nullptr;
  }();
  return encode;
}

// A tiled tensor map of `rank` (1-5) dimensions, innermost first: extents and box in elements,
// strides of the dimensions after the first in bytes (entries past the rank zero).
struct TensorMapNd {
  const void* base;
  CUtensorMapDataType type;
  uint32_t rank;
  uint64_t dims[5];
  uint64_t strides[4];
  uint32_t box[5];
  CUtensorMapSwizzle swizzle;
  CUtensorMapL2promotion promotion;

  bool operator==(const TensorMapNd& o) const {
    return base == o.base && type == o.type && rank == o.rank && swizzle == o.swizzle &&
           promotion == o.promotion && std::equal(dims, dims + 5, o.dims) &&
           std::equal(strides, strides + 4, o.strides) && std::equal(box, box + 5, o.box);
  }
};

// The map `d` describes, made once and kept by every field (a weight's map is made once, an
// activation buffer's or a KV pool's once per shape). False where the driver has no encoder or
// refuses the map.
inline bool tensor_map(const TensorMapNd& d, CUtensorMap& out) {
  struct Hash {
    size_t operator()(const TensorMapNd& k) const {
      size_t h = reinterpret_cast<size_t>(k.base);
      auto mix = [&](uint64_t v) { h = h * 1000003u ^ v; };
      for (uint64_t v : {uint64_t(k.type), uint64_t(k.rank), uint64_t(k.swizzle), uint64_t(k.promotion)}) mix(v);
      for (uint64_t v : k.dims) mix(v);
      for (uint64_t v : k.strides) mix(v);
      for (uint32_t v : k.box) mix(v);
      return h;
    }
  };
  static std::mutex mu;
  static std::unordered_map<TensorMapNd, CUtensorMap, Hash> cache;
  const PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
  if (encode == nullptr || d.rank < 1 || d.rank > 5) return false;
  std::lock_guard<std::mutex> lock(mu);
  const auto hit = cache.find(d);
  if (hit != cache.end()) {
    out = hit->second;
    return true;
  }
  cuuint64_t dims[5], strides[4];
  cuuint32_t box[5];
  const cuuint32_t steps[5] = {1, 1, 1, 1, 1};
  std::copy(d.dims, d.dims + 5, dims);
  std::copy(d.strides, d.strides + 4, strides);
  std::copy(d.box, d.box + 5, box);
  CUtensorMap map;
  if (encode(&map, d.type, d.rank, const_cast<void*>(d.base), dims, strides, box, steps,
             CU_TENSOR_MAP_INTERLEAVE_NONE, d.swizzle, d.promotion, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) != CUDA_SUCCESS)
    return false;
  if (cache.size() >= 4096) cache.clear();  // buffers come and go: keep the table bounded
  cache.emplace(d, map);
  out = map;
  return true;
}

// A row-major 2D tensor of `rows` rows of `cols` elements, `row_bytes` apart, read in boxes of
// box_rows x box_cols (L2 promotion of 256 bytes).
struct TensorMap2d {
  const void* base;
  CUtensorMapDataType type;
  uint64_t cols, rows, row_bytes;
  uint32_t box_cols, box_rows;
  CUtensorMapSwizzle swizzle;
};

inline bool tensor_map_2d(const TensorMap2d& d, CUtensorMap& out) {
  return tensor_map({d.base, d.type, 2, {d.cols, d.rows}, {d.row_bytes}, {d.box_cols, d.box_rows}, d.swizzle,
                     CU_TENSOR_MAP_L2_PROMOTION_L2_256B},
                    out);
}

}  // namespace trtc
