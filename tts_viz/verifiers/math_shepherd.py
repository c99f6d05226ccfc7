"""Math-Shepherd PRM adapter (peiyi9979/math-shepherd-mistral-7b-prm).

Input format (model card of peiyi9979/math-shepherd-mistral-7b-prm):

    good_token, bad_token, step_tag = "+", "-", "ки"
    candidate_tokens = tokenizer.encode(f"{good_token} {bad_token}")[1:]   # [648, 387]
    step_tag_id = tokenizer.encode(f"{step_tag}")[-1]                     # 12902
    output = "Step 1: ... ки\\nStep 2: ... ки\\nStep 3: ... ки"
    input_id = tokenizer.encode(f"{question} {output}")
    scores = model(input_id).logits[:, :, candidate_tokens].softmax(-1)[:, :, 0]
    step_scores = scores[input_id == step_tag_id]

So the text is `question + " " + "\\n".join(step + " ки")` and the step score is P("+") over
{"+", "-"} read at the tag token itself. Steps are .strip()ped; the "Step k:" prefixes of the card's
example belong to the policy's own output (MetaMath style) and are not added here.

The tags are located by character position (the text is built here, so each tag's characters are
known) through the fast tokenizer's offsets mapping, and the covering token must be a tag token:
`encode("ки")[-1]` as on the card (SentencePiece gives "▁ки" there, the same id as " ки" in the
text) or the last token of `encode(" ки")` (byte-level BPE tokenizers give a different id with the
leading space). Anything else means the tag merged with its neighbours: ValueError. A question or
step that itself contains "ки" is rejected (it would read as an extra step end to the model).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from .hub_base import Encoded, HubPRMBase, causal_lm_logits_at, tokens_at_chars

MATH_SHEPHERD_ID = "peiyi9979/math-shepherd-mistral-7b-prm"
STEP_TAG = "ки"


def shepherd_text(question: str, steps: Sequence[str]) -> tuple[str, list[int]]:
    """The PRM text and the character index of the last character of each tag (also what a vLLM
    pooling server is sent, served_prm.py)."""
    text = question + " "
    tag_ends = []
    for k, step in enumerate(steps):
        if k:
            text += "\n"
        text += step.strip() + " " + STEP_TAG
        tag_ends.append(len(text) - 1)
    return text, tag_ends


class MathShepherdPRM(HubPRMBase):
    name = "math-shepherd"
    default_model_id = MATH_SHEPHERD_ID
    step_tag = STEP_TAG

    def __init__(self, model: Any, tokenizer: Any, **kw: Any) -> None:
        super().__init__(model, tokenizer, **kw)
        cand = list(tokenizer.encode("+ -"))
        if cand and tokenizer.bos_token_id is not None and cand[0] == tokenizer.bos_token_id:
            cand = cand[1:]  # the card's [1:] drops the BOS that Mistral's tokenizer adds
        if len(cand) != 2 or cand[0] == cand[1]:
            raise ValueError(
                f"{self.name}: '+ -' tokenises to {tokenizer.convert_ids_to_tokens(cand)}, not two "
                f"distinct tokens; cannot pick the '+'/'-' candidate tokens."
            )
        self.candidate_ids = cand
        self.tag_ids = {
            tokenizer.encode(STEP_TAG)[-1],
            tokenizer.encode(" " + STEP_TAG, add_special_tokens=False)[-1],
        }

    @classmethod
    def from_hub(cls, model_id: str = MATH_SHEPHERD_ID, device: str | None = None, quant: str | None = None, **kw: Any) -> "MathShepherdPRM":
        from transformers import AutoModelForCausalLM

        from ..models import load_hub_model

        model, tok = load_hub_model(model_id, auto_class=AutoModelForCausalLM, device=device, quant=quant)
        return cls(model, tok, model_id=model_id, **kw)

    def render(self, question: str, steps: list[str]) -> tuple[str, list[int]]:
        return shepherd_text(question, steps)

    def encode(self, question: str, steps: list[str]) -> Encoded:
        text, tag_ends = self.render(question, steps)
        # Default special tokens (BOS for Mistral), as the card's tokenizer.encode(text).
        enc = self.tokenizer(text, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        positions = []
        for k, t in enumerate(tokens_at_chars(enc["offset_mapping"], tag_ends)):
            if t < 0 or ids[t] not in self.tag_ids:
                got = self.tokenizer.convert_ids_to_tokens(ids[t]) if t >= 0 else None
                raise ValueError(
                    f"{self.name}: the step tag after step {k + 1} did not tokenise to the tag token "
                    f"(got {got!r}); cannot read its score."
                )
            positions.append(t)  # read at the tag itself, as the card does
        return Encoded(ids, positions)

    def read_scores(self, ids, mask, positions):
        cand = causal_lm_logits_at(self.model, ids, mask, positions, self.candidate_ids)
        return torch.softmax(cand, dim=-1)[..., 0]
