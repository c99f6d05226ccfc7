"""The grouped decode kernel (backends/grouped_attention.py) must give the logits transformers'
own attention gives, on left-padded batches with a KV cache, and the CPU backend must use it."""
from __future__ import annotations

import torch
from transformers import DynamicCache, Qwen2Config, Qwen2ForCausalLM
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from tests.tiny_models import chatml_tokenizer, small_config
from tts_viz.backends.grouped_attention import NAME, grouped_decode_attention, use_grouped_decode
from tts_viz.backends.transformers_backend import TransformersBackend


def tiny_policy():
    tok = chatml_tokenizer()
    return Qwen2ForCausalLM(small_config(Qwen2Config, len(tok))).eval(), tok


def decode_logits(model, impl: str, steps: int = 4) -> torch.Tensor:
    """A left-padded batch of 3 prompts of different lengths, prefilled, then `steps` greedy tokens
    decoded one at a time from the cache: the logits of every decode step, [steps, 3, vocab]."""
    model.set_attn_implementation(impl)
    torch.manual_seed(1)
    lengths = [9, 5, 1]
    ids = torch.randint(10, model.config.vocab_size, (3, max(lengths)))
    mask = torch.zeros_like(ids)
    for r, n in enumerate(lengths):
        mask[r, -n:] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    out = []
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache).logits[:, -1]
        for _ in range(steps):
            token = logits.argmax(-1, keepdim=True)
            pos = mask.sum(-1, keepdim=True)
            mask = torch.cat([mask, mask.new_ones((3, 1))], dim=1)
            logits = model(input_ids=token, attention_mask=mask, position_ids=pos, past_key_values=cache).logits[:, -1]
            out.append(logits)
    return torch.stack(out)


def test_grouped_decode_gives_the_logits_of_eager_and_sdpa_attention(monkeypatch):
    model, _ = tiny_policy()
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # the case the kernel is for
    eager = decode_logits(model, "eager")
    sdpa = decode_logits(model, "sdpa")
    assert use_grouped_decode(model) and model.config._attn_implementation == NAME
    queries = []  # the new-token count of every call the kernel got

    def spy(module, query, *a, **kw):
        queries.append(query.shape[2])
        return grouped_decode_attention(module, query, *a, **kw)

    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS._global_mapping, NAME, spy)
    grouped = decode_logits(model, NAME)
    assert queries.count(1) == 4 * model.config.num_hidden_layers  # every decode step went through it
    assert torch.allclose(grouped, eager, atol=1e-5), (grouped - eager).abs().max()
    assert torch.allclose(grouped, sdpa, atol=1e-5)


def test_cpu_backend_switches_to_grouped_decode_unless_told_not_to(monkeypatch):
    model, tok = tiny_policy()
    TransformersBackend(model, tok, name="tiny")
    assert model.config._attn_implementation == NAME
    model, tok = tiny_policy()
    monkeypatch.setenv("TTS_VIZ_ATTENTION", "sdpa")
    TransformersBackend(model, tok, name="tiny")
    assert model.config._attn_implementation == "sdpa"


def test_a_model_without_grouped_kv_heads_is_left_alone():
    tok = chatml_tokenizer()
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                                         num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4))
    assert not use_grouped_decode(model)
    assert model.config._attn_implementation == "sdpa"
    windowed = Qwen2ForCausalLM(small_config(Qwen2Config, len(tok), use_sliding_window=True, sliding_window=4,
                                             max_window_layers=0))
    assert "sliding_attention" in windowed.config.layer_types
    assert not use_grouped_decode(windowed)  # the kernel does not mask a window
