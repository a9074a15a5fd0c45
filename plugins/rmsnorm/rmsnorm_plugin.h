// TensorRT adapter of RMSNorm (optionally fused with the residual add) through trtc_rmsnorm.
// The plugin always has two outputs; without the residual input, residual_out is an empty
// tensor of shape [0] (getNbOutputs cannot see how many inputs the node has).
#pragma once

#include "plugin_base.h"

namespace trtc {
namespace plugin {

class RMSNormPlugin : public PluginBase<RMSNormPlugin, op::RMSNorm> {
 public:
  using Op = op::RMSNorm;
  using PluginBase::PluginBase;

  static bool validate(Attributes const& attrs, std::string& error);

  int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
                             nvinfer1::DataType const* inputTypes,
                             int32_t nbInputs) const noexcept override;
  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                          nvinfer1::DimsExprs const* shapeInputs, int32_t nbShapeInputs,
                          nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                          nvinfer1::IExprBuilder& exprBuilder) noexcept override;
  bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut,
                                 int32_t nbInputs, int32_t nbOutputs) noexcept override;
  int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
                  nvinfer1::PluginTensorDesc const* outputDesc, void const* const* inputs,
                  void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
};

}  // namespace plugin
}  // namespace trtc
