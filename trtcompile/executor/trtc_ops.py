"""trtcompile-domain ONNX nodes mapped to the torch.library ops (CPU reference or CUDA)."""

from __future__ import annotations

import torch

import trtcompile.ops.torch_ops  # noqa: F401  (registers torch.ops.trtcompile.*)


def causal_attention(q, k, v, scale=1.0, sliding_window=0, layer_idx=0):
    return torch.ops.trtcompile.attention(q, k, v, float(scale), int(sliding_window), int(layer_idx))


def paged_attention(q, k, v, positions, query_start_loc, seq_lens, block_tables, slot_mapping,
                    kv_cache, inv_freq=None, kv_scales=None, *, layer_idx, num_heads,
                    num_kv_heads, head_dim, scale, sliding_window=0, rotary_dim=0,
                    rotary_scaling=1.0, fused_qkv=0, plugin_version=None, plugin_namespace=None):
    y = torch.ops.trtcompile.paged_attention(
        q, k, v, positions, query_start_loc, seq_lens, block_tables, slot_mapping, kv_cache,
        inv_freq, kv_scales, layer_idx, num_heads, num_kv_heads, head_dim, float(scale),
        sliding_window, rotary_dim, float(rotary_scaling), fused_qkv)
    return y, kv_cache      # output 1 aliases the pool


def rms_norm(x, weight, residual=None, *, epsilon=1e-6, plugin_version=None,
             plugin_namespace=None):
    y, res = torch.ops.trtcompile.rms_norm(x, weight, residual, float(epsilon))
    return (y, res) if residual is not None else y


def silu_mul(x, plugin_version=None, plugin_namespace=None):
    return torch.ops.trtcompile.silu_mul(x)


def weight_only_gemm(x, qweight, scales, zeros=None, *, bits=8, group_size=0,
                     plugin_version=None, plugin_namespace=None):
    return torch.ops.trtcompile.weight_only_gemm(x, qweight, scales, zeros, int(bits),
                                                 int(group_size))


def quantize_int8(x):
    return torch.ops.trtcompile.quantize_per_token(x, "int8")


def quantize_fp8(x):
    return torch.ops.trtcompile.quantize_per_token(x, "fp8")


HANDLERS = {
    "CausalAttention": causal_attention,
    "PagedAttention": paged_attention,
    "RMSNorm": rms_norm,
    "SiluMul": silu_mul,
    "WeightOnlyGemm": weight_only_gemm,
    "QuantizeInt8": quantize_int8,
    "QuantizeFp8": quantize_fp8,
}
