"""`confidence`: the policy's own token confidence as a step score (no training, no second model).

A step's score is the DeepConf reading of the solution up to and including it: exp of the lowest
mean log-probability over any WINDOW consecutive tokens the policy wrote so far (its weakest stretch;
the whole solution's mean while it is shorter than a window). It asks whether the model was sure of
what it wrote, not whether it is right, so it can rank the samples of one problem (which
solution wavered) where a probe of the hidden states mostly learns how hard the problem is. One
forward pass over each solution, as the learned PRM's features (verifiers/step_features.py).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .base import VerifierBase
from .step_features import CONFIDENCE_FEATURES, FINAL, step_features

NAME = "confidence"
LOWEST_WINDOW = 3  # column of the running lowest-window mean log-probability among the confidence numbers


class ConfidenceVerifier(VerifierBase):
    name = NAME

    def __init__(self, backend, prompt_fn) -> None:
        super().__init__()
        self.backend, self.prompt_fn = backend, prompt_fn
        self.compute.params = backend.params

    @torch.inference_mode()
    def score(self, question: str, solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        feats = step_features(self.backend, self.prompt_fn, question, solutions, (FINAL,), compute=self.compute)
        return [[math.exp(float(row[-CONFIDENCE_FEATURES + LOWEST_WINDOW])) for row in f] for f in feats]
