// Attributes: PluginFieldCollection <-> typed values (see plugin_fields.h).
#include "plugin_fields.h"

#include <cstring>

namespace trtc {
namespace plugin {

using nvinfer1::PluginField;
using nvinfer1::PluginFieldType;

PluginFieldType pluginFieldType(FieldKind kind) noexcept {
  switch (kind) {
    case FieldKind::kInt: return PluginFieldType::kINT32;
    case FieldKind::kFloat: return PluginFieldType::kFLOAT32;
    case FieldKind::kString: return PluginFieldType::kCHAR;
  }
  return PluginFieldType::kUNKNOWN;
}

Attributes::Attributes(FieldSpec const* specs, int32_t count)
    : mSpecs(specs), mCount(count), mInts(count, 0), mFloats(count, 0.f), mStrings(count) {
  for (int32_t i = 0; i < count; ++i) {
    mInts[i] = static_cast<int32_t>(specs[i].default_value);
    mFloats[i] = static_cast<float>(specs[i].default_value);
  }
}

namespace {

bool readInteger(PluginField const& f, int64_t* out) {
  switch (f.type) {
    case PluginFieldType::kINT8: *out = *static_cast<int8_t const*>(f.data); return true;
    case PluginFieldType::kINT16: *out = *static_cast<int16_t const*>(f.data); return true;
    case PluginFieldType::kINT32: *out = *static_cast<int32_t const*>(f.data); return true;
    case PluginFieldType::kINT64: *out = *static_cast<int64_t const*>(f.data); return true;
    default: return false;
  }
}

bool readReal(PluginField const& f, double* out) {
  switch (f.type) {
    case PluginFieldType::kFLOAT32: *out = *static_cast<float const*>(f.data); return true;
    case PluginFieldType::kFLOAT64: *out = *static_cast<double const*>(f.data); return true;
    default: {
      int64_t v = 0;
      if (!readInteger(f, &v)) return false;
      *out = static_cast<double>(v);
      return true;
    }
  }
}

}  // namespace

bool Attributes::set(int32_t i, PluginField const& f, std::string& error) {
  std::string const name = mSpecs[i].name;
  if (f.data == nullptr || f.length < 1) {
    error = "field '" + name + "' has no data";
    return false;
  }
  switch (mSpecs[i].kind) {
    case FieldKind::kInt: {
      int64_t v = 0;
      if (!readInteger(f, &v) || v < INT32_MIN || v > INT32_MAX) {
        error = "field '" + name + "' must be a 32-bit integer";
        return false;
      }
      mInts[i] = static_cast<int32_t>(v);
      return true;
    }
    case FieldKind::kFloat: {
      double v = 0;
      if (!readReal(f, &v)) {
        error = "field '" + name + "' must be a float";
        return false;
      }
      mFloats[i] = static_cast<float>(v);
      return true;
    }
    case FieldKind::kString: {
      if (f.type != PluginFieldType::kCHAR) {
        error = "field '" + name + "' must be a string";
        return false;
      }
      char const* s = static_cast<char const*>(f.data);
      mStrings[i].assign(s, strnlen(s, static_cast<size_t>(f.length)));
      return true;
    }
  }
  return false;
}

bool Attributes::parse(nvinfer1::PluginFieldCollection const* fc, std::string& error) {
  if (fc == nullptr) return true;
  for (int32_t k = 0; k < fc->nbFields; ++k) {
    PluginField const& f = fc->fields[k];
    if (f.name == nullptr) continue;
    for (int32_t i = 0; i < mCount; ++i) {
      if (std::strcmp(f.name, mSpecs[i].name) == 0 && !set(i, f, error)) return false;
    }
  }
  return true;
}

nvinfer1::PluginFieldCollection const* Attributes::collection() {
  mFields.clear();
  for (int32_t i = 0; i < mCount; ++i) {
    switch (mSpecs[i].kind) {
      case FieldKind::kInt:
        mFields.emplace_back(mSpecs[i].name, &mInts[i], PluginFieldType::kINT32, 1);
        break;
      case FieldKind::kFloat:
        mFields.emplace_back(mSpecs[i].name, &mFloats[i], PluginFieldType::kFLOAT32, 1);
        break;
      case FieldKind::kString:
        mFields.emplace_back(mSpecs[i].name, mStrings[i].c_str(), PluginFieldType::kCHAR,
                             static_cast<int32_t>(mStrings[i].size() + 1));
        break;
    }
  }
  mCollection.nbFields = static_cast<int32_t>(mFields.size());
  mCollection.fields = mFields.data();
  return &mCollection;
}

}  // namespace plugin
}  // namespace trtc
