// Plugin attributes: read from a PluginFieldCollection against a generated FieldSpec table
// (op_fields.h), kept as typed values, written back for getFieldsToSerialize.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "op_fields.h"

namespace trtc {
namespace plugin {

nvinfer1::PluginFieldType pluginFieldType(FieldKind kind) noexcept;

class Attributes {
 public:
  Attributes(FieldSpec const* specs, int32_t count);

  // Overwrites the defaults with the fields of `fc` (ints may come as INT8..INT64, floats as
  // FLOAT16..FLOAT64). Unknown names are ignored. False, with `error` set, on a bad field.
  bool parse(nvinfer1::PluginFieldCollection const* fc, std::string& error);

  int32_t getInt(int32_t index) const { return mInts[index]; }
  float getFloat(int32_t index) const { return mFloats[index]; }
  std::string const& getString(int32_t index) const { return mStrings[index]; }

  // Valid until the next call or until this object is copied, moved or destroyed.
  nvinfer1::PluginFieldCollection const* collection();

 private:
  bool set(int32_t index, nvinfer1::PluginField const& field, std::string& error);

  FieldSpec const* mSpecs;
  int32_t mCount;
  std::vector<int32_t> mInts;
  std::vector<float> mFloats;
  std::vector<std::string> mStrings;
  std::vector<nvinfer1::PluginField> mFields;
  nvinfer1::PluginFieldCollection mCollection{};
};

// Log through the logger TensorRT handed to setLoggerFinder (stderr before that).
void logError(char const* plugin, std::string const& message) noexcept;

}  // namespace plugin
}  // namespace trtc
