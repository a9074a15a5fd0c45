// WeightOnlyGemm adapter: shapes and types for TensorRT, then one trtc_weight_only_gemm call.
#include "weight_only_gemm_plugin.h"

namespace trtc {
namespace plugin {

using nvinfer1::DataType;

bool WeightOnlyGemmPlugin::validate(Attributes const& attrs, std::string& error) {
  int32_t const bits = attrs.getInt(Op::kBits), group = attrs.getInt(Op::kGroupSize);
  if (bits != 8 && bits != 4) {
    error = "bits must be 8 or 4, got " + std::to_string(bits);
    return false;
  }
  if (group < 0 || group % 16 != 0) {
    error = "group_size must be 0 or a positive multiple of 16, got " + std::to_string(group);
    return false;
  }
  return true;
}

int32_t WeightOnlyGemmPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs,
                                                 DataType const* inputTypes,
                                                 int32_t nbInputs) const noexcept {
  if (!inputCountOk(nbInputs) || nbOutputs != Op::kNbOutputs) return -1;
  outputTypes[Op::kOutY] = inputTypes[Op::kInX];
  return 0;
}

int32_t WeightOnlyGemmPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                                              nvinfer1::DimsExprs const* /*shapeInputs*/,
                                              int32_t /*nbShapeInputs*/,
                                              nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                                              nvinfer1::IExprBuilder& /*exprBuilder*/) noexcept {
  if (!inputCountOk(nbInputs) || nbOutputs != Op::kNbOutputs) return -1;
  nvinfer1::DimsExprs const& x = inputs[Op::kInX];
  nvinfer1::DimsExprs const& w = inputs[Op::kInQweight];
  if (x.nbDims < 1 || w.nbDims != 2) return fail("x must be [.., K] and qweight [N, K or K/2]");
  outputs[Op::kOutY] = x;
  outputs[Op::kOutY].d[x.nbDims - 1] = w.d[0];  // N
  return 0;
}

bool WeightOnlyGemmPlugin::supportsFormatCombination(int32_t pos,
                                                     nvinfer1::DynamicPluginTensorDesc const* inOut,
                                                     int32_t nbInputs,
                                                     int32_t /*nbOutputs*/) noexcept {
  nvinfer1::PluginTensorDesc const& d = inOut[pos].desc;
  if (d.format != nvinfer1::TensorFormat::kLINEAR) return false;
  DataType const x = inOut[Op::kInX].desc.type;
  if (pos >= nbInputs) return d.type == x;  // y
  switch (pos) {
    case Op::kInX: return x == DataType::kHALF || x == DataType::kBF16;
    case Op::kInQweight:
      return d.type == (attrInt(Op::kBits) == 8 ? DataType::kINT8 : DataType::kUINT8);
    default: return d.type == DataType::kFLOAT;  // scales, zeros
  }
}

int32_t WeightOnlyGemmPlugin::onShapeChange(nvinfer1::PluginTensorDesc const* /*in*/,
                                            int32_t nbInputs,
                                            nvinfer1::PluginTensorDesc const* /*out*/,
                                            int32_t /*nbOutputs*/) noexcept {
  if (!inputCountOk(nbInputs)) return fail("expected 3 or 4 inputs");
  mNbInputs = nbInputs;  // enqueue learns here whether zeros is present
  return 0;
}

int32_t WeightOnlyGemmPlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
                                      nvinfer1::PluginTensorDesc const* /*outputDesc*/,
                                      void const* const* inputs, void* const* outputs,
                                      void* /*workspace*/, cudaStream_t stream) noexcept {
  nvinfer1::Dims const& x = inputDesc[Op::kInX].dims;
  int64_t const k = x.d[x.nbDims - 1];
  int64_t const m = volume(x, 0, x.nbDims - 1);
  int64_t const n = inputDesc[Op::kInQweight].dims.d[0];
  trtc_dtype dtype;
  if (!toTrtcDtype(inputDesc[Op::kInX].type, &dtype)) return fail("unsupported dtype");
  if (m == 0) return 0;
  void const* zeros = mNbInputs == Op::kNbInputs ? inputs[Op::kInZeros] : nullptr;
  int const rc = trtc_weight_only_gemm(
      inputs[Op::kInX], k, inputs[Op::kInQweight], static_cast<float const*>(inputs[Op::kInScales]),
      static_cast<float const*>(zeros), nullptr, outputs[Op::kOutY], m, static_cast<int32_t>(n),
      static_cast<int32_t>(k), attrInt(Op::kBits), attrInt(Op::kGroupSize), dtype, stream);
  return rc == 0 ? 0 : fail("trtc_weight_only_gemm failed with CUDA error " + std::to_string(rc));
}

}  // namespace plugin
}  // namespace trtc
