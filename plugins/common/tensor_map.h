// Host side of tensor copies (TMA): the driver's cuTensorMapEncodeTiled, looked up once, and 2D
// maps kept by every argument that shapes them, so that a weight's map is made once and an
// activation buffer's once per shape.
#pragma once

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

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

// A row-major 2D tensor of `rows` rows of `cols` elements, `row_bytes` apart, read in boxes of
// box_rows x box_cols. False where the driver has no encoder or refuses the map.
struct TensorMap2d {
  const void* base;
  CUtensorMapDataType type;
  uint64_t cols, rows, row_bytes;
  uint32_t box_cols, box_rows;
  CUtensorMapSwizzle swizzle;
};

inline bool tensor_map_2d(const TensorMap2d& d, CUtensorMap& out) {
  struct Hash {
    size_t operator()(const TensorMap2d& k) const {
      size_t h = reinterpret_cast<size_t>(k.base);
      for (uint64_t v : {uint64_t(k.type), k.cols, k.rows, k.row_bytes, uint64_t(k.box_cols), uint64_t(k.box_rows),
                         uint64_t(k.swizzle)})
        h = h * 1000003u ^ v;
      return h;
    }
  };
  struct Eq {
    bool operator()(const TensorMap2d& a, const TensorMap2d& b) const {
      return a.base == b.base && a.type == b.type && a.cols == b.cols && a.rows == b.rows &&
             a.row_bytes == b.row_bytes && a.box_cols == b.box_cols && a.box_rows == b.box_rows &&
             a.swizzle == b.swizzle;
    }
  };
  static std::mutex mu;
  static std::unordered_map<TensorMap2d, CUtensorMap, Hash, Eq> cache;
  const PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
  if (encode == nullptr) return false;
  std::lock_guard<std::mutex> lock(mu);
  const auto hit = cache.find(d);
  if (hit != cache.end()) {
    out = hit->second;
    return true;
  }
  const cuuint64_t dims[2] = {d.cols, d.rows};
  const cuuint64_t strides[1] = {d.row_bytes};
  const cuuint32_t box[2] = {d.box_cols, d.box_rows};
  const cuuint32_t steps[2] = {1, 1};
  CUtensorMap map;
  if (encode(&map, d.type, 2, const_cast<void*>(d.base), dims, strides, box, steps, CU_TENSOR_MAP_INTERLEAVE_NONE,
             d.swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) != CUDA_SUCCESS)
    return false;
  if (cache.size() >= 4096) cache.clear();  // buffers come and go: keep the table bounded
  cache.emplace(d, map);
  out = map;
  return true;
}

}  // namespace trtc
