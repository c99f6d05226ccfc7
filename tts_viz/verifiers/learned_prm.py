"""`prm`: the PRM trained for within-problem selection (study/train_prm.py) on the policy's own states.

It reads the step features of verifiers/step_features.py (layers and positions named in its card) and
scores them with the trained head. Like the probe it needs no second model and refuses a policy whose
weights differ from the ones it was trained on. Its weights and card live in assets/ as
prm-<policy>.safetensors / .json; `python -m tts_viz train-prm` reproduces them from a seed.
Scoring runs one forward pass over each whole partial solution (no prefix reuse yet): its cost is a
prefill of the question and the steps so far, per candidate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch

from .base import VerifierBase
from .probe import ASSETS, ProbeHead
from .step_features import step_features

NAME = "prm"


def prm_paths(policy_name: str, folder: Path = ASSETS) -> tuple[Path, Path]:
    return folder / f"prm-{policy_name}.safetensors", folder / f"prm-{policy_name}.json"


def save_prm(head: ProbeHead, card: dict[str, Any], policy_name: str, folder: Path = ASSETS) -> Path:
    from safetensors.torch import save_file

    weights, meta = prm_paths(policy_name, folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(weights))
    meta.write_text(json.dumps({**card, "dim": head.dim, "hidden": head.hidden}, indent=1))
    return weights


def load_prm(policy_name: str, policy_sha: str | None, folder: Path = ASSETS) -> tuple[ProbeHead, dict]:
    from safetensors.torch import load_file

    weights, meta = prm_paths(policy_name, folder)
    if not weights.is_file() or not meta.is_file():
        raise ValueError(f"No trained PRM for the policy '{policy_name}' (looked for {weights.name} in {folder}). "
                         f"Train one: python -m tts_viz train-prm --policy {policy_name}")
    card = json.loads(meta.read_text())
    if policy_sha and card.get("policy_sha256") and card["policy_sha256"] != policy_sha:
        raise ValueError(f"The PRM in {weights.name} was trained on policy weights {card['policy_sha256'][:12]}…, "
                         f"not on these ({policy_sha[:12]}…): its scores would mean nothing. Retrain it with train-prm.")
    head = ProbeHead(card["dim"], card.get("hidden", 0))
    head.load_state_dict(load_file(str(weights)))
    head.eval()
    return head, card


class LearnedPRM(VerifierBase):
    name = NAME

    def __init__(self, backend, head: ProbeHead, layers: Sequence, prompt_fn) -> None:
        super().__init__()
        self.backend, self.head, self.layers, self.prompt_fn = backend, head, tuple(layers), prompt_fn
        self.compute.params = backend.params

    @torch.inference_mode()
    def score(self, question: str, solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        feats = step_features(self.backend, self.prompt_fn, question, solutions, self.layers, compute=self.compute)
        return [torch.sigmoid(self.head(f)).tolist() if len(f) else [] for f in feats]
