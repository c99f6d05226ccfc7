"""Answer selection over finished solutions: majority vote, best-of-N, weighted best-of-N."""

from __future__ import annotations

from typing import Sequence

from ..grading import group_answers
from ..trace import Node

METHODS = ("majority", "best", "weighted")


def _score(n: Node) -> float:
    return n.agg_score if n.agg_score is not None else 0.0


def pick(leaves: Sequence[Node], method: str) -> tuple[Node, str]:
    """(chosen leaf, one sentence why). Solutions with an answer win over ones without."""
    answered = [n for n in leaves if n.answer]
    pool = answered or list(leaves)
    if method == "best" or not answered:
        best = min(pool, key=lambda n: (-_score(n), n.id))
        note = "" if answered else " (no solution gave a \\boxed{} answer)"
        return best, f"selected: highest solution score {_score(best):.3f} of {len(pool)}{note}"
    groups = [[pool[i] for i in g] for g in group_answers([n.answer for n in pool])]
    if method == "majority":
        key = lambda g: (-len(g), -max(_score(n) for n in g), min(n.id for n in g))
        what = "votes"
        value = lambda g: f"{len(g)} of {len(pool)}"
    elif method == "weighted":
        key = lambda g: (-sum(_score(n) for n in g), -len(g), min(n.id for n in g))
        what = "summed score"
        value = lambda g: f"{sum(_score(n) for n in g):.3f}"
    else:
        raise ValueError(f"Unknown selection method {method!r}; choose one of {', '.join(METHODS)}.")
    ranked = sorted(groups, key=key)
    top = ranked[0]
    chosen = min(top, key=lambda n: (-_score(n), n.id))
    runner_up = f"; next: {ranked[1][0].answer!r} with {value(ranked[1])}" if len(ranked) > 1 else ""
    return chosen, f"selected: answer {chosen.answer!r} has the most {what} ({value(top)}){runner_up}"


def answer_groups(leaves: Sequence[Node]) -> list[tuple[str, int, float]]:
    """(answer, count, summed score) per equivalent-answer group, largest sum first: for views."""
    answered = [n for n in leaves if n.answer]
    out = []
    for g in group_answers([n.answer for n in answered]):
        nodes = [answered[i] for i in g]
        out.append((nodes[0].answer, len(nodes), sum(_score(n) for n in nodes)))
    return sorted(out, key=lambda t: -t[2])
