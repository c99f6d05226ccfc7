"""Score a finished Trace again with another verifier, keeping every generated step.

Why: the samples of a parallel run (best-of-N / majority / weighted) do not depend on the verifier,
so the sweep samples a problem's pool once and re-scores it for every verifier quality instead of
sampling it again; and a person can ask how another verifier would have ranked the same tree.
"""

from __future__ import annotations

import copy

from .grading import is_correct
from .strategies.select import pick
from .trace import FINISHED, SELECTED, ModelCompute, Trace
from .verifiers.base import aggregate


def rescore_trace(trace: Trace, verifier, aggregation: str = "last", selection: str | None = "best",
                  verifier_name: str | None = None) -> Trace:
    """A copy of `trace` whose step and path scores come from `verifier` (one batched call over every
    finished solution); with `selection` (select.pick's method) the chosen leaf is picked again."""
    out = copy.deepcopy(trace)
    leaves = [n for n in out.nodes if n.status in (FINISHED, SELECTED)]
    compute = ModelCompute(params=getattr(verifier.compute, "params", 0))
    verifier.compute = compute
    if leaves:
        per_path = verifier.score(out.question, [out.steps(n.id) for n in leaves])
        for leaf, scores in zip(leaves, per_path):
            for node, s in zip(out.path(leaf.id), scores):
                node.step_score = float(s)
        for node in out.nodes[1:]:
            node.agg_score = aggregate([a.step_score for a in out.path(node.id)], aggregation)
    out.compute["verifier"] = compute
    out.verifier = verifier_name or getattr(verifier, "name", out.verifier)
    if selection and leaves:
        for n in leaves:
            n.status = FINISHED
        chosen, why = pick(leaves, selection)
        chosen.status, chosen.reason = SELECTED, why
        out.final_answer = chosen.answer
        out.correct = is_correct(chosen.answer, out.gold) if out.gold is not None else None
    return out
