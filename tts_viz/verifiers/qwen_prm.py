"""Qwen2.5-Math-PRM adapter (the shared hub-PRM batching lives in hub_base.py).

Input format (model card of Qwen/Qwen2.5-Math-PRM-7B, "Quick Start"):

    messages = [{"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."},
                {"role": "user", "content": question},
                {"role": "assistant", "content": "<extra_0>".join(steps) + "<extra_0>"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    input_ids = tokenizer.encode(text)
    step_sep_id = tokenizer.encode("<extra_0>")[0]
    probs = softmax(model(input_ids)[0], -1)       # [B, T, 2]
    step score = probs[input_ids == step_sep_id][:, 1]
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from .hub_base import Encoded, HubPRMBase

QWEN_PRM_ID = "Qwen/Qwen2.5-Math-PRM-7B"
QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
QWEN_STEP_TOKEN = "<extra_0>"


def qwen_prm_messages(question: str, steps: Sequence[str], system_prompt: str = QWEN_SYSTEM) -> list[dict[str, str]]:
    """The card's conversation: the steps joined by the tag, one tag closing each (also what a
    vLLM pooling server is sent, served_prm.py)."""
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": question},
        {"role": "assistant", "content": QWEN_STEP_TOKEN.join(s.strip() for s in steps) + QWEN_STEP_TOKEN},
    ]


# ------------------------------------------------------------------------------------------------
# Qwen2.5-Math-PRM


class QwenMathPRM(HubPRMBase):
    """Qwen/Qwen2.5-Math-PRM-7B (and -72B): a 2-class head on every token; the step score is the
    positive-class (index 1) probability at each `<extra_0>` that follows a step.

    The model is anything whose forward returns logits [B, T, 2] as `.logits` or `[0]` (the real
    one is AutoModel with trust_remote_code; Qwen2ForTokenClassification(num_labels=2) has the same
    contract, which the tests use). Steps are stripped of surrounding whitespace (the card splits a
    solution on "\\n\\n" and joins the pieces with the tag); newlines inside a step are kept.
    A step or question containing "<extra_0>" (or another control token) is rejected.
    """

    name = "qwen2.5-math-prm"
    default_model_id = QWEN_PRM_ID
    step_tag = QWEN_STEP_TOKEN

    def __init__(self, model: Any, tokenizer: Any, *, system_prompt: str = QWEN_SYSTEM, **kw: Any) -> None:
        super().__init__(model, tokenizer, **kw)
        self.system_prompt = system_prompt
        sep = tokenizer.encode(QWEN_STEP_TOKEN, add_special_tokens=False)
        if len(sep) != 1:
            raise ValueError(
                f"{self.name}: the tokenizer does not have {QWEN_STEP_TOKEN!r} as a single token "
                f"(got {len(sep)} tokens); this is not a Qwen2.5-Math-PRM tokenizer."
            )
        self.step_sep_id = sep[0]

    @classmethod
    def from_hub(cls, model_id: str = QWEN_PRM_ID, device: str | None = None, quant: str | None = None, **kw: Any) -> "QwenMathPRM":
        from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification

        from ..models import load_hub_model

        # the hub checkpoint maps AutoModel to its own Qwen2ForProcessRewardModel (remote code); a
        # folder saved from Qwen2ForTokenClassification (same contract: logits [B, T, 2]) loads as that
        auto = AutoModel
        try:
            archs = AutoConfig.from_pretrained(model_id, local_files_only=True, trust_remote_code=True).architectures or []
            if any(a.endswith("ForTokenClassification") for a in archs):
                auto = AutoModelForTokenClassification
        except (OSError, ValueError):
            pass
        model, tok = load_hub_model(model_id, auto_class=auto, trust_remote_code=True, device=device, quant=quant)
        return cls(model, tok, model_id=model_id, **kw)

    def render(self, question: str, steps: Sequence[str]) -> str:
        return self.tokenizer.apply_chat_template(qwen_prm_messages(question, steps, self.system_prompt),
                                                  tokenize=False, add_generation_prompt=False)

    def encode(self, question: str, steps: list[str]) -> Encoded:
        # tokenizer(text) with default special tokens, as the card's tokenizer.encode(text).
        ids = list(self.tokenizer(self.render(question, steps))["input_ids"])
        # The tag is a control token that plain text cannot produce (check_texts rejected it in the
        # inputs), so its occurrences are exactly the step ends, in order.
        positions = [i for i, t in enumerate(ids) if t == self.step_sep_id]
        return Encoded(ids, positions)

    def read_scores(self, ids, mask, positions):
        out = self.model(input_ids=ids, attention_mask=mask)
        logits = out.logits if hasattr(out, "logits") else out[0]  # [B, T, 2]
        picked = torch.take_along_dim(logits, positions[..., None].to(logits.device), dim=1)
        return torch.softmax(picked.float(), dim=-1)[..., 1]

