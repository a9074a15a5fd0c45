"""torch.library registration of the trtcompile ops: CPU = the plain-torch reference,
CUDA = the plugin kernels (registered by trtcompile.ops.cuda_kernels when the library loads)."""

from __future__ import annotations

import torch

from trtcompile.ops import quant_reference, reference

NAMESPACE = "trtcompile"

_SCHEMAS = {
    "paged_attention": (
        "paged_attention(Tensor q, Tensor? k, Tensor? v, Tensor positions, Tensor query_start_loc, "
        "Tensor seq_lens, Tensor block_tables, Tensor slot_mapping, Tensor(a!) kv_cache, "
        "Tensor? inv_freq, Tensor? kv_scales, int layer_idx, int num_heads, int num_kv_heads, "
        "int head_dim, float scale, int sliding_window, int rotary_dim, float rotary_scaling, "
        "int fused_qkv) -> Tensor"),
    "rms_norm": "rms_norm(Tensor x, Tensor weight, Tensor? residual, float epsilon) -> (Tensor, Tensor?)",
    "silu_mul": "silu_mul(Tensor x) -> Tensor",
    "attention": "attention(Tensor q, Tensor k, Tensor v, float scale, int sliding_window, "
                 "int layer_idx) -> Tensor",
    "weight_only_gemm": "weight_only_gemm(Tensor x, Tensor qweight, Tensor scales, Tensor? zeros, "
                        "int bits, int group_size) -> Tensor",
    "quantize_per_token": "quantize_per_token(Tensor x, str target, bool float_scale=False) "
                          "-> (Tensor, Tensor)",
    "rms_norm_quantize": "rms_norm_quantize(Tensor x, Tensor weight, Tensor? residual, "
                         "float epsilon, str target) -> (Tensor, Tensor, Tensor?)",
    "silu_mul_quantize": "silu_mul_quantize(Tensor x, str target) -> (Tensor, Tensor)",
}


def _paged_attention_cpu(q, k, v, positions, query_start_loc, seq_lens, block_tables,
                         slot_mapping, kv_cache, inv_freq, kv_scales, layer_idx, num_heads,
                         num_kv_heads, head_dim, scale, sliding_window, rotary_dim,
                         rotary_scaling, fused_qkv):
    return reference.paged_attention(
        q, k, v, positions, query_start_loc, seq_lens, block_tables, slot_mapping, kv_cache,
        inv_freq, kv_scales, layer_idx=layer_idx, num_heads=num_heads,
        num_kv_heads=num_kv_heads, head_dim=head_dim, scale=scale,
        sliding_window=sliding_window, rotary_dim=rotary_dim, rotary_scaling=rotary_scaling,
        fused_qkv=fused_qkv)


def _rms_norm_cpu(x, weight, residual, epsilon):
    return reference.rms_norm(x, weight, residual, epsilon=epsilon)


def _attention_any(q, k, v, scale, sliding_window, layer_idx):
    return reference.attention(q, k, v, scale, sliding_window)


def _attention_fake(q, k, v, scale, sliding_window, layer_idx):
    return q.new_empty(q.shape[0], q.shape[2], q.shape[1], q.shape[3])


def _register() -> torch.library.Library:
    lib = torch.library.Library(NAMESPACE, "DEF")
    for schema in _SCHEMAS.values():
        lib.define(schema)
    lib.impl("paged_attention", _paged_attention_cpu, "CPU")
    lib.impl("rms_norm", _rms_norm_cpu, "CPU")
    lib.impl("silu_mul", reference.silu_mul, "CPU")
    lib.impl("weight_only_gemm", quant_reference.weight_only_gemm, "CPU")
    lib.impl("quantize_per_token", quant_reference.quantize_per_token, "CPU")
    lib.impl("rms_norm_quantize", quant_reference.rms_norm_quantize, "CPU")
    lib.impl("silu_mul_quantize", quant_reference.silu_mul_quantize, "CPU")
    # The export boundary runs anywhere (CPU and CUDA) through the reference; its fake
    # (meta) kernel lets torch.export trace it.
    lib.impl("attention", _attention_any, "CompositeExplicitAutograd")
    torch.library.register_fake(f"{NAMESPACE}::attention", _attention_fake, lib=lib)
    return lib


LIBRARY = _register()   # kept alive: dropping the Library object unregisters the ops
