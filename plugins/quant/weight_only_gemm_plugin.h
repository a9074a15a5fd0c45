// TensorRT adapter of WeightOnlyGemm: x [.., K] @ dequant(qweight, scales[, zeros]) -> y [.., N]
// through trtc_weight_only_gemm (float32 scales read as they are; no pre-packed pairs).
#pragma once

#include "plugin_base.h"

namespace trtc {
namespace plugin {

class WeightOnlyGemmPlugin : public PluginBase<WeightOnlyGemmPlugin, op::WeightOnlyGemm> {
 public:
  using Op = op::WeightOnlyGemm;
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
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
                        nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
  int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
                  nvinfer1::PluginTensorDesc const* outputDesc, void const* const* inputs,
                  void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;

 private:
  // zeros is the one optional input (int4 asymmetric): 3 or 4 inputs.
  static bool inputCountOk(int32_t nbInputs) noexcept {
    return nbInputs == Op::kNbInputs || nbInputs == Op::kNbInputs - 1;
  }

  int32_t mNbInputs = Op::kNbInputs - 1;
};

}  // namespace plugin
}  // namespace trtc
