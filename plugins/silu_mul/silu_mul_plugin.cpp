// SiluMul adapter: shapes and types for TensorRT, then one trtc_silu_mul call.
#include "silu_mul_plugin.h"

namespace trtc {
namespace plugin {

using nvinfer1::DataType;

bool SiluMulPlugin::validate(Attributes const& /*attrs*/, std::string& /*error*/) { return true; }

int32_t SiluMulPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs,
                                          DataType const* inputTypes,
                                          int32_t nbInputs) const noexcept {
  if (nbInputs != Op::kNbInputs || nbOutputs != Op::kNbOutputs) return -1;
  outputTypes[Op::kOutY] = inputTypes[Op::kInX];
  return 0;
}

int32_t SiluMulPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                                       nvinfer1::DimsExprs const* /*shapeInputs*/,
                                       int32_t /*nbShapeInputs*/, nvinfer1::DimsExprs* outputs,
                                       int32_t nbOutputs,
                                       nvinfer1::IExprBuilder& exprBuilder) noexcept {
  if (nbInputs != Op::kNbInputs || nbOutputs != Op::kNbOutputs) return -1;
  nvinfer1::DimsExprs const& x = inputs[Op::kInX];
  if (x.nbDims < 1) return fail("x must have at least one dimension");
  int32_t const last = x.nbDims - 1;
  outputs[Op::kOutY] = x;
  outputs[Op::kOutY].d[last] = exprBuilder.operation(nvinfer1::DimensionOperation::kFLOOR_DIV,
                                                     *x.d[last], *exprBuilder.constant(2));
  return 0;
}

bool SiluMulPlugin::supportsFormatCombination(int32_t pos,
                                              nvinfer1::DynamicPluginTensorDesc const* inOut,
                                              int32_t /*nbInputs*/, int32_t /*nbOutputs*/) noexcept {
  nvinfer1::PluginTensorDesc const& d = inOut[pos].desc;
  if (d.format != nvinfer1::TensorFormat::kLINEAR) return false;
  if (pos == Op::kInX) return isActivationType(d.type);
  return d.type == inOut[Op::kInX].desc.type;
}

int32_t SiluMulPlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
                               nvinfer1::PluginTensorDesc const* /*outputDesc*/,
                               void const* const* inputs, void* const* outputs,
                               void* /*workspace*/, cudaStream_t stream) noexcept {
  nvinfer1::Dims const& x = inputDesc[Op::kInX].dims;
  int64_t const width = x.d[x.nbDims - 1];
  if (width % 2 != 0) return fail("last dimension of x must be even (gate | up)");
  trtc_dtype dtype;
  if (!toTrtcDtype(inputDesc[Op::kInX].type, &dtype)) return fail("unsupported dtype");
  int64_t const rows = volume(x, 0, x.nbDims - 1);
  if (rows == 0) return 0;
  int const rc = trtc_silu_mul(inputs[Op::kInX], outputs[Op::kOutY], rows,
                               static_cast<int32_t>(width / 2), dtype, stream);
  return rc == 0 ? 0 : fail("trtc_silu_mul failed with CUDA error " + std::to_string(rc));
}

}  // namespace plugin
}  // namespace trtc
