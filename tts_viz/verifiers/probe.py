"""On-policy value probe: a small head on the policy's own hidden state at the end of each step.

Why: the policy's last hidden state after "step k\\n\\n" already encodes what it is about to do;
a linear (or one-hidden-layer) head trained on the policy's own rollouts reads off how likely the
solution is to end right. Scoring needs no second model, and with the backend's prefix store it
costs about one token per step: the policy ran (and stored) that prefix when it wrote the step.

The head lives in assets/ as safetensors plus a JSON card naming the policy GGUF's SHA-256 it was
trained on; it refuses another policy. `python -m tts_viz train-probe` reproduces it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from .base import VerifierBase

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"


class ProbeHead(nn.Module):
    """Standardise the hidden state, then linear (hidden=0) or one tanh layer, then a logit."""

    def __init__(self, dim: int, hidden: int = 0) -> None:
        super().__init__()
        self.dim, self.hidden = dim, hidden
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.net = nn.Linear(dim, 1) if hidden == 0 else nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Logits [B] for hidden states [B, dim]."""
        return self.net((h.float() - self.mean) / self.std).squeeze(-1)


def probe_paths(policy_name: str, folder: Path = ASSETS) -> tuple[Path, Path]:
    return folder / f"probe-{policy_name}.safetensors", folder / f"probe-{policy_name}.json"


def save_head(head: ProbeHead, card: dict[str, Any], weights: Path, meta: Path) -> Path:
    """A trained head's weights (safetensors) and its card (JSON), as the probe and the PRM keep them."""
    from safetensors.torch import save_file

    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(weights))
    meta.write_text(json.dumps({**card, "dim": head.dim, "hidden": head.hidden}, indent=1))
    return weights


def load_head(weights: Path, meta: Path, policy_sha: str | None, what: str, command: str,
              policy_name: str) -> tuple[ProbeHead, dict]:
    """A trained head and its card; refuses a missing file (saying how to train one) and a card whose
    policy weights differ from `policy_sha` (its scores would mean nothing)."""
    from safetensors.torch import load_file

    if not weights.is_file() or not meta.is_file():
        raise ValueError(
            f"No {what} is trained for the policy '{policy_name}' (looked for {weights.name} in {weights.parent}). "
            f"Train one: python -m tts_viz {command} --policy {policy_name}"
        )
    card = json.loads(meta.read_text())
    if policy_sha and card.get("policy_sha256") and card["policy_sha256"] != policy_sha:
        raise ValueError(
            f"The {what} in {weights.name} was trained on policy weights {card['policy_sha256'][:12]}…, not on "
            f"these ({policy_sha[:12]}…): its scores would mean nothing. Retrain it with {command}."
        )
    head = ProbeHead(card["dim"], card.get("hidden", 0))
    head.load_state_dict(load_file(str(weights)))
    head.eval()
    return head, card


def save_probe(head: ProbeHead, card: dict[str, Any], policy_name: str, folder: Path = ASSETS) -> Path:
    return save_head(head, card, *probe_paths(policy_name, folder))


def load_probe(policy_name: str, policy_sha: str | None, folder: Path = ASSETS) -> tuple[ProbeHead, dict]:
    return load_head(*probe_paths(policy_name, folder), policy_sha, "probe", "train-probe", policy_name)


class ProbeVerifier(VerifierBase):
    name = "probe"

    def __init__(self, backend, head: ProbeHead, prompt_fn) -> None:
        """prompt_fn(question, steps) -> the policy's own prompt with those steps written
        (StepPolicy.prompt): the probe reads the state the policy is in after the last step."""
        super().__init__()
        self.backend = backend
        self.head = head
        self.prompt_fn = prompt_fn
        self.compute.params = backend.params

    def features(self, question: str, solutions: Sequence[Sequence[str]]) -> torch.Tensor:
        prompts = [self.prompt_fn(question, steps) for steps in solutions]
        return self.backend.last_hidden_states(prompts, compute=self.compute)

    @torch.inference_mode()
    def score_last(self, question: str, solutions: Sequence[Sequence[str]]) -> list[float]:
        if not solutions:
            return []
        return torch.sigmoid(self.head(self.features(question, solutions))).tolist()

    def score(self, question: str, solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        return self.score_level_by_level(question, solutions)

    @torch.inference_mode()
    def score_from_features(self, feats: Sequence[torch.Tensor], layers: Sequence,
                            solutions: Sequence[Sequence[str]] = ()) -> list[list[float]]:
        """score() read off step_features' rows of the same solutions (the same states, one pass for the
        whole solution): prm-eval scores the probe and the trained PRM from one pass per problem."""
        from .step_features import FINAL, final_state_columns

        if FINAL not in layers:
            raise ValueError("the probe reads the final layer, which these features do not hold")
        cols = final_state_columns(self.head.dim, layers)
        return [torch.sigmoid(self.head(f[:, cols])).tolist() if len(f) else [] for f in feats]
