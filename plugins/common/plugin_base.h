// What every trtcompile IPluginV3 adapter shares: the capability plumbing, name/version/
// namespace and attributes from the generated op table (op_fields.h), dtype mapping, and one
// creator template. An adapter adds only shapes, types, formats, workspace and enqueue.
#pragma once

#include <NvInferRuntime.h>

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "plugin_fields.h"
#include "trtc_launch.h"

#if NV_TENSORRT_MAJOR < 10 || (NV_TENSORRT_MAJOR == 10 && NV_TENSORRT_MINOR < 3)
#error "trtcompile plugins need TensorRT >= 10.3 (IPluginV3OneBuildV2, aliased plugin I/O)"
#endif

namespace trtc {
namespace plugin {

// The kernels' dtype for a TensorRT one; false where the launchers have none.
inline bool toTrtcDtype(nvinfer1::DataType t, trtc_dtype* out) noexcept {
  switch (t) {
    case nvinfer1::DataType::kFLOAT: *out = TRTC_F32; return true;
    case nvinfer1::DataType::kHALF: *out = TRTC_F16; return true;
    case nvinfer1::DataType::kBF16: *out = TRTC_BF16; return true;
    case nvinfer1::DataType::kFP8: *out = TRTC_FP8_E4M3; return true;
    case nvinfer1::DataType::kINT8: *out = TRTC_INT8; return true;
    default: return false;
  }
}

// Activation dtypes every kernel takes (q/k/v, x, y).
inline bool isActivationType(nvinfer1::DataType t) noexcept {
  return t == nvinfer1::DataType::kFLOAT || t == nvinfer1::DataType::kHALF ||
         t == nvinfer1::DataType::kBF16;
}

inline int64_t elementSize(nvinfer1::DataType t) noexcept {
  switch (t) {
    case nvinfer1::DataType::kFLOAT:
    case nvinfer1::DataType::kINT32: return 4;
    case nvinfer1::DataType::kHALF:
    case nvinfer1::DataType::kBF16: return 2;
    case nvinfer1::DataType::kFP8:
    case nvinfer1::DataType::kINT8:
    case nvinfer1::DataType::kUINT8:
    case nvinfer1::DataType::kBOOL: return 1;
    case nvinfer1::DataType::kINT64: return 8;
    default: return 0;
  }
}

// Product of dims [begin, end).
inline int64_t volume(nvinfer1::Dims const& d, int32_t begin, int32_t end) noexcept {
  int64_t v = 1;
  for (int32_t i = begin; i < end; ++i) v *= d.d[i];
  return v;
}

// Op: a generated trtc::op::<Name> table. Build: IPluginV3OneBuild or IPluginV3OneBuildV2.
template <class Derived, class Op, class Build = nvinfer1::IPluginV3OneBuild>
class PluginBase : public nvinfer1::IPluginV3,
                   public nvinfer1::IPluginV3OneCore,
                   public Build,
                   public nvinfer1::IPluginV3OneRuntime {
 public:
  explicit PluginBase(Attributes attrs) : mAttrs(std::move(attrs)) {}

  // IPluginV3
  nvinfer1::IPluginCapability* getCapabilityInterface(
      nvinfer1::PluginCapabilityType type) noexcept override {
    switch (type) {
      case nvinfer1::PluginCapabilityType::kCORE:
        return static_cast<nvinfer1::IPluginV3OneCore*>(this);
      case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<Build*>(this);
      case nvinfer1::PluginCapabilityType::kRUNTIME:
        return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    }
    return nullptr;
  }

  nvinfer1::IPluginV3* clone() noexcept override {
    try {
      return new Derived(static_cast<Derived const&>(*this));
    } catch (std::exception const& e) {
      logError(Op::kName, e.what());
      return nullptr;
    }
  }

  // IPluginV3OneCore
  char const* getPluginName() const noexcept override { return Op::kName; }
  char const* getPluginVersion() const noexcept override { return Op::kVersion; }
  char const* getPluginNamespace() const noexcept override { return Op::kNamespace; }

  // IPluginV3OneBuild (the rest is the adapter's)
  int32_t getNbOutputs() const noexcept override { return Op::kNbOutputs; }
  int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* /*in*/, int32_t /*nbInputs*/,
                          nvinfer1::DynamicPluginTensorDesc const* /*out*/,
                          int32_t /*nbOutputs*/) noexcept override {
    return 0;
  }

  // IPluginV3OneRuntime: everything enqueue needs is read from its tensor descriptors.
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* /*in*/, int32_t /*nbInputs*/,
                        nvinfer1::PluginTensorDesc const* /*out*/,
                        int32_t /*nbOutputs*/) noexcept override {
    return 0;
  }
  nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* /*ctx*/) noexcept override {
    return clone();
  }
  nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override {
    return mAttrs.collection();
  }

 protected:
  int32_t attrInt(int32_t field) const { return mAttrs.getInt(field); }
  float attrFloat(int32_t field) const { return mAttrs.getFloat(field); }
  int32_t fail(std::string const& message) const noexcept {
    logError(Op::kName, message);
    return -1;
  }

  Attributes mAttrs;
};

// One creator per plugin class. Plugin must define `using Op = ...`, a constructor from
// Attributes and `static bool validate(Attributes const&, std::string& error)`.
template <class Plugin>
class PluginCreator : public nvinfer1::IPluginCreatorV3One {
  using Op = typename Plugin::Op;

 public:
  PluginCreator() {
    for (int32_t i = 0; i < Op::kNbFields; ++i) {
      mFieldNames.emplace_back(Op::kFields[i].name, nullptr, pluginFieldType(Op::kFields[i].kind), 1);
    }
    mFieldCollection.nbFields = static_cast<int32_t>(mFieldNames.size());
    mFieldCollection.fields = mFieldNames.data();
  }

  nvinfer1::IPluginV3* createPlugin(char const* /*name*/, nvinfer1::PluginFieldCollection const* fc,
                                    nvinfer1::TensorRTPhase /*phase*/) noexcept override {
    try {
      Attributes attrs(Op::kFields, Op::kNbFields);
      std::string error;
      if (!attrs.parse(fc, error) || !Plugin::validate(attrs, error)) {
        logError(Op::kName, error);
        return nullptr;
      }
      return new Plugin(std::move(attrs));
    } catch (std::exception const& e) {
      logError(Op::kName, e.what());
      return nullptr;
    }
  }

  nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override { return &mFieldCollection; }
  char const* getPluginName() const noexcept override { return Op::kName; }
  char const* getPluginVersion() const noexcept override { return Op::kVersion; }
  char const* getPluginNamespace() const noexcept override { return Op::kNamespace; }

 private:
  std::vector<nvinfer1::PluginField> mFieldNames;
  nvinfer1::PluginFieldCollection mFieldCollection{};
};

}  // namespace plugin
}  // namespace trtc
