// RMSNorm adapter: inputs x, weight[, residual]; outputs y, residual_out ([0] if no residual).
#include "rmsnorm_plugin.h"

namespace trtc {
namespace plugin {

using nvinfer1::DataType;

namespace {
// x and weight, with or without residual.
bool validInputCount(int32_t n) { return n == op::RMSNorm::kInResidual || n == op::RMSNorm::kNbInputs; }
}  // namespace

bool RMSNormPlugin::validate(Attributes const& attrs, std::string& error) {
  if (!(attrs.getFloat(Op::kEpsilon) >= 0.f)) {
    error = "epsilon must be >= 0";
    return false;
  }
  return true;
}

int32_t RMSNormPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs,
                                          DataType const* inputTypes,
                                          int32_t nbInputs) const noexcept {
  if (!validInputCount(nbInputs) || nbOutputs != Op::kNbOutputs) return -1;
  outputTypes[Op::kOutY] = inputTypes[Op::kInX];
  outputTypes[Op::kOutResidualOut] = inputTypes[Op::kInX];
  return 0;
}

int32_t RMSNormPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                                       nvinfer1::DimsExprs const* /*shapeInputs*/,
                                       int32_t /*nbShapeInputs*/, nvinfer1::DimsExprs* outputs,
                                       int32_t nbOutputs,
                                       nvinfer1::IExprBuilder& exprBuilder) noexcept {
  if (!validInputCount(nbInputs) || nbOutputs != Op::kNbOutputs) return -1;
  outputs[Op::kOutY] = inputs[Op::kInX];
  if (nbInputs == Op::kNbInputs) {
    outputs[Op::kOutResidualOut] = inputs[Op::kInX];
  } else {
    outputs[Op::kOutResidualOut].nbDims = 1;
    outputs[Op::kOutResidualOut].d[0] = exprBuilder.constant(0);
  }
  return 0;
}

bool RMSNormPlugin::supportsFormatCombination(int32_t pos,
                                              nvinfer1::DynamicPluginTensorDesc const* inOut,
                                              int32_t /*nbInputs*/, int32_t /*nbOutputs*/) noexcept {
  nvinfer1::PluginTensorDesc const& d = inOut[pos].desc;
  if (d.format != nvinfer1::TensorFormat::kLINEAR) return false;
  if (pos == Op::kInX) return isActivationType(d.type);
  return d.type == inOut[Op::kInX].desc.type;  // one dtype for x, weight, residual and outputs
}

int32_t RMSNormPlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
                               nvinfer1::PluginTensorDesc const* outputDesc,
                               void const* const* inputs, void* const* outputs,
                               void* /*workspace*/, cudaStream_t stream) noexcept {
  nvinfer1::Dims const& x = inputDesc[Op::kInX].dims;
  int64_t const hidden = x.d[x.nbDims - 1];
  if (volume(inputDesc[Op::kInWeight].dims, 0, inputDesc[Op::kInWeight].dims.nbDims) != hidden) {
    return fail("weight must have as many elements as the last dimension of x");
  }
  trtc_dtype dtype;
  if (!toTrtcDtype(inputDesc[Op::kInX].type, &dtype)) return fail("unsupported dtype");
  int64_t const rows = volume(x, 0, x.nbDims - 1);
  if (rows == 0) return 0;
  // enqueue is not told nbInputs: the residual input is present iff residual_out has x's
  // element count (getOutputShapes made it [0] otherwise; rows > 0 here).
  nvinfer1::Dims const& r = outputDesc[Op::kOutResidualOut].dims;
  bool const fused = volume(r, 0, r.nbDims) == volume(x, 0, x.nbDims);
  void const* residual = fused ? inputs[Op::kInResidual] : nullptr;
  void* residualOut = fused ? outputs[Op::kOutResidualOut] : nullptr;
  int const rc = trtc_rmsnorm(inputs[Op::kInX], residual, inputs[Op::kInWeight], outputs[Op::kOutY],
                              residualOut, rows, static_cast<int32_t>(hidden),
                              attrFloat(Op::kEpsilon), dtype, stream);
  return rc == 0 ? 0 : fail("trtc_rmsnorm failed with CUDA error " + std::to_string(rc));
}

}  // namespace plugin
}  // namespace trtc
