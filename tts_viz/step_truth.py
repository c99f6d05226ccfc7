"""Step truth on the tree: every node's true label, where the problem's steps can be labelled.

On generated problems each stated result is checked against the problem's known intermediate
values (problems.label_steps); on GSM8K / MATH-500 rows only the arithmetic is checked; a finished
solution is labelled by its final answer against the gold. The label covers the path so far (as
a PRM's step score does): after the first wrong step every node below it is wrong, except a node
that states a final answer, which is labelled by that answer, as the exact oracle scores it (so an
exact oracle is never marked fooled). The views set it beside the verifier's score to show where
the verifier was fooled (viz.figures, viz.panels).
"""

from __future__ import annotations

from .grading import extract_answer, is_correct
from .policy import has_final_answer
from .problems import Problem, label_steps
from .trace import FINISHED, SELECTED, Trace


def label_trace(trace: Trace, problem: Problem | None) -> Trace:
    """Set `true_label` on every node of the trace (in place; returns it). No gold answer: no labels."""
    if problem is None or not (problem.gold or "").strip():
        return trace
    trace.root.true_label = None
    for node in trace.nodes[1:]:  # parents come before their children, so theirs is set
        above = trace.nodes[node.parent].true_label
        if node.status in (FINISHED, SELECTED) and node.correct is not None:
            label: bool | None = bool(node.correct)
        elif has_final_answer(node.text):
            label = bool(is_correct(extract_answer(node.text), problem.gold))
        elif above is False:
            label = False
        else:
            own = label_steps(problem, [node.text])[0]
            label = above if own is None else own
        node.true_label = label
    return trace
