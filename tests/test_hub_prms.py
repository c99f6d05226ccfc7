"""Hub PRM adapters with tiny randomly initialised models (no downloads).

What can break without the real weights is the input layout, the token positions where scores are
read and the reading itself. Every adapter is compared against an independent re-implementation
of its reference procedure (model card / upstream inference code), run on ONE unpadded solution,
with the reference's own way of locating positions; batches mix solutions of different step
counts so padding is exercised. Each test also checks that reading one token off would give a
visibly different number, so the comparison really pins the position.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForTokenClassification,
    Qwen2Model,
)

from tts_viz.models import ModelNotAvailable
from tts_viz.verifiers.math_shepherd import MATH_SHEPHERD_ID, MathShepherdPRM
from tts_viz.verifiers.qwen_prm import QWEN_PRM_ID, QWEN_SYSTEM, QwenMathPRM
from tts_viz.verifiers.rlhflow import RLHFLOW_PRM_ID, RLHFlowPRM
from tts_viz.verifiers.skywork import SKYWORK_PRM_ID, SkyworkPRM, SkyworkValueHeadModel

from tests.tiny_models import CORPUS, QUESTION, SOLUTIONS  # noqa: E402  (shared with the NF4 tests)
from tests.tiny_models import bytelevel_tokenizer as _bytelevel  # noqa: E402

TOL = 1e-4


def _small(cfg_cls, vocab: int, **kw):
    torch.manual_seed(0)
    # A wide init so that neighbouring positions give clearly different scores (see _shifted).
    return cfg_cls(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=0.3,
        **kw,
    )


def _close(a: list[float], b: list[float], tol: float = TOL) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


def _check_common(prm, ref_fn, shifted_fn, solutions=SOLUTIONS) -> list[list[float]]:
    """One score per step in order; in [0, 1]; equal to the unbatched reference; batched == one at a
    time; and the reference read one token off differs (so the check can see an off-by-one)."""
    scores = prm.score(QUESTION, solutions)
    assert [len(s) for s in scores] == [len(s) for s in solutions]
    assert all(isinstance(x, float) and 0.0 <= x <= 1.0 for s in scores for x in s)
    for sol, got in zip(solutions, scores):
        ref = ref_fn(sol)
        assert _close(got, ref), (got, ref)
        assert not _close(got, shifted_fn(sol), tol=1e-3), "scores do not depend on the position"
        assert _close(prm.score(QUESTION, [sol])[0], got)
    assert _close(prm.score_last(QUESTION, solutions), [s[-1] for s in scores])
    return scores


# ------------------------------------------------------------------------------------------------
# Qwen2.5-Math-PRM


@pytest.fixture(scope="module")
def qwen():
    tok = _bytelevel(
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<extra_0>"],
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<extra_0>"],
    )
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    model = Qwen2ForTokenClassification(_small(Qwen2Config, len(tok), num_labels=2)).eval()
    return model, tok


def _qwen_card(model, tok, steps, shift=0):
    # Model card of Qwen/Qwen2.5-Math-PRM-7B, one conversation, no padding.
    messages = [
        {"role": "system", "content": QWEN_SYSTEM},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "<extra_0>".join(steps) + "<extra_0>"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    input_ids = torch.tensor([tok.encode(text)])
    with torch.no_grad():
        logits = model(input_ids=input_ids)[0]
    step_sep_id = tok.encode("<extra_0>")[0]
    token_masks = (input_ids == step_sep_id)[0].nonzero().view(-1) + shift
    return torch.softmax(logits[0, token_masks].float(), dim=-1)[:, 1].tolist()


def test_qwen_prm_matches_model_card(qwen):
    model, tok = qwen
    prm = QwenMathPRM(model, tok)
    assert prm.name == "qwen2.5-math-prm"
    _check_common(prm, lambda s: _qwen_card(model, tok, s), lambda s: _qwen_card(model, tok, s, shift=-1))
    assert prm.compute.params == sum(p.numel() for p in model.parameters())
    assert prm.compute.prompt_tokens > 0 and prm.compute.flops > 0


def test_qwen_prm_rejects_tag_in_text(qwen):
    prm = QwenMathPRM(*qwen)
    with pytest.raises(ValueError, match="step 2 of solution 1.*<extra_0>"):
        prm.score(QUESTION, [["ok", "bad <extra_0> step"]])
    with pytest.raises(ValueError, match="question"):
        prm.score("what <|im_end|> is this", [["a"]])


# ------------------------------------------------------------------------------------------------
# RLHFlow (Llama-3.1 chat)

LLAMA_SPECIALS = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


@pytest.fixture(scope="module")
def rlhflow():
    tok = _bytelevel(
        LLAMA_SPECIALS,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        additional_special_tokens=LLAMA_SPECIALS[1:3],
    )
    tok.chat_template = (
        "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
        "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
    )
    model = LlamaForCausalLM(_small(LlamaConfig, len(tok))).eval()
    return model, tok


def _rlhflow_reference(model, tok, steps, at=-3):
    # RLHFlow math-rm/prm_evaluate.py: grow the conversation one step at a time and read the
    # logits at index -3 (the token before the final "+") over the candidate tokens.
    candidate_tokens = [tok.encode("+")[-1], tok.encode("-")[-1]]
    conversation, out = [], []
    for k, step in enumerate(steps):
        text = QUESTION + " " + step.strip() if k == 0 else step.strip()
        conversation.append({"content": text, "role": "user"})
        conversation.append({"content": "+", "role": "assistant"})
        input_ids = torch.tensor([tok.apply_chat_template(conversation, return_dict=False)])
        with torch.no_grad():
            logits = model(input_ids).logits[:, at, candidate_tokens]
        out.append(logits.softmax(dim=-1)[0, 0].item())
    return out


def test_rlhflow_matches_reference(rlhflow):
    model, tok = rlhflow
    prm = RLHFlowPRM(model, tok)
    assert prm.name == "rlhflow"
    # Steps contain "+", "-" and newlines: positions come from the template, not from searching ids.
    _check_common(prm, lambda s: _rlhflow_reference(model, tok, s), lambda s: _rlhflow_reference(model, tok, s, at=-4))


def test_rlhflow_chunks_batches_and_counts_tokens(rlhflow):
    model, tok = rlhflow
    prm = RLHFlowPRM(model, tok, batch_size=2)
    sols = SOLUTIONS + [[]] + SOLUTIONS[:2]
    scores = prm.score(QUESTION, sols)
    assert scores[3] == []
    whole = RLHFlowPRM(model, tok).score(QUESTION, sols)
    assert all(_close(a, b) for a, b in zip(scores, whole))
    expected = sum(len(prm.encode(QUESTION, s).ids) for s in sols if s)
    assert prm.compute.prompt_tokens == expected  # real tokens only, not padding


def test_rlhflow_model_without_logits_to_keep(rlhflow):
    # A model whose forward has no `logits_to_keep` (older or remote code) gets full logits gathered.
    model, tok = rlhflow

    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.config = model, model.config

        def forward(self, input_ids, attention_mask=None, use_cache=None):
            return model(input_ids=input_ids, attention_mask=attention_mask)

    a = RLHFlowPRM(Plain(), tok).score(QUESTION, SOLUTIONS)
    b = RLHFlowPRM(model, tok).score(QUESTION, SOLUTIONS)
    assert all(_close(x, y) for x, y in zip(a, b))


def test_rlhflow_rejects_control_tokens_and_overlong(rlhflow):
    model, tok = rlhflow
    with pytest.raises(ValueError, match="<\\|eot_id\\|>"):
        RLHFlowPRM(model, tok).score(QUESTION, [["a step<|eot_id|>", "b"]])
    with pytest.raises(ValueError, match="tokens long"):
        RLHFlowPRM(model, tok, max_length=20).score(QUESTION, SOLUTIONS[:1])


# ------------------------------------------------------------------------------------------------
# Math-Shepherd (Mistral, SentencePiece-like tokenizer)


@pytest.fixture(scope="module")
def shepherd():
    # Metaspace BPE with a BOS post-processor, like Mistral's: "ки" and " ки" both become "▁ки",
    # "+ -" becomes [<s>, "▁+", "▁-"]; newlines are separate tokens (byte fallback in the real one).
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split("\n", behavior="isolated"), pre_tokenizers.Metaspace(prepend_scheme="first")]
    )
    tk.decoder = decoders.Metaspace(prepend_scheme="first")
    tk.train_from_iterator(
        CORPUS * 3, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    )
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tk.token_to_id("<s>"))])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    assert tok.convert_ids_to_tokens(tok.encode("+ -")) == ["<s>", "▁+", "▁-"]
    assert tok.convert_ids_to_tokens(tok.encode("ки")) == ["<s>", "▁ки"]
    model = MistralForCausalLM(_small(MistralConfig, len(tok), sliding_window=None)).eval()
    return model, tok


def _shepherd_card(model, tok, steps, shift=0):
    # Model card of peiyi9979/math-shepherd-mistral-7b-prm.
    candidate_tokens = tok.encode("+ -")[1:]
    step_tag_id = tok.encode("ки")[-1]
    output = "\n".join(f"{s} ки" for s in steps)
    input_id = torch.tensor([tok.encode(f"{QUESTION} {output}")])
    with torch.no_grad():
        logits = model(input_id).logits[:, :, candidate_tokens]
    scores = logits.softmax(dim=-1)[0, :, 0]
    idx = (input_id[0] == step_tag_id).nonzero().view(-1) + shift
    return scores[idx].tolist()


def test_math_shepherd_matches_model_card(shepherd):
    model, tok = shepherd
    prm = MathShepherdPRM(model, tok)
    assert prm.name == "math-shepherd"
    _check_common(prm, lambda s: _shepherd_card(model, tok, s), lambda s: _shepherd_card(model, tok, s, shift=-1))


def test_math_shepherd_rejects_tag_in_step(shepherd):
    with pytest.raises(ValueError, match="step 1 of solution 2.*ки"):
        MathShepherdPRM(*shepherd).score(QUESTION, [["fine"], ["3 ки 4"]])


def test_math_shepherd_tag_with_bytelevel_tokenizer():
    # Byte-level BPE: encode("ки")[-1] (no space) differs from the " ки" token in the text, where the
    # card's `input_ids == step_tag_id` would find nothing; the adapter accepts either id.
    tok = _bytelevel(["<s>", "</s>"], bos_token="<s>", eos_token="</s>")
    assert tok.encode("ки")[-1] != tok.encode(" ки")[-1]
    model = LlamaForCausalLM(_small(LlamaConfig, len(tok))).eval()
    prm = MathShepherdPRM(model, tok)
    cand = tok.encode("+ -")
    tag = tok.encode(" ки")[-1]

    def by_hand(steps, shift=0):
        ids = torch.tensor([tok.encode(QUESTION + " " + "\n".join(f"{s} ки" for s in steps))])
        with torch.no_grad():
            probs = model(ids).logits[0][:, cand].softmax(-1)[:, 0]
        return probs[(ids[0] == tag).nonzero().view(-1) + shift].tolist()

    _check_common(prm, by_hand, lambda s: by_hand(s, shift=-1))


# ------------------------------------------------------------------------------------------------
# Skywork-o1-Open-PRM (Qwen2 backbone + value head)


@pytest.fixture(scope="module")
def skywork():
    tok = _bytelevel(["<|endoftext|>"], bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    model = SkyworkValueHeadModel(Qwen2Model(_small(Qwen2Config, len(tok)))).eval()
    return model, tok


def _skywork_reference(model, tok, response: str):
    # SkyworkAI/skywork-o1-prm-inference io_utils.prepare_input with step_token="\n", one sequence,
    # then sigmoid(value) at the reward flags. Returns one reward per "\n"-separated line.
    prompt_ids = tok.encode(tok.bos_token + QUESTION + "\n")
    response_ids, reward_flags = [], [0] * len(prompt_ids)
    step_token_id = tok.encode("\n")[-1]
    for step in response.split("\n"):
        step_ids = tok.encode(step) if step != "" else []
        step_ids += [step_token_id]
        flag = [0] * len(step_ids)
        flag[-1] = 1
        response_ids.extend(step_ids)
        reward_flags.extend(flag)
    input_ids = torch.tensor([prompt_ids + response_ids])
    with torch.no_grad():
        hidden = model.backbone(input_ids=input_ids).last_hidden_state
        rewards = torch.sigmoid(model.v_head(hidden).squeeze(-1))[0]
    flags = torch.tensor(reward_flags).nonzero().view(-1)
    return rewards[flags].tolist(), rewards[flags - 1].tolist()


def test_skywork_matches_reference(skywork):
    model, tok = skywork
    prm = SkyworkPRM(model, tok)
    assert prm.name == "skywork"
    # A multi-line step is scored at the "\n" closing its last line, exactly where the reference
    # reads that line when given the whole response joined by "\n".
    def ref(steps, which=0):
        per_line = _skywork_reference(model, tok, "\n".join(steps))[which]
        ends = []
        n = 0
        for s in steps:
            n += len(s.split("\n"))
            ends.append(n - 1)
        return [per_line[i] for i in ends]

    _check_common(prm, ref, lambda s: ref(s, which=1))


def test_skywork_value_head_names_match_checkpoint(skywork):
    model, _ = skywork
    names = {k for k in model.state_dict() if k.startswith("v_head.")}
    assert names == {"v_head.summary.weight", "v_head.summary.bias"}


# ------------------------------------------------------------------------------------------------
# Loading from the hub with no hub


@pytest.mark.parametrize(
    "cls, model_id",
    [(QwenMathPRM, QWEN_PRM_ID), (RLHFlowPRM, RLHFLOW_PRM_ID), (MathShepherdPRM, MATH_SHEPHERD_ID), (SkyworkPRM, SKYWORK_PRM_ID)],
)
def test_from_hub_offline_names_the_model(cls, model_id, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailable, match=model_id):
        cls.from_hub()
    assert cls.default_model_id == model_id
