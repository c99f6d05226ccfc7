"""RLHFlow PRM adapter (RLHFlow/Llama3.1-8B-PRM-Deepseek-Data and -Mistral-Data).

Input format (RLHFlow/RLHF-Reward-Modeling, math-rm/README.md and math-rm/prm_evaluate.py): each
step is a user turn, the first one prefixed by the question, and every assistant turn is "+":

    [{"role": "user", "content": question + " " + step_1}, {"role": "assistant", "content": "+"},
     {"role": "user", "content": step_2},                   {"role": "assistant", "content": "+"}, ...]

prm_evaluate.py renders the conversation up to step k with the tokenizer's chat template and reads
`logits[:, -3, [id("+"), id("-")]]` (the sequence ends "... \\n\\n + <|eot_id|>", so -3 is the token
before the "+", the one that predicts it); step score = softmax over the two, index 0 = P("+").
Candidate ids: `tokenizer.encode("+")[-1]`, `tokenizer.encode("-")[-1]`; steps are .strip()ped.

Here the whole conversation goes through the model once: the model is causal and the chat template
renders turns independently, so the logits before the k-th "+" equal those of the reference's
k-th incremental pass. The "+" tokens are located by character position, not by searching for the
"+" id (a step can contain "+" too): the template is rendered with a one-character sentinel as the
assistant content, the sentinel positions are where the "+" characters land, and the offsets
mapping of the fast tokenizer gives the token covering each; that token must be exactly the "+"
token, else ValueError. Steps may contain newlines and "+"; control tokens (e.g. "<|eot_id|>") in
the text are rejected.
"""

from __future__ import annotations

from typing import Any

import torch

from .hub_base import Encoded, HubPRMBase, causal_lm_logits_at, tokens_at_chars

RLHFLOW_PRM_ID = "RLHFlow/Llama3.1-8B-PRM-Deepseek-Data"
# A private-use character: never produced by a policy, one character long, so replacing it by "+"
# keeps every character offset of the rendered conversation.
_SENTINEL = "\ue000"


class RLHFlowPRM(HubPRMBase):
    name = "rlhflow"
    default_model_id = RLHFLOW_PRM_ID
    step_tag = _SENTINEL  # must not occur in the text (see module docstring)

    def __init__(self, model: Any, tokenizer: Any, **kw: Any) -> None:
        super().__init__(model, tokenizer, **kw)
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(f"{self.name}: the tokenizer has no chat template; the PRM input is a chat.")
        self.plus_id = tokenizer.encode("+")[-1]
        self.minus_id = tokenizer.encode("-")[-1]
        if self.plus_id == self.minus_id:
            raise ValueError(f"{self.name}: '+' and '-' map to the same token id {self.plus_id}.")

    @classmethod
    def from_hub(cls, model_id: str = RLHFLOW_PRM_ID, device: str | None = None, quant: str | None = None, **kw: Any) -> "RLHFlowPRM":
        from transformers import AutoModelForCausalLM

        from ..models import load_hub_model

        model, tok = load_hub_model(model_id, auto_class=AutoModelForCausalLM, device=device, quant=quant)
        return cls(model, tok, model_id=model_id, **kw)

    def conversation(self, question: str, steps: list[str], answer: str = "+") -> list[dict[str, str]]:
        conv = []
        for k, step in enumerate(steps):
            text = question + " " + step.strip() if k == 0 else step.strip()
            conv.append({"role": "user", "content": text})
            conv.append({"role": "assistant", "content": answer})
        return conv

    def encode(self, question: str, steps: list[str]) -> Encoded:
        tok = self.tokenizer
        marked = tok.apply_chat_template(self.conversation(question, steps, _SENTINEL), tokenize=False)
        text = tok.apply_chat_template(self.conversation(question, steps, "+"), tokenize=False)
        chars = [i for i, c in enumerate(marked) if c == _SENTINEL]
        if len(chars) != len(steps) or marked.replace(_SENTINEL, "+") != text:
            raise ValueError(
                f"{self.name}: the chat template did not render each assistant turn verbatim, so the "
                f"'+' positions cannot be located."
            )
        # No extra special tokens: the template writes them (apply_chat_template(tokenize=True) does
        # the same, which is what the reference feeds the model).
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        positions = []
        for k, t in enumerate(tokens_at_chars(enc["offset_mapping"], chars)):
            if t < 1 or ids[t] != self.plus_id:
                got = tok.convert_ids_to_tokens(ids[t]) if t >= 0 else None
                raise ValueError(
                    f"{self.name}: the assistant '+' after step {k + 1} is not a token of its own "
                    f"(tokenised as {got!r}); cannot read P('+') for that step."
                )
            positions.append(t - 1)  # logits at t-1 predict the token at t
        return Encoded(ids, positions)

    def read_scores(self, ids, mask, positions):
        cand = causal_lm_logits_at(self.model, ids, mask, positions, [self.plus_id, self.minus_id])
        return torch.softmax(cand, dim=-1)[..., 0]
