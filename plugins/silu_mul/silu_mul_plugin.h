// TensorRT adapter of SiluMul: x [.., 2I] -> y [.., I] through trtc_silu_mul.
#pragma once

#include "plugin_base.h"

namespace trtc {
namespace plugin {

class SiluMulPlugin : public PluginBase<SiluMulPlugin, op::SiluMul> {
 public:
  using Op = op::SiluMul;
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
