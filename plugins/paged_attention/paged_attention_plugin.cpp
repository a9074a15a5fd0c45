// PagedAttention adapter: input layout, shapes, types, alias and workspace for TensorRT;
// enqueue fills trtc_paged_attention_params from descriptors + attributes and launches.
#include "paged_attention_plugin.h"

namespace trtc {
namespace plugin {

using nvinfer1::DataType;
using nvinfer1::Dims;
using PA = op::PagedAttention;

namespace {
constexpr int32_t kKvRank = 6;  // [L, 2, N, b, Hkv, D]
}  // namespace

bool PagedAttentionInputs::resolve(int32_t nbInputs, bool fusedQkv, bool rotary) {
  index.fill(-1);
  if (nbInputs == PA::kNbInputs) {  // positional: every slot present, empty ones unused
    for (int32_t i = 0; i < PA::kNbInputs; ++i) index[i] = i;
    if (fusedQkv) index[PA::kInK] = index[PA::kInV] = -1;
    if (!rotary) index[PA::kInInvFreq] = -1;
    return true;
  }
  int32_t next = 0;  // compacted: absent optional inputs dropped
  for (int32_t i = 0; i < PA::kNbInputs; ++i) {
    bool const present = !((i == PA::kInK || i == PA::kInV) && fusedQkv) &&
                         !(i == PA::kInInvFreq && !rotary) && i != PA::kInKvScales;
    if (present) index[i] = next++;
  }
  if (nbInputs == next + 1) index[PA::kInKvScales] = next++;
  return nbInputs == next;
}

bool PagedAttentionPlugin::layout(int32_t nbInputs, PagedAttentionInputs* in) const {
  return in->resolve(nbInputs, fusedQkv(), rotary());
}

bool PagedAttentionPlugin::validate(Attributes const& a, std::string& error) {
  int32_t const hq = a.getInt(PA::kNumHeads), hkv = a.getInt(PA::kNumKvHeads);
  int32_t const d = a.getInt(PA::kHeadDim), rot = a.getInt(PA::kRotaryDim);
  if (hq <= 0 || hkv <= 0 || hq % hkv != 0) {
    error = "num_heads and num_kv_heads must be > 0 with num_heads % num_kv_heads == 0 (found " +
            std::to_string(hq) + ", " + std::to_string(hkv) + ")";
  } else if (d <= 0) {
    error = "head_dim must be > 0";
  } else if (rot < 0 || rot > d || rot % 2 != 0) {
    error = "rotary_dim must be even and within [0, head_dim]";
  } else if (a.getInt(PA::kLayerIdx) < 0 || a.getInt(PA::kSlidingWindow) < 0) {
    error = "layer_idx and sliding_window must be >= 0";
  } else if (a.getInt(PA::kFusedQkv) != 0 && a.getInt(PA::kFusedQkv) != 1) {
    error = "fused_qkv must be 0 or 1";
  } else {
    return true;
  }
  return false;
}

int32_t PagedAttentionPlugin::getAliasedInput(int32_t outputIndex) noexcept {
  if (outputIndex != PA::kOutKvCacheOut) return -1;
  PagedAttentionInputs in;
  if (mNbInputs == 0 || !layout(mNbInputs, &in)) return PA::kInKvCache;
  return in[PA::kInKvCache];
}

int32_t PagedAttentionPlugin::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in,
                                              int32_t nbInputs,
                                              nvinfer1::DynamicPluginTensorDesc const* /*out*/,
                                              int32_t nbOutputs) noexcept {
  PagedAttentionInputs idx;
  if (nbOutputs != PA::kNbOutputs || !layout(nbInputs, &idx)) return fail("unexpected input count");
  mNbInputs = nbInputs;
  DataType const kv = in[idx[PA::kInKvCache]].desc.type;
  bool const quantizedPool = kv == DataType::kFP8 || kv == DataType::kINT8;
  if (quantizedPool && idx[PA::kInKvScales] < 0) return fail("an fp8/int8 pool needs kv_scales");
  return 0;
}

int32_t PagedAttentionPlugin::onShapeChange(nvinfer1::PluginTensorDesc const* /*in*/, int32_t nbInputs,
                                            nvinfer1::PluginTensorDesc const* /*out*/,
                                            int32_t /*nbOutputs*/) noexcept {
  PagedAttentionInputs in;
  if (!layout(nbInputs, &in)) return fail("unexpected input count");
  mNbInputs = nbInputs;  // a plugin made at deserialization learns its layout here
  return 0;
}

int32_t PagedAttentionPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs,
                                                 DataType const* inputTypes,
                                                 int32_t nbInputs) const noexcept {
  PagedAttentionInputs in;
  if (nbOutputs != PA::kNbOutputs || !layout(nbInputs, &in)) return -1;
  outputTypes[PA::kOutY] = inputTypes[in[PA::kInQ]];
  outputTypes[PA::kOutKvCacheOut] = inputTypes[in[PA::kInKvCache]];
  return 0;
}

int32_t PagedAttentionPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                                              nvinfer1::DimsExprs const* /*shapeInputs*/,
                                              int32_t /*nbShapeInputs*/,
                                              nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                                              nvinfer1::IExprBuilder& exprBuilder) noexcept {
  PagedAttentionInputs in;
  if (nbOutputs != PA::kNbOutputs || !layout(nbInputs, &in)) return -1;
  mNbInputs = nbInputs;
  nvinfer1::DimsExprs const& q = inputs[in[PA::kInQ]];
  if (q.nbDims < 1 || inputs[in[PA::kInKvCache]].nbDims != kKvRank) {
    return fail("q must be [.., T, H*D] and kv_cache [L, 2, N, b, Hkv, D]");
  }
  outputs[PA::kOutY] = q;  // [.., T, Hq*D]
  outputs[PA::kOutY].d[q.nbDims - 1] =
      exprBuilder.constant(int64_t{attrInt(PA::kNumHeads)} * attrInt(PA::kHeadDim));
  outputs[PA::kOutKvCacheOut] = inputs[in[PA::kInKvCache]];
  return 0;
}

bool PagedAttentionPlugin::supportsFormatCombination(int32_t pos,
                                                     nvinfer1::DynamicPluginTensorDesc const* inOut,
                                                     int32_t nbInputs, int32_t /*nbOutputs*/) noexcept {
  PagedAttentionInputs in;
  if (!layout(nbInputs, &in)) return false;
  nvinfer1::PluginTensorDesc const& d = inOut[pos].desc;
  if (d.format != nvinfer1::TensorFormat::kLINEAR) return false;
  DataType const qType = inOut[in[PA::kInQ]].desc.type;
  if (pos >= nbInputs) {  // outputs: y like q, kv_cache_out like kv_cache
    int32_t const src = pos - nbInputs == PA::kOutY ? in[PA::kInQ] : in[PA::kInKvCache];
    return d.type == inOut[src].desc.type;
  }
  int32_t logical = -1;
  for (int32_t i = 0; i < PA::kNbInputs; ++i) {
    if (in[i] == pos) logical = i;
  }
  switch (logical) {
    case PA::kInQ: return isActivationType(d.type);
    case PA::kInK:
    case PA::kInV: return d.type == qType;
    case PA::kInKvCache:
      return d.type == qType || d.type == DataType::kFP8 || d.type == DataType::kINT8;
    case PA::kInInvFreq: return d.type == DataType::kFLOAT;
    case PA::kInKvScales: {  // may be an empty slot of the positional layout
      DataType const kv = inOut[in[PA::kInKvCache]].desc.type;
      return d.type == DataType::kFLOAT || (kv != DataType::kFP8 && kv != DataType::kINT8);
    }
    case -1: return true;  // an empty optional input in the positional layout
    default: return d.type == DataType::kINT32;  // positions, qsl, seq_lens, tables, slots
  }
}

bool PagedAttentionPlugin::fillParams(Dims const* dims, DataType const* types,
                                      PagedAttentionInputs const& in,
                                      trtc_paged_attention_params* p, std::string& error) const {
  Dims const& q = dims[in[PA::kInQ]];
  Dims const& kv = dims[in[PA::kInKvCache]];
  Dims const& tables = dims[in[PA::kInBlockTables]];
  int32_t const hq = attrInt(PA::kNumHeads), hkv = attrInt(PA::kNumKvHeads);
  int32_t const d = attrInt(PA::kHeadDim);
  if (q.nbDims < 1 || kv.nbDims != kKvRank || tables.nbDims != 2) {
    error = "q must be [.., T, H*D], kv_cache [L, 2, N, b, Hkv, D], block_tables [S, max_blocks]";
    return false;
  }
  if (kv.d[0] <= attrInt(PA::kLayerIdx) || kv.d[1] != 2 || kv.d[4] != hkv || kv.d[5] != d) {
    error = "kv_cache shape does not match layer_idx/num_kv_heads/head_dim";
    return false;
  }
  int64_t const row = q.d[q.nbDims - 1];
  int64_t const expectRow = fusedQkv() ? int64_t{hq + 2 * hkv} * d : int64_t{hq} * d;
  if (row != expectRow) {
    error = "last dimension of q is " + std::to_string(row) + ", expected " + std::to_string(expectRow);
    return false;
  }
  if (!toTrtcDtype(types[in[PA::kInQ]], &p->dtype) ||
      !toTrtcDtype(types[in[PA::kInKvCache]], &p->kv_dtype)) {
    error = "unsupported q or kv_cache dtype";
    return false;
  }
  p->num_tokens = static_cast<int32_t>(volume(q, 0, q.nbDims - 1));
  p->num_seqs = static_cast<int32_t>(dims[in[PA::kInSeqLens]].d[0]);
  p->num_heads = hq;
  p->num_kv_heads = hkv;
  p->head_dim = d;
  p->block_size = static_cast<int32_t>(kv.d[3]);
  p->max_blocks_per_seq = static_cast<int32_t>(tables.d[1]);
  p->num_blocks = static_cast<int32_t>(kv.d[2]);
  p->q_stride = static_cast<int32_t>(row);
  p->k_stride = fusedQkv() ? p->q_stride : static_cast<int32_t>(dims[in[PA::kInK]].d[dims[in[PA::kInK]].nbDims - 1]);
  p->v_stride = fusedQkv() ? p->q_stride : static_cast<int32_t>(dims[in[PA::kInV]].d[dims[in[PA::kInV]].nbDims - 1]);
  p->rotary_dim = attrInt(PA::kRotaryDim);
  p->sliding_window = attrInt(PA::kSlidingWindow);
  p->scale = attrFloat(PA::kScale);
  p->rotary_scaling = attrFloat(PA::kRotaryScaling);
  return true;
}

size_t PagedAttentionPlugin::getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs,
                                              int32_t nbInputs,
                                              nvinfer1::DynamicPluginTensorDesc const* /*outputs*/,
                                              int32_t /*nbOutputs*/) const noexcept {
  PagedAttentionInputs in;
  if (!layout(nbInputs, &in)) return 0;
  std::array<Dims, PA::kNbInputs> dims{};
  std::array<DataType, PA::kNbInputs> types{};
  for (int32_t i = 0; i < nbInputs; ++i) {
    dims[i] = inputs[i].max;  // the largest shapes of the profile bound the scratch
    types[i] = inputs[i].desc.type;
  }
  trtc_paged_attention_params p{};
  std::string error;
  if (!fillParams(dims.data(), types.data(), in, &p, error)) return 0;
  return trtc_paged_attention_workspace_size(&p);
}

int32_t PagedAttentionPlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
                                      nvinfer1::PluginTensorDesc const* /*outputDesc*/,
                                      void const* const* inputs, void* const* outputs,
                                      void* workspace, cudaStream_t stream) noexcept {
  PagedAttentionInputs in;
  if (mNbInputs == 0 || !layout(mNbInputs, &in)) return fail("input layout unknown at enqueue");
  std::array<Dims, PA::kNbInputs> dims{};
  std::array<DataType, PA::kNbInputs> types{};
  for (int32_t i = 0; i < mNbInputs; ++i) {
    dims[i] = inputDesc[i].dims;
    types[i] = inputDesc[i].type;
  }
  trtc_paged_attention_params p{};
  std::string error;
  if (!fillParams(dims.data(), types.data(), in, &p, error)) return fail(error);
  if (p.num_tokens == 0) return 0;

  auto const* q = static_cast<char const*>(inputs[in[PA::kInQ]]);
  int64_t const esize = elementSize(inputDesc[in[PA::kInQ]].type);
  void const* k = fusedQkv() ? q + int64_t{p.num_heads} * p.head_dim * esize : inputs[in[PA::kInK]];
  void const* v = fusedQkv() ? q + int64_t{p.num_heads + p.num_kv_heads} * p.head_dim * esize
                             : inputs[in[PA::kInV]];
  // The pool is written through the aliased output: [L, 2, N, b, Hkv, D] -> this layer.
  int64_t const layerElems = int64_t{2} * p.num_blocks * p.block_size * p.num_kv_heads * p.head_dim;
  auto* pool = static_cast<char*>(outputs[PA::kOutKvCacheOut]) +
               attrInt(PA::kLayerIdx) * layerElems * elementSize(types[in[PA::kInKvCache]]);
  auto const* invFreq = in[PA::kInInvFreq] >= 0 ? static_cast<float const*>(inputs[in[PA::kInInvFreq]])
                                               : nullptr;
  bool const quantizedPool = p.kv_dtype == TRTC_FP8_E4M3 || p.kv_dtype == TRTC_INT8;
  auto const* scales = quantizedPool && in[PA::kInKvScales] >= 0
                           ? static_cast<float const*>(inputs[in[PA::kInKvScales]]) + 2 * attrInt(PA::kLayerIdx)
                           : nullptr;
  auto i32 = [&](int32_t logical) { return static_cast<int32_t const*>(inputs[in[logical]]); };
  int const rc = trtc_paged_attention(
      &p, q, k, v, i32(PA::kInPositions), i32(PA::kInQueryStartLoc), i32(PA::kInSeqLens),
      i32(PA::kInBlockTables), i32(PA::kInSlotMapping), pool, invFreq, scales,
      outputs[PA::kOutY], workspace, trtc_paged_attention_workspace_size(&p), stream);
  return rc == 0 ? 0 : fail("trtc_paged_attention failed with CUDA error " + std::to_string(rc));
}

}  // namespace plugin
}  // namespace trtc
