// TensorRT adapter of PagedAttention through trtc_paged_attention. Output 1 (kv_cache_out)
// aliases input kv_cache through IPluginV3OneBuildV2::getAliasedInput (TensorRT >= 10.3; the
// builder must enable PreviewFeature::kALIASED_PLUGIN_IO_10_03), so K/V land in the
// runtime's pool in place.
#pragma once

#include <array>

#include "plugin_base.h"

namespace trtc {
namespace plugin {

// Where each logical input (op::PagedAttention::Input) sits among the plugin's actual inputs;
// -1 where absent. Empty optional ONNX inputs may reach the plugin either as positions of
// the full list (11 inputs) or dropped from it (compacted); both are accepted.
struct PagedAttentionInputs {
  std::array<int32_t, op::PagedAttention::kNbInputs> index;
  bool resolve(int32_t nbInputs, bool fusedQkv, bool rotary);
  int32_t operator[](int32_t logical) const { return index[logical]; }
};

class PagedAttentionPlugin
    : public PluginBase<PagedAttentionPlugin, op::PagedAttention, nvinfer1::IPluginV3OneBuildV2> {
 public:
  using Op = op::PagedAttention;
  using PluginBase::PluginBase;

  static bool validate(Attributes const& attrs, std::string& error);

  // IPluginV3OneBuildV2
  int32_t getAliasedInput(int32_t outputIndex) noexcept override;

  // IPluginV3OneBuild
  int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const* out,
                          int32_t nbOutputs) noexcept override;
  int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
                             nvinfer1::DataType const* inputTypes,
                             int32_t nbInputs) const noexcept override;
  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                          nvinfer1::DimsExprs const* shapeInputs, int32_t nbShapeInputs,
                          nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                          nvinfer1::IExprBuilder& exprBuilder) noexcept override;
  bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut,
                                 int32_t nbInputs, int32_t nbOutputs) noexcept override;
  size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const* outputs,
                          int32_t nbOutputs) const noexcept override;

  // IPluginV3OneRuntime
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
                        nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
  int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
                  nvinfer1::PluginTensorDesc const* outputDesc, void const* const* inputs,
                  void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;

 private:
  bool fusedQkv() const { return attrInt(Op::kFusedQkv) != 0; }
  bool rotary() const { return attrInt(Op::kRotaryDim) > 0; }
  bool layout(int32_t nbInputs, PagedAttentionInputs* in) const;
  // Launcher parameters from input shapes/types (indexed by actual input) and attributes.
  bool fillParams(nvinfer1::Dims const* dims, nvinfer1::DataType const* types,
                  PagedAttentionInputs const& in, trtc_paged_attention_params* p,
                  std::string& error) const;

  int32_t mNbInputs{0};  // learnt from the first build call that tells it; 0 = not yet
};

}  // namespace plugin
}  // namespace trtc
