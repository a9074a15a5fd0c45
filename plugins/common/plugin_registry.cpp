// The one registration list of libtrtcompile_plugins.so, and the two C entry points that
// IPluginRegistry::loadLibrary (Python: registry.load_library) looks up: getCreators and
// setLoggerFinder. getPluginCreators is not exported: it returns IPluginCreator, the
// deprecated IPluginV2 creator type, and these are IPluginV3 creators.
#include <NvInferRuntime.h>

#include <atomic>
#include <cstdio>

#include "paged_attention_plugin.h"
#include "rmsnorm_plugin.h"
#include "silu_mul_plugin.h"
#include "weight_only_gemm_plugin.h"

namespace trtc {
namespace plugin {
namespace {

// TensorRT hands the library its logger finder once, at load; a process-wide slot is what
// that ABI gives (the plugins themselves keep no mutable global state).
std::atomic<nvinfer1::ILoggerFinder*> gLoggerFinder{nullptr};

}  // namespace

void logError(char const* plugin, std::string const& message) noexcept {
  std::string const text = std::string("[trtcompile plugin ") + plugin + "] " + message;
  nvinfer1::ILoggerFinder* finder = gLoggerFinder.load();
  nvinfer1::ILogger* logger = finder != nullptr ? finder->findLogger() : nullptr;
  if (logger != nullptr) {
    logger->log(nvinfer1::ILogger::Severity::kERROR, text.c_str());
  } else {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
}

}  // namespace plugin
}  // namespace trtc

extern "C" TENSORRTAPI void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
  trtc::plugin::gLoggerFinder.store(finder);
}

extern "C" TENSORRTAPI nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
  using namespace trtc::plugin;
  static PluginCreator<PagedAttentionPlugin> pagedAttention;
  static PluginCreator<RMSNormPlugin> rmsNorm;
  static PluginCreator<SiluMulPlugin> siluMul;
  static PluginCreator<WeightOnlyGemmPlugin> weightOnlyGemm;
  static nvinfer1::IPluginCreatorInterface* const creators[] = {&pagedAttention, &rmsNorm, &siluMul,
                                                                &weightOnlyGemm};
  nbCreators = static_cast<int32_t>(sizeof(creators) / sizeof(creators[0]));
  return creators;
}
