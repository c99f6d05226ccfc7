"""Tiny randomly initialised models and tokenizers of every architecture the project loads: the
policy (Qwen2 causal LM) and each hub PRM family. Used by the NF4 tests and by
scripts/gpu-check.sh, which runs where there is no network and no room for real weights (so no
pytest here). Each `save_*` writes a folder that loads like a hub id (from_pretrained on a path).
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, PreTrainedTokenizerFast,
                          Qwen2Config, Qwen2ForCausalLM, Qwen2ForTokenClassification, Qwen2Model)

QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"
SOLUTIONS = [
    ["Tom starts with 3 apples.", "He buys 4 more, so 3 + 4 = 7.", "The answer is \\boxed{7}."],
    ["3 + 4 = 7, so \\boxed{7}."],
    ["Start: 3 apples.\nThen add 4 - 0 = 4.", "Total is \\boxed{7}."],
]
CORPUS = [QUESTION] + [s for sol in SOLUTIONS for s in sol] + [
    "user assistant system Please reason step by step, and put your final answer within \\boxed{}.",
    "Step 1: add 3 and 4 to get 7. ки\nStep 2: so the answer is 7. ки",
    "+ - + - 3 + 4 = 7 ки ки",
    "Yes No Yes No yes no Is the last step correct? Answer Yes or No. Problem: Solution so far:",
    "You are a careful math teacher who checks students' work. Think step by step. Therefore, the final answer is:",
]
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
LLAMA_SPECIALS = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
LLAMA3 = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
          "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
          "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")


def bytelevel_tokenizer(specials: list[str], **kw) -> PreTrainedTokenizerFast:
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(CORPUS * 3, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tk, **kw)


def metaspace_tokenizer() -> PreTrainedTokenizerFast:
    """Mistral-like: "ки" and " ки" both "▁ки", "+ -" -> [<s>, "▁+", "▁-"], a BOS post-processor."""
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split("\n", behavior="isolated"), pre_tokenizers.Metaspace(prepend_scheme="first")])
    tk.decoder = decoders.Metaspace(prepend_scheme="first")
    tk.train_from_iterator(CORPUS * 3, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                                                           show_progress=False))
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tk.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def small_config(cfg_cls, vocab: int, init: float = 0.3, **kw):
    """Two layers, width 64: bitsandbytes' CPU kernel packs 4-bit weights in blocks of 64 inputs
    and 32 outputs. A wide init so that neighbouring positions give clearly different scores."""
    torch.manual_seed(0)
    return cfg_cls(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=16, max_position_embeddings=512, initializer_range=init, **kw)


def chatml_tokenizer(extra: list[str] = ()) -> PreTrainedTokenizerFast:
    tok = bytelevel_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", *extra], eos_token="<|im_end|>",
                              pad_token="<|endoftext|>", additional_special_tokens=["<|im_start|>", *extra])
    tok.chat_template = CHATML
    return tok


def _save(model, tok, folder) -> str:
    Path(folder).mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def save_policy(folder) -> str:
    tok = chatml_tokenizer()
    return _save(Qwen2ForCausalLM(small_config(Qwen2Config, len(tok))), tok, folder)


def save_qwen_prm(folder) -> str:
    tok = chatml_tokenizer(["<extra_0>"])
    return _save(Qwen2ForTokenClassification(small_config(Qwen2Config, len(tok), num_labels=2)), tok, folder)


def save_rlhflow(folder) -> str:
    tok = bytelevel_tokenizer(LLAMA_SPECIALS, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                              additional_special_tokens=LLAMA_SPECIALS[1:3])
    tok.chat_template = LLAMA3
    return _save(LlamaForCausalLM(small_config(LlamaConfig, len(tok))), tok, folder)


def save_math_shepherd(folder) -> str:
    tok = metaspace_tokenizer()
    return _save(MistralForCausalLM(small_config(MistralConfig, len(tok), sliding_window=None)), tok, folder)


def save_skywork(folder) -> str:
    """A Qwen2 backbone with the value head's tensors beside it in one file, as the checkpoint has them."""
    from safetensors.torch import load_file, save_file

    from tts_viz.verifiers.skywork import SkyworkValueHeadModel

    tok = bytelevel_tokenizer(["<|endoftext|>"], bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                              pad_token="<|endoftext|>")
    backbone = Qwen2Model(small_config(Qwen2Config, len(tok)))
    head = SkyworkValueHeadModel(backbone).v_head
    folder = _save(backbone, tok, folder)
    weights = load_file(f"{folder}/model.safetensors")
    weights.update({f"v_head.{k}": v.contiguous() for k, v in head.state_dict().items()})
    save_file(weights, f"{folder}/model.safetensors", metadata={"format": "pt"})
    return folder


PRM_BUILDERS = {"qwen2.5-math-prm": save_qwen_prm, "rlhflow": save_rlhflow, "math-shepherd": save_math_shepherd,
                "skywork": save_skywork}
