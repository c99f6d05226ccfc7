"""search-and-learn result rows as Traces: a problem's completions merged into a prefix tree.

A row holds `problem`, `answer` (gold), `completions: list[str]`, `scores: list[list[float]]` (one
step score per step of each completion) and, optionally, `pred`, `agg_scores`, `completion_tokens`
and per budget `pred_weighted@n` / `pred_maj@n` / `pred_naive@n`. Steps split on blank lines. All
completions that share their first k steps share k nodes, except that each completion's final step
is a leaf of its own (so identical completions stay separate votes). The stored predictions go to
the root's `extra["imported"]` beside what tts-viz's own selection rules pick from the same leaves.
"""

from __future__ import annotations

from typing import Any

from ..grading import extract_answer, is_correct
from ..policy import STEP_DELIMITER
from ..strategies.select import pick
from ..trace import DONE, FINISHED, SELECTED, Trace
from ..verifiers.base import aggregate
from .rows import require

FORMAT = "search-and-learn"
COLUMNS = {"problem": str, "answer": (str, int, float), "completions": list, "scores": list}


def split_completion(text: str) -> list[str]:
    steps = [s.strip() for s in (text or "").split(STEP_DELIMITER) if s.strip()]
    return steps or [""]


def sal_trace(row: dict[str, Any], where: str = "row") -> Trace:
    require(row, COLUMNS, where, FORMAT)
    completions, scores = row["completions"], row["scores"]
    if len(scores) != len(completions):
        raise ValueError(f"{where}: {len(completions)} completions but {len(scores)} score lists")
    gold = str(row["answer"])
    trace = Trace(question=row["problem"], strategy="best-of-n", gold=gold, verifier="imported scores",
                  policy=str(row.get("model") or "imported"), status=DONE, rounds=1)
    index: dict[tuple[int, str], int] = {}  # (parent, step text) -> node id, for shared prefixes
    mismatch = 0.0
    leaves = []
    for i, (text, sc) in enumerate(zip(completions, scores)):
        if not isinstance(text, str) or not isinstance(sc, list):
            raise ValueError(f"{where}: completion {i} is not text with a list of step scores")
        steps = split_completion(text)
        parent = 0
        for k, step in enumerate(steps):
            score = float(sc[k]) if k < len(sc) and isinstance(sc[k], (int, float)) else None
            last = k == len(steps) - 1
            key = (parent, step)
            if not last and key in index:
                node = trace.nodes[index[key]]
                if score is not None and node.step_score is not None:
                    mismatch = max(mismatch, abs(score - node.step_score))
            else:
                node = trace.add_node(parent, step, step_score=score, chain=i)
                if not last:
                    index[key] = node.id
            parent = node.id
        leaf = trace.nodes[parent]
        leaf.status, leaf.finish_reason = FINISHED, "imported"
        leaf.answer = extract_answer(text)
        leaf.correct = is_correct(leaf.answer, gold)
        leaf.extra["completion"] = i
        if isinstance(row.get("completion_tokens"), list) and i < len(row["completion_tokens"]):
            leaf.tokens = max(0, int(row["completion_tokens"][i] or 0))
        leaves.append(leaf)
    for node in trace.nodes[1:]:
        node.agg_score = aggregate([a.step_score for a in trace.path(node.id)], "last")
    ours = {m: (pick(leaves, m)[0].answer if leaves else None) for m in ("majority", "best", "weighted")}
    if leaves:
        chosen, why = pick(leaves, "weighted")
        chosen.status, chosen.reason = SELECTED, why
        trace.final_answer, trace.correct = chosen.answer, is_correct(chosen.answer, gold)
    stored = {k: v for k, v in row.items() if k == "pred" or k.startswith(("pred_weighted@", "pred_maj@", "pred_naive@"))}
    trace.root.extra["imported"] = {"format": FORMAT, "completions": len(completions), "stored": stored,
                                    "ours": ours, "shared_step_score_mismatch": mismatch}
    return trace
