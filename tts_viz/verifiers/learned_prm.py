"""`prm`: the PRM trained for within-problem selection (study/train_prm.py) on the policy's own states.

It reads the step features of verifiers/step_features.py (layers and positions named in its card) and
scores them with the trained head. Like the probe it needs no second model and refuses a policy whose
weights differ from the ones it was trained on. Its weights and card live in assets/ as
prm-<policy>.safetensors / .json; `python -m tts_viz train-prm` reproduces them from a seed.
Inside a search only the new step runs: the features of steps scored before come from a memo, and
the question and the path so far from the policy's prefix store (where its generate call left their
KV cache), so a round costs about the new steps' tokens, not a prefill of every candidate's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from .base import VerifierBase
from .probe import ASSETS, ProbeHead, load_head, save_head
from .step_features import StepFeatureMemo, can_reuse_states, head_input, step_features, step_features_reusing

NAME = "prm"


def prm_paths(policy_name: str, folder: Path = ASSETS) -> tuple[Path, Path]:
    return folder / f"prm-{policy_name}.safetensors", folder / f"prm-{policy_name}.json"


def save_prm(head: ProbeHead, card: dict[str, Any], policy_name: str, folder: Path = ASSETS) -> Path:
    return save_head(head, card, *prm_paths(policy_name, folder))


def load_prm(policy_name: str, policy_sha: str | None, folder: Path = ASSETS) -> tuple[ProbeHead, dict]:
    return load_head(*prm_paths(policy_name, folder), policy_sha, "PRM", "train-prm", policy_name)


class LearnedPRM(VerifierBase):
    name = NAME

    def __init__(self, backend, head: ProbeHead, layers: Sequence, prompt_fn, features: str = "all",
                 thresholds: dict | None = None) -> None:
        super().__init__()
        # the card's separating thresholds (train_prm.card_thresholds), for the fooled marks only
        self.step_threshold = float((thresholds or {}).get("step", 0.5))
        self.answer_threshold = float((thresholds or {}).get("answer", 0.5))
        self.backend, self.head, self.layers, self.prompt_fn = backend, head, tuple(layers), prompt_fn
        self.features = features  # which columns the head was trained on (its card's candidate)
        self.memo = StepFeatureMemo()
        self.reuse = True  # False: one whole pass per solution every call (the bench's baseline)
        self.compute.params = backend.params

    @torch.inference_mode()
    def score(self, question: str, solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        if self.reuse and can_reuse_states(self.backend):
            feats = step_features_reusing(self.backend, self.prompt_fn, question, solutions, self.layers, self.memo,
                                          compute=self.compute)
        else:
            feats = step_features(self.backend, self.prompt_fn, question, solutions, self.layers, compute=self.compute)
        return self.score_from_features(feats, self.layers, solutions)

    @torch.inference_mode()
    def score_from_features(self, feats: Sequence[torch.Tensor], layers: Sequence,
                            solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        """score() on step features already read (prm-eval shares one pass with the probe)."""
        if [str(x) for x in layers] != [str(x) for x in self.layers]:
            raise ValueError(f"the PRM reads layers {list(self.layers)}, these features hold {list(layers)}")
        return [torch.sigmoid(self.head(head_input(f, self.features, [steps]))).tolist() if len(f) else []
                for f, steps in zip(feats, solutions)]
