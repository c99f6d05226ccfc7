"""A Trace (ours or imported) in the formats other tools read: llm-reasoners' TreeLog and a flat
search-and-learn-style row.

TreeLog: {"logs": [{"nodes": {id: {id, data, selected_edge}}, "edges": {id: {source, target, data}}}]},
one snapshot (the finished tree); node data carries the step text, edge data the step and path scores
(`reward`, `Q`), and `selected_edge` marks the chosen path. The flat row has search-and-learn's
columns: `problem`, `answer`, `completions` (each finished leaf's path joined with blank lines),
`scores` (their step scores), `agg_scores` (last), `pred` and `completion_tokens`.
"""

from __future__ import annotations

from typing import Any

from ..policy import STEP_DELIMITER
from ..trace import FINISHED, SELECTED, Trace


def to_treelog(trace: Trace) -> dict[str, Any]:
    chosen = trace.selected_path_ids()
    kids: dict[int, list[int]] = {}
    for n in trace.nodes[1:]:
        kids.setdefault(n.parent, []).append(n.id)
    nodes, edges = {}, {}
    for n in trace.nodes:
        sel = next((k for k in kids.get(n.id, []) if k in chosen), None)
        nodes[str(n.id)] = {"id": n.id, "data": {"text": n.text if n.parent is not None else trace.question,
                                                 "status": n.status, "answer": n.answer, "correct": n.correct},
                            "selected_edge": sel}
        if n.parent is not None:
            edges[str(n.id)] = {"source": n.parent, "target": n.id,
                                "data": {"reward": n.step_score, "Q": n.agg_score, "action": n.text}}
    return {"logs": [{"nodes": nodes, "edges": edges}]}


def to_sal_row(trace: Trace) -> dict[str, Any]:
    leaves = [n for n in trace.nodes if n.status in (FINISHED, SELECTED)]
    paths = [trace.path(n.id) for n in leaves]
    return {
        "problem": trace.question, "answer": trace.gold,
        "completions": [STEP_DELIMITER.join(p.text for p in path) for path in paths],
        "scores": [[p.step_score for p in path] for path in paths],
        "agg_scores": [n.agg_score for n in leaves],
        "pred": f"\\boxed{{{trace.final_answer}}}" if trace.final_answer is not None else None,
        "completion_tokens": [sum(p.tokens for p in path) for path in paths],
    }
