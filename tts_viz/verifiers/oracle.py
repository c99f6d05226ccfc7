"""`oracle` and `oracle@AUROC`: a verifier that knows the answer, exact or with calibrated noise.

Why: whether search pays depends on the verifier (Snell et al. 2024, Liu et al. 2025). With an
oracle a class can turn the verifier's quality up and down on the embedded models and watch beam
search and weighted voting win or lose against plain voting. It is a teaching and study device,
labelled as such everywhere: it reads the gold answer, which no real verifier has.

Exact scores (the step score covers the solution so far, like a PRM's):
  * a step with a \\boxed{} answer scores its final correctness (1 or 0);
  * otherwise the step's exact label (`problems.label_steps`): on generated problems every stated
    result is checked against the problem's known intermediate values and the arithmetic is
    recomputed; on GSM8K / MATH-500 rows (gold answer only) only the arithmetic is checked;
  * a step with nothing to check carries the previous step's label (1 before any check: nothing
    is wrong yet); after the first wrong step every later step is wrong (ProcessBench convention).

Noisy scores (`oracle@0.75`): the binormal model. A step with exact label y in {0, 1} gets
z = mu * (y - 1/2) + e, e ~ N(0, 1), score = sigmoid(z). Then P(z_right > z_wrong) =
Phi(mu / sqrt 2), so mu = sqrt 2 * Phi^-1(AUROC) makes the step AUROC the requested value (in
expectation; tests measure it on the shipped pool). The noise e is a hash of (seed, question, the
path's text), so a rerun scores every step exactly as before and draws the same tree.
"""

from __future__ import annotations

import hashlib
import math
from statistics import NormalDist
from typing import Sequence

from ..problems import Problem
from ..step_truth import path_labels
from .base import VerifierBase

ORACLE = "oracle"
ORACLE_LABEL = "oracle (knows the answer)"
MIN_AUROC, MAX_AUROC = 0.5, 1.0
_STD_NORMAL = NormalDist()


class OracleError(ValueError):
    """The oracle cannot score this problem (no gold answer); the message is for the user."""


def parse_oracle(name: str) -> float | None:
    """'oracle' -> None (exact), 'oracle@0.75' -> 0.75; ValueError for anything else that starts with oracle."""
    if name == ORACLE:
        return None
    if not name.startswith(ORACLE + "@"):
        raise ValueError(f"'{name}' is not an oracle verifier name (oracle or oracle@AUROC).")
    text = name.split("@", 1)[1]
    try:
        auroc = float(text)
    except ValueError:
        raise ValueError(f"The oracle's quality in '{name}' must be an AUROC between {MIN_AUROC} and "
                         f"{MAX_AUROC}, e.g. oracle@0.75.") from None
    if not MIN_AUROC <= auroc <= MAX_AUROC or math.isnan(auroc):
        raise ValueError(f"The oracle's quality must be an AUROC between {MIN_AUROC} (chance) and {MAX_AUROC} "
                         f"(exact), got {auroc:g}.")
    return None if auroc >= MAX_AUROC else auroc


def oracle_name(auroc: float | None) -> str:
    """The canonical name: exact -> 'oracle', 0.75 -> 'oracle@0.75'."""
    if auroc is None or auroc >= MAX_AUROC:
        return ORACLE
    return f"{ORACLE}@{float(auroc):g}"


def oracle_label(name: str) -> str:
    """How every view names it: 'oracle (knows the answer)', 'oracle (knows the answer) at AUROC 0.75'."""
    auroc = parse_oracle(name)
    return ORACLE_LABEL if auroc is None else f"{ORACLE_LABEL} at AUROC {auroc:g}"


def separation(auroc: float) -> float:
    """mu of the binormal model whose AUROC is `auroc`: Phi(mu / sqrt 2) = auroc."""
    if auroc <= MIN_AUROC:
        return 0.0
    return math.sqrt(2.0) * _STD_NORMAL.inv_cdf(min(auroc, 1 - 1e-12))


def step_noise(seed: int, question: str, steps: Sequence[str]) -> float:
    """A standard normal draw fixed by (seed, question, path text): same path, same noise."""
    text = "\x1f".join([str(seed), question, *steps])
    u = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    return _STD_NORMAL.inv_cdf((u + 0.5) / 2 ** 64)


def exact_path_labels(problem: Problem, steps: Sequence[str]) -> list[float]:
    """The exact oracle score (0 or 1) of every step of one solution (see the module docstring)."""
    # the tree's step truth (None before anything is checked: nothing is wrong yet, so 1)
    return [0.0 if label is False else 1.0 for label in path_labels(problem, steps)]


class OracleVerifier(VerifierBase):
    """Scores from the problem's known answers; `auroc` None = exact, else noisy at that AUROC."""

    def __init__(self, problem: Problem | None, auroc: float | None = None, seed: int = 0) -> None:
        super().__init__()
        if problem is None or not (problem.gold or "").strip():
            raise OracleError(
                "The oracle verifier knows the answer, and this problem has none: give a gold answer "
                "(or pick a generated, GSM8K or MATH-500 problem), or choose another verifier.")
        self.problem = problem
        self.auroc = None if auroc is None or auroc >= MAX_AUROC else float(auroc)
        self.seed = int(seed)
        self.mu = None if self.auroc is None else separation(self.auroc)
        self.name = oracle_name(self.auroc)

    def bind(self, problem: Problem) -> "OracleVerifier":
        """The same oracle (quality, seed) for another problem: prm-eval and the sweep score many."""
        return OracleVerifier(problem, self.auroc, self.seed)

    def _noisy(self, exact: list[float], question: str, steps: Sequence[str]) -> list[float]:
        if self.mu is None:
            return exact
        out = []
        for k, y in enumerate(exact):
            z = self.mu * (y - 0.5) + step_noise(self.seed, question, steps[: k + 1])
            out.append(1.0 / (1.0 + math.exp(-z)))
        return out

    def score(self, question: str, solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        return [self._noisy(exact_path_labels(self.problem, steps), question, steps) for steps in solutions]
