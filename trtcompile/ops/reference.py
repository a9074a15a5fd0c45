"""Plain-torch reference implementations of the trtcompile ops (the CPU path and the oracle
the CUDA kernels are tested against)."""

from __future__ import annotations

import torch


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
              sliding_window: int = 0) -> torch.Tensor:
    """Export boundary op: q [B, Hq, T, D], k/v [B, Hkv, T, D] -> [B, T, Hq, D]."""
    group = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    t = q.shape[2]
    i = torch.arange(t, device=q.device)
    mask = i[None, :] <= i[:, None]
    if sliding_window > 0:
        mask &= i[None, :] > i[:, None] - sliding_window
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return out.transpose(1, 2).contiguous()


def rotate_half(x: torch.Tensor, positions: torch.Tensor, inv_freq: torch.Tensor,
                scaling: float) -> torch.Tensor:
    """Rotary embedding, rotate-half layout, on the first 2*len(inv_freq) dims. x [T, H, D]."""
    rot = 2 * inv_freq.shape[0]
    freqs = positions.float()[:, None] * inv_freq.float()[None, :]           # [T, rot/2]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = (emb.cos() * scaling)[:, None, :]
    sin = (emb.sin() * scaling)[:, None, :]
    xr = x[..., :rot].float()
    x1, x2 = xr[..., : rot // 2], xr[..., rot // 2:]
    rotated = torch.cat((-x2, x1), dim=-1)
    out = (xr * cos + rotated * sin).to(x.dtype)
    return torch.cat((out, x[..., rot:]), dim=-1) if rot < x.shape[-1] else out


def paged_attention(q, k, v, positions, query_start_loc, seq_lens, block_tables, slot_mapping,
                    kv_cache, inv_freq, kv_scales, *, layer_idx: int, num_heads: int,
                    num_kv_heads: int, head_dim: int, scale: float, sliding_window: int = 0,
                    rotary_dim: int = 0, rotary_scaling: float = 1.0,
                    fused_qkv: int = 0) -> torch.Tensor:
    """Reference PagedAttention. Writes this step's K/V into kv_cache[layer_idx] in place and
    returns y with q's leading shape and Hq*D columns."""
    lead = q.shape[:-1]
    t = q.shape[-2]
    hq, hkv, d = num_heads, num_kv_heads, head_dim
    flat = q.reshape(t, -1)
    if fused_qkv:
        qh = flat[:, : hq * d]
        kh = flat[:, hq * d:(hq + hkv) * d]
        vh = flat[:, (hq + hkv) * d:]
    else:
        qh, kh, vh = flat, k.reshape(t, -1), v.reshape(t, -1)
    qh = qh.reshape(t, hq, d)
    kh = kh.reshape(t, hkv, d)
    vh = vh.reshape(t, hkv, d)
    pos = positions.long()
    if rotary_dim > 0:
        qh = rotate_half(qh, pos, inv_freq, rotary_scaling)
        kh = rotate_half(kh, pos, inv_freq, rotary_scaling)

    layer = kv_cache[layer_idx]                                  # [2, N, b, Hkv, D]
    block_size = layer.shape[2]
    k_pool = layer[0].view(-1, hkv, d)                           # [N*b, Hkv, D]
    v_pool = layer[1].view(-1, hkv, d)
    slots = slot_mapping.long()
    if kv_scales is not None:
        ks, vs = kv_scales[layer_idx, 0], kv_scales[layer_idx, 1]
        k_pool[slots] = quantize_pool(kh.float() / ks, k_pool.dtype)
        v_pool[slots] = quantize_pool(vh.float() / vs, v_pool.dtype)
    else:
        k_pool[slots] = kh.to(k_pool.dtype)
        v_pool[slots] = vh.to(v_pool.dtype)

    out = torch.empty(t, hq, d, dtype=q.dtype, device=q.device)
    group = hq // hkv
    qsl = query_start_loc.tolist()
    lens = seq_lens.tolist()
    for s in range(len(lens)):
        a, b, n = qsl[s], qsl[s + 1], lens[s]
        if b == a:
            continue
        nblocks = (n + block_size - 1) // block_size
        blocks = block_tables[s, :nblocks].long()
        key_slots = (blocks[:, None] * block_size + torch.arange(block_size, device=q.device)).reshape(-1)[:n]
        keys = k_pool[key_slots].float()                          # [n, Hkv, D]
        vals = v_pool[key_slots].float()
        if kv_scales is not None:
            keys, vals = keys * ks, vals * vs
        keys = keys.repeat_interleave(group, dim=1)
        vals = vals.repeat_interleave(group, dim=1)
        qs = qh[a:b].float()                                      # [m, Hq, D]
        scores = torch.einsum("mhd,nhd->hmn", qs, keys) * scale
        qpos = pos[a:b][:, None]
        kpos = torch.arange(n, device=q.device)[None, :]
        mask = kpos <= qpos
        if sliding_window > 0:
            mask &= kpos > qpos - sliding_window
        scores = scores.masked_fill(~mask[None], float("-inf"))
        probs = scores.softmax(dim=-1)
        out[a:b] = torch.einsum("hmn,nhd->mhd", probs, vals).to(q.dtype)
    return out.reshape(*lead, hq * d)


def quantize_pool(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Round to nearest and saturate (int8 to +-127, fp8 E4M3 to +-448: torch's own fp8 cast
    is not specified to saturate)."""
    if dtype == torch.int8:
        return x.round().clamp(-127, 127).to(torch.int8)
    if dtype == torch.float8_e4m3fn:
        top = torch.finfo(dtype).max
        return x.clamp(-top, top).to(dtype)
    return x.to(dtype)


def rms_norm(x, weight, residual=None, *, epsilon: float):
    """Returns (y, residual_out); residual_out is None without residual."""
    h = x.float() if residual is None else x.float() + residual.float()
    y = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + epsilon) * weight.float()
    res_out = None if residual is None else h.to(x.dtype)
    return y.to(x.dtype), res_out


def silu_mul(x: torch.Tensor) -> torch.Tensor:
    inter = x.shape[-1] // 2
    return (torch.nn.functional.silu(x[..., :inter].float()) * x[..., inter:].float()).to(x.dtype)
