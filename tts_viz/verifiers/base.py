"""The verifier protocol: score every step of many partial solutions in one batched call."""

from __future__ import annotations

import math
from typing import Protocol, Sequence, runtime_checkable

from ..trace import ModelCompute

AGGREGATIONS = ("last", "min", "prod")


@runtime_checkable
class Verifier(Protocol):
    name: str
    # Token/FLOP accounting for the verifier model (params=0 for model-free verifiers).
    compute: ModelCompute

    def score(self, question: str, solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        """One score in [0, 1] per step, per solution, in order. Batched over solutions."""
        ...

    def score_last(self, question: str, solutions: Sequence[Sequence[str]]) -> list[float]:
        """Score of the last step of each solution (what beam search needs each round)."""
        ...


class VerifierBase:
    """Default score_last via score; subclasses may override it with something cheaper."""

    name = "verifier"
    # where a score turns from "wrong" to "right" (the tree's fooled marks read them from the trace): 0.5
    # for the oracle, arith and a judge's yes-probability; a trained PRM's card gives its own, for steps
    # and for finished solutions (a ranking loss leaves the last step's scores low; the order is what counts)
    step_threshold = 0.5
    answer_threshold = 0.5

    def __init__(self) -> None:
        self.compute = ModelCompute(params=0)

    def score(self, question: str, solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        raise NotImplementedError

    def score_last(self, question: str, solutions: Sequence[Sequence[str]]) -> list[float]:
        scores = self.score(question, solutions)
        return [s[-1] if s else 0.0 for s in scores]

    def score_level_by_level(self, question: str, solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        """score() via score_last on every solution's step 1, then step 2, ...: for model-backed
        verifiers, step k's prompt then finds step k-1's in the backend's prefix store and runs
        only the new step, so a solution costs linear, not quadratic, tokens."""
        out = [[0.0] * len(steps) for steps in solutions]
        for k in range(max((len(s) for s in solutions), default=0)):
            rows = [i for i, steps in enumerate(solutions) if len(steps) > k]
            for i, p in zip(rows, self.score_last(question, [solutions[i][: k + 1] for i in rows])):
                out[i][k] = p
        return out


def score_thresholds(verifier) -> tuple[float, float]:
    """(step threshold, answer threshold) of any verifier: VerifierBase's, or 0.5 for one without."""
    return (float(getattr(verifier, "step_threshold", 0.5)), float(getattr(verifier, "answer_threshold", 0.5)))


def aggregate(step_scores: Sequence[float | None], how: str = "last") -> float | None:
    """Whole-solution score from its step scores: last (common default), min, or product."""
    vals = [float(s) for s in step_scores if s is not None and not math.isnan(s)]
    if not vals:
        return None
    if how == "last":
        return vals[-1]
    if how == "min":
        return min(vals)
    if how == "prod":
        return math.prod(vals)
    raise ValueError(f"Unknown aggregation {how!r}; choose one of {', '.join(AGGREGATIONS)}.")
