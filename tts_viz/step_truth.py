"""Step truth on the tree: every node's true label, where the problem's steps can be labelled.

On generated problems each stated result is checked against the problem's known intermediate
values (problems.label_steps); on GSM8K / MATH-500 rows only the arithmetic is checked; a finished
solution is labelled by its final answer against the gold. The label covers the path so far (as
a PRM's step score does): after the first wrong step every node below it is wrong, except a node
that states a final answer, which is labelled by that answer, as the exact oracle scores it (so an
exact oracle is never marked fooled); that verdict does not carry down to the steps below. The
views set it beside the verifier's score to show where the verifier was fooled (viz.figures,
viz.panels).
"""

from __future__ import annotations

from typing import Sequence

from .grading import extract_answer, is_correct
from .policy import has_final_answer
from .problems import Problem, label_steps
from .trace import FINISHED, SELECTED, Trace


def step_label(problem: Problem, text: str, path: bool | None) -> tuple[bool | None, bool | None]:
    """(this step's true label, the path's label after it), given the path's label before it
    (None: nothing checked yet).

    A step's equations update the path: once a step is wrong, the path stays wrong. A step with a
    \\boxed{} answer is labelled by that answer, but its verdict does not carry down: a boxed
    intermediate result ("the uncle has \\boxed{87}") is not the final answer, and the steps after it
    are judged on their own. One rule for the tree (label_trace) and the exact oracle
    (verifiers.oracle), so what the oracle scores and what the tree marks cannot drift apart.
    """
    if path is False:
        after: bool | None = False
    else:
        own = label_steps(problem, [text])[0]
        after = path if own is None else own
    if has_final_answer(text):
        return bool(is_correct(extract_answer(text), problem.gold)), after
    return after, after


def path_labels(problem: Problem, steps: Sequence[str]) -> list[bool | None]:
    """`step_label` along one solution's steps."""
    out: list[bool | None] = []
    path: bool | None = None
    for text in steps:
        label, path = step_label(problem, text, path)
        out.append(label)
    return out


def label_trace(trace: Trace, problem: Problem | None) -> Trace:
    """Set `true_label` on every node of the trace (in place; returns it). No gold answer: no labels."""
    if problem is None or not (problem.gold or "").strip():
        return trace
    trace.root.true_label = None
    path_after: dict[int, bool | None] = {trace.root.id: None}
    for node in trace.nodes[1:]:  # parents come before their children, so theirs is set
        label, path_after[node.id] = step_label(problem, node.text, path_after[node.parent])
        # a finished node keeps the grader's verdict (the one its answer was scored with)
        if node.status in (FINISHED, SELECTED) and node.correct is not None:
            label = bool(node.correct)
        node.true_label = label
    return trace
