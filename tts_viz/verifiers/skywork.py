"""Skywork-o1-Open-PRM adapter (Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B and -7B).

Reference: SkyworkAI/skywork-o1-prm-inference (as vendored in huggingface/search-and-learn,
src/sal/models/skywork_o1_prm/{io_utils,prm_model}.py) and the model card:

    prompt_ids = tokenizer.encode(tokenizer.bos_token + problem + "\\n")
    step_token_id = tokenizer.encode("\\n")[-1]          # step_token = "\\n"
    for step in response.split("\\n"):
        step_ids = (tokenizer.encode(step) if step != "" else []) + [step_token_id]
        reward flag = 1 on the last id of step_ids (the "\\n" closing the step)
    input_ids = prompt_ids + all step_ids; right-padded with pad_token_id; attention mask
    _, _, rewards = model(input_ids, attention_mask, return_probs=True)   # sigmoid(v_head(h))
    step reward = rewards at the flagged positions

The model there is a causal LM wrapped with a value head, `v_head.summary = nn.Linear(hidden, 1)`,
applied to the last hidden state (after the final norm). Here the backbone is the bare transformer
(AutoModel: no vocab-sized LM head is computed) and the head is our own `SkyworkValueHeadModel`.

Assumption (not checked against the real files, no hub here): the checkpoint's safetensors hold the
head as "v_head.summary.weight" / "v_head.summary.bias" next to the "model.*" backbone weights,
which is how trl-style PreTrainedModelWrapper.state_dict()/push_to_hub name them. `from_hub` loads
them by that name and fails with ModelError if they are absent: a randomly initialised head would
produce plausible-looking but meaningless scores.

Steps and newlines: the reference scores a response line by line. Each of our steps is .strip()ped
and split on "\\n"; every line gets the "\\n" step token, exactly as the reference would tokenise
`"\\n".join(steps)`, and the step's score is the reward at the "\\n" closing its last line
(rewards of inner lines are computed by the model and not returned).
"""

from __future__ import annotations

from pathlib import Path

from typing import Any

import torch
import torch.nn as nn

from .hub_base import Encoded, HubPRMBase

SKYWORK_PRM_ID = "Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B"
STEP_TOKEN = "\n"


class ValueHead(nn.Module):
    """`summary = Linear(hidden, 1)`, so its parameters are named v_head.summary.* as in the checkpoint."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.summary = nn.Linear(hidden_size, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.summary(h.to(self.summary.weight.dtype))


class SkyworkValueHeadModel(nn.Module):
    """`backbone` (a bare transformer such as Qwen2Model) + `v_head` (hidden -> 1, float32).

    forward(input_ids, attention_mask, positions=None) returns value logits (before the sigmoid):
    [B, T], or [B, K] at `positions` [B, K]. The head runs in float32, as the reference upcasts.
    """

    def __init__(self, backbone: Any) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = backbone.config
        self.v_head = ValueHead(backbone.config.hidden_size).float()

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def forward(self, input_ids, attention_mask=None, positions=None) -> torch.Tensor:
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        h = out.last_hidden_state  # after the final norm, like the reference's hidden_states[-1]
        if positions is not None:
            h = torch.take_along_dim(h, positions[..., None].to(h.device), dim=1)
        return self.v_head(h.to(self.v_head.summary.weight.device)).squeeze(-1)


def _load_v_head_state(model_id: str) -> dict:
    """The value-head tensors from the checkpoint files (local cache first, the hub if reachable)."""
    import json

    from huggingface_hub import hf_hub_download

    from ..models import ModelError, ModelNotAvailable, hub_reachable

    offline = not hub_reachable()

    def fetch(name: str):
        local = Path(model_id) / name
        if Path(model_id).is_dir():  # a local folder of saved weights: the same layout
            return str(local) if local.is_file() else None
        try:
            return hf_hub_download(model_id, name, local_files_only=offline)
        except Exception:  # not in the cache / not in the repo: try the next layout
            return None

    files: list[str] = []
    index = fetch("model.safetensors.index.json")
    if index:
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f).get("weight_map", {})
        files = sorted({v for k, v in weight_map.items() if k.startswith("v_head.")})
    else:
        files = ["model.safetensors"]
    state: dict = {}
    for name in files:
        path = fetch(name)
        if path is None:
            raise ModelNotAvailable(f"Could not get {name} of '{model_id}' (needed for its value head).")
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            for k in f.keys():
                if k.startswith("v_head."):
                    state[k[len("v_head.") :]] = f.get_tensor(k)
    if "summary.weight" not in state:
        raise ModelError(
            f"'{model_id}' has no 'v_head.summary.weight' in its safetensors files; this adapter assumes "
            f"the Skywork PRM layout (value head saved next to the backbone). Found: {sorted(state) or 'none'}."
        )
    return state


class SkyworkPRM(HubPRMBase):
    """Skywork-o1-Open-PRM: sigmoid of a linear value head at the "\\n" closing each step."""

    name = "skywork"
    default_model_id = SKYWORK_PRM_ID
    step_tag = None  # newlines inside a step are handled (see module docstring)

    def __init__(self, model: Any, tokenizer: Any, **kw: Any) -> None:
        super().__init__(model, tokenizer, **kw)
        self.step_token_id = tokenizer.encode(STEP_TOKEN, add_special_tokens=False)[-1]

    @classmethod
    def from_hub(cls, model_id: str = SKYWORK_PRM_ID, device: str | None = None, quant: str | None = None, **kw: Any) -> "SkyworkPRM":
        from transformers import AutoModel

        from ..models import load_hub_model

        backbone, tok = load_hub_model(model_id, auto_class=AutoModel, device=device, quant=quant)
        model = SkyworkValueHeadModel(backbone)
        state = _load_v_head_state(model_id)
        model.v_head.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        model.v_head.to(model.device)
        return cls(model, tok, model_id=model_id, **kw)

    def encode(self, question: str, steps: list[str]) -> Encoded:
        tok = self.tokenizer
        # BOS written as text, as the reference does; add_special_tokens=False so a tokenizer that
        # adds its own BOS does not add a second one (Qwen's adds none, so this is the same ids).
        ids = list(tok.encode((tok.bos_token or "") + question + "\n", add_special_tokens=False))
        positions = []
        for step in steps:
            for line in step.strip().split(STEP_TOKEN):
                if line:
                    ids.extend(tok.encode(line, add_special_tokens=False))
                ids.append(self.step_token_id)
            positions.append(len(ids) - 1)
        return Encoded(ids, positions)

    def read_scores(self, ids, mask, positions):
        values = self.model(input_ids=ids, attention_mask=mask, positions=positions)
        return torch.sigmoid(values.float())
