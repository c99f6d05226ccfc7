"""Grouped-query attention for decoding on a CPU, without copying the KV cache.

Qwen2.5 has 14 query heads and 2 KV heads. For one new token a row, transformers' sdpa path on a CPU
is slow, and its eager path repeats every cached key and value 7 times before the matmul
(repeat_kv): at 16 rows x 600 cached tokens that copy moves about as many bytes as the weights, and
decoding is bound by memory traffic. Here the 7 query heads of a group share one matmul against
their KV head, so nothing is copied (the arithmetic of eager: scores in the model's dtype, softmax in
float32). A pass over several new tokens (a prompt, a step the PRM reads) goes to sdpa, which is
faster there. Registered as attn_implementation "grouped_decode", with sdpa's masks.
"""
from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

NAME = "grouped_decode"


def grouped_decode_attention(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                             attention_mask: torch.Tensor | None, scaling: float, dropout: float = 0.0,
                             **kwargs):
    """query [B, H, Q, D], key/value [B, KV, L, D] -> ([B, Q, H, D], None). attention_mask is sdpa's:
    boolean [B, 1, Q, L] (True = may attend) or None (nothing masked: one query sees every key)."""
    b, heads, q_len, dim = query.shape
    if q_len > 1 or dropout:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    kv_heads, kv_len = key.shape[1], key.shape[2]
    groups = heads // kv_heads
    # head h reads KV head h // groups (repeat_kv's order): [B, KV, groups, D] keeps each group together
    q = query.reshape(b, kv_heads, groups, dim)
    scores = torch.matmul(q, key.transpose(2, 3)) * scaling  # [B, KV, groups, L]
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask[:, :, 0, -kv_len:][:, :, None, :], float("-inf"))
        else:  # an additive float mask
            scores = scores + attention_mask[:, :, 0, -kv_len:][:, :, None, :]
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(weights, value)  # [B, KV, groups, D]
    return out.reshape(b, heads, 1, dim).transpose(1, 2).contiguous(), None


def use_grouped_decode(model) -> bool:
    """Switch a loaded model to the grouped decode kernel when it has grouped KV heads, full attention
    in every layer and runs on sdpa; True if switched. Other models are left alone (and GPUs: the
    backend calls this on a CPU only, sdpa's kernels are fast there)."""
    cfg = model.config
    heads = getattr(cfg, "num_attention_heads", None)
    kv = getattr(cfg, "num_key_value_heads", None) or heads
    if not heads or not kv or kv == heads or heads % kv or cfg._attn_implementation != "sdpa":
        return False
    if any(t != "full_attention" for t in (getattr(cfg, "layer_types", None) or ["full_attention"])):
        return False  # a sliding window needs masking this kernel does not do
    if NAME not in ALL_MASK_ATTENTION_FUNCTIONS:
        AttentionInterface.register(NAME, grouped_decode_attention)
        ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
    model.set_attn_implementation(NAME)
    return model.config._attn_implementation == NAME
