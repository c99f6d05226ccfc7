"""PRM800K rows as Traces: the rated solution path, with the alternatives raters saw at each step.

A row: `question{problem, ground_truth_answer, ...}` and `label{steps: [{completions: [{text, rating,
flagged}], human_completion, chosen_completion}], finish_reason}`. Each step's chosen completion (or the
human-written one) continues the path; the other completions of that step hang beside it, pruned.
Ratings become true labels: 1 -> right, -1 -> wrong, 0 (neutral) -> no label. A path node after a
wrong one is wrong too (the labels cover the solution so far, as elsewhere in tts-viz).
"""

from __future__ import annotations

from typing import Any

from ..grading import extract_answer, is_correct
from ..trace import DONE, PRUNED, SELECTED, Trace
from .rows import require

FORMAT = "prm800k"
COLUMNS = {"question": dict, "label": dict}


def _label(rating: Any) -> bool | None:
    return True if rating == 1 else False if rating == -1 else None


def prm800k_trace(row: dict[str, Any], where: str = "row") -> Trace:
    require(row, COLUMNS, where, FORMAT)
    q, lab = row["question"], row["label"]
    if not isinstance(q.get("problem"), str) or not isinstance(lab.get("steps"), list):
        raise ValueError(f"{where}: a PRM800K row needs question.problem (text) and label.steps (a list)")
    gold = q.get("ground_truth_answer")
    trace = Trace(question=q["problem"], strategy="best-of-n", gold=str(gold) if gold is not None else None,
                  verifier="none", status=DONE, rounds=len(lab["steps"]), policy="prm800k")
    parent, wrong_above = 0, False
    for k, step in enumerate(lab["steps"]):
        comps = [c for c in (step.get("completions") or []) if isinstance(c, dict) and isinstance(c.get("text"), str)]
        chosen = step.get("chosen_completion")
        human = step.get("human_completion")
        if isinstance(chosen, int) and 0 <= chosen < len(comps):
            main = comps[chosen]
        elif isinstance(human, dict) and isinstance(human.get("text"), str):
            main = {"text": human["text"], "rating": human.get("rating", 1)}
        elif comps:
            main = comps[0]
        else:
            break
        for c in comps:
            if c is not main:
                alt = trace.add_node(parent, c["text"], status=PRUNED, round=k, reason="an alternative the raters saw")
                alt.true_label = False if wrong_above else _label(c.get("rating"))
        node = trace.add_node(parent, main["text"], round=k, reason="the chosen completion at this step")
        node.true_label = False if wrong_above else _label(main.get("rating"))
        wrong_above = wrong_above or node.true_label is False
        parent = node.id
    if parent:
        leaf = trace.nodes[parent]
        leaf.status = SELECTED
        leaf.answer = extract_answer(leaf.text)
        leaf.correct = is_correct(leaf.answer, trace.gold) if trace.gold is not None else None
        trace.final_answer, trace.correct = leaf.answer, leaf.correct
    trace.root.extra["imported"] = {"format": FORMAT, "finish_reason": lab.get("finish_reason")}
    return trace
