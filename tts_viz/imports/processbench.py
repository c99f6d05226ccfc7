"""ProcessBench rows as Traces with human step labels, and ProcessBench's metric.

A row: `problem`, `steps: list[str]`, `label` (index of the earliest wrong step, -1 if none),
`final_answer_correct`. Each row is one chain of step nodes; steps before the label are right, the
labelled step and all after it wrong (ProcessBench's convention), so the inspector shows the human
label beside any verifier's score. The metric: the accuracy of the predicted earliest error on the
erroneous samples and on the correct ones (predicted: the first step scored below the threshold,
-1 if none), and their harmonic mean F1.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..trace import DONE, SELECTED, Trace
from .rows import require

FORMAT = "processbench"
COLUMNS = {"problem": str, "steps": list, "label": int}


def processbench_trace(row: dict[str, Any], where: str = "row") -> Trace:
    require(row, COLUMNS, where, FORMAT)
    label = int(row["label"])
    steps = row["steps"]
    if not all(isinstance(s, str) for s in steps) or not steps:
        raise ValueError(f"{where}: 'steps' must be a non-empty list of text")
    if not -1 <= label < len(steps):
        raise ValueError(f"{where}: label {label} is outside -1..{len(steps) - 1}")
    trace = Trace(question=row["problem"], strategy="best-of-n", verifier="none", status=DONE, rounds=1,
                  policy=str(row.get("generator") or "imported"))
    parent = 0
    for k, text in enumerate(steps):
        node = trace.add_node(parent, text, true_label=(label == -1 or k < label))
        parent = node.id
    leaf = trace.nodes[parent]
    leaf.status, leaf.finish_reason = SELECTED, "imported"
    correct = row.get("final_answer_correct")
    leaf.correct = trace.correct = bool(correct) if isinstance(correct, bool) else None
    trace.root.extra["imported"] = {"format": FORMAT, "id": row.get("id"), "label": label}
    return trace


def predicted_error(scores: Sequence[float], threshold: float = 0.5) -> int:
    return next((k for k, s in enumerate(scores) if s < threshold), -1)


def processbench_metric(labels: Sequence[int], step_scores: Sequence[Sequence[float]],
                        threshold: float = 0.5) -> dict[str, Any]:
    """{acc_erroneous, acc_correct, f1, erroneous, correct} as ProcessBench reports them."""
    err = [(lab, predicted_error(s, threshold)) for lab, s in zip(labels, step_scores) if lab != -1]
    ok = [predicted_error(s, threshold) for lab, s in zip(labels, step_scores) if lab == -1]
    acc_err = sum(p == lab for lab, p in err) / len(err) if err else None
    acc_ok = sum(p == -1 for p in ok) / len(ok) if ok else None
    f1 = (2 * acc_err * acc_ok / (acc_err + acc_ok)) if acc_err is not None and acc_ok is not None \
        and acc_err + acc_ok > 0 else (0.0 if acc_err is not None and acc_ok is not None else None)
    return {"acc_erroneous": acc_err, "acc_correct": acc_ok, "f1": f1, "erroneous": len(err), "correct": len(ok)}
