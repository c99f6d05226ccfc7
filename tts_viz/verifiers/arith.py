"""Arithmetic checker: recompute every `a op b = c` in a step exactly, with fractions.

Deterministic and instant, limited to arithmetic. Like a PRM's step score, which estimates
whether the solution *so far* is on track, the score of step k covers steps 1..k:
  0.0  some equation in steps 1..k is wrong,
  1.0  all equations so far are right and at least one was checked,
  0.5  nothing checkable yet (no evidence either way).
The equation finder is the one that labels generated problems' steps (problems.find_equations).
"""

from __future__ import annotations

from typing import Sequence

from ..problems import find_equations
from .base import VerifierBase

NEUTRAL = 0.5


def check_equations(step: str) -> list[tuple[str, bool]]:
    """Every `expression = number` found in the step, with whether it is exactly right."""
    return [(eq["text"].strip(), bool(eq["ok"])) for eq in find_equations(step)]


def running_checks(steps: Sequence[str]) -> list[tuple[float, list[tuple[str, bool]]]]:
    """(running score of steps 1..k, step k's own checked equations) for every step k."""
    out = []
    wrong = checked = False
    for step in steps:
        eqs = check_equations(step)
        checked = checked or bool(eqs)
        wrong = wrong or any(not ok for _, ok in eqs)
        out.append((0.0 if wrong else (1.0 if checked else NEUTRAL), eqs))
    return out


class ArithVerifier(VerifierBase):
    name = "arith"

    def score(self, question: str, solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        return [[score for score, _ in running_checks(steps)] for steps in solutions]
