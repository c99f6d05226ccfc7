"""`arith+X`: another verifier's step scores, vetoed by the exact arithmetic check.

Why: a learned or generative scorer judges plausibility and misses slips such as "17 * 3 = 41",
which the arithmetic checker (arith.py) catches exactly but which is all it can see. Here the
inner verifier X scores every step, and from the first step with a wrong equation on, the score is
0 (a PRM's step score covers the solution so far, so a wrong step also sinks the steps after it).
Steps with no checkable equation keep X's score.
"""

from __future__ import annotations

from typing import Sequence

from .arith import ArithVerifier
from .base import VerifierBase


def veto(arith_scores: Sequence[Sequence[float]], inner_scores: Sequence[Sequence[float]]) -> list[list[float]]:
    """inner's scores, 0 wherever arith's running check says a wrong equation has appeared (arith = 0)."""
    return [[0.0 if a == 0.0 else float(s) for a, s in zip(arith, inner)]
            for arith, inner in zip(arith_scores, inner_scores)]


class ArithVetoVerifier(VerifierBase):
    def __init__(self, inner) -> None:
        self.inner = inner
        self.arith = ArithVerifier()
        self.name = f"arith+{inner.name}"

    # All model work is the inner verifier's, so its accounting object is the one the runner swaps in.
    @property
    def compute(self):
        return self.inner.compute

    @compute.setter
    def compute(self, value) -> None:
        self.inner.compute = value

    def score(self, question: str, solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        return veto(self.arith.score(question, solutions), self.inner.score(question, solutions))

    def score_last(self, question: str, solutions: Sequence[Sequence[str]]) -> list[float]:
        arith = [s[-1] if s else 0.5 for s in self.arith.score(question, solutions)]
        return [0.0 if a == 0.0 else float(s) for a, s in zip(arith, self.inner.score_last(question, solutions))]
