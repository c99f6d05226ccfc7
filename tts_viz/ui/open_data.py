"""The "Open data" tab: a search-and-learn, ProcessBench or PRM800K file opened as trees, and the
same tree re-scored by another verifier beside it.

The file is one the user uploads (JSONL, JSON or Parquet; rows read lazily, only up to the one
asked for), so a hosted app opens nothing of its own disk here. The functions above the tab are
plain (trace in, trace or HTML out) and tested without a browser.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

from ..imports.command import READERS, guess_format
from ..imports.rows import iter_rows
from ..problems import Problem
from ..rescore import rescore_trace
from ..trace import FINISHED, SELECTED, Trace
from ..verifiers import NEEDS_POLICY
from ..viz.figures import esc, verifier_words
from .messages import error_html

SUFFIXES = (".jsonl", ".json", ".parquet")
MAX_ROW = 1_000_000
# what a re-scored tree picks with: the rule its strategy answers by
SELECTION = {"best-of-n": "best", "weighted-best-of-n": "weighted", "beam": "weighted", "dvts": "weighted",
             "majority": "majority"}


class OpenDataError(ValueError):
    """A file or row that cannot be opened; the message is for the user."""


def open_row(path: str | None, index: Any, fmt: str | None = None) -> Trace:
    """Row `index` of the file as a Trace (the format guessed from its columns unless given)."""
    if not path:
        raise OpenDataError("Upload a .jsonl, .json or .parquet file first.")
    name = Path(path).name
    if Path(path).suffix.lower() not in SUFFIXES:
        raise OpenDataError(f"{name}: open a .jsonl, .json or .parquet file.")  # escaped where shown
    try:
        i = int(index)
    except (TypeError, ValueError):
        raise OpenDataError(f"Row must be a whole number, got {index!r}.") from None
    if isinstance(index, float) and not math.isfinite(index) or not 0 <= i <= MAX_ROW:
        raise OpenDataError(f"Row must be between 0 and {MAX_ROW:,}, got {index!r}.")
    try:
        row = next(itertools.islice(iter_rows(path), i, i + 1), None)
    except (OSError, ValueError) as e:
        raise OpenDataError(f"{name}: {e}") from None
    if row is None:
        raise OpenDataError(f"{name} has fewer than {i + 1} rows.")
    try:
        fmt = fmt or guess_format(row)
        return READERS[fmt](row, where=f"{name} row {i}")
    except (KeyError, TypeError, ValueError) as e:
        raise OpenDataError(str(e).replace("Pass --format.", "")) from None


def rescored(trace: Trace, verifier_name: str, pool=None, policy_backend=None, seed: int = 0) -> Trace:
    """The same tree scored by another verifier, its choice made again by the strategy's rule."""
    from ..verifiers import make_verifier

    problem = None
    if trace.gold:
        problem = Problem(id="imported", question=trace.question, gold=trace.gold, source="custom")
    verifier = make_verifier(verifier_name, pool, policy_backend, problem=problem, seed=seed)
    return rescore_trace(trace, verifier, selection=SELECTION.get(trace.strategy, "best"), verifier_name=verifier_name)


def comparison_html(a: Trace | None, b: Trace | None) -> str:
    """One paragraph: what each scoring chose and how far apart their step scores are."""
    if a is None or b is None:
        return ""

    def choice(t: Trace) -> str:
        sel = t.selected()
        if sel is None:
            return "no choice"
        mark = "" if sel.correct is None else (" ✓" if sel.correct else " ✗")
        return f"<b>{esc(sel.answer if sel.answer is not None else '?')}{mark}</b> (node {sel.id})"

    pairs = [(x.step_score, y.step_score) for x, y in zip(a.nodes[1:], b.nodes[1:])
             if x.step_score is not None and y.step_score is not None]
    gap = sum(abs(x - y) for x, y in pairs) / len(pairs) if pairs else None
    leaves = [(x, y) for x, y in zip(a.nodes, b.nodes) if x.status in (FINISHED, SELECTED)]
    rank_a = sorted(range(len(leaves)), key=lambda k: -(leaves[k][0].agg_score or 0))
    rank_b = sorted(range(len(leaves)), key=lambda k: -(leaves[k][1].agg_score or 0))
    same_top = bool(leaves) and rank_a[0] == rank_b[0]
    same = a.selected() is not None and b.selected() is not None and a.selected().id == b.selected().id
    gap_words = f"mean |difference| of the step scores {gap:.3f} over {len(pairs)} steps" if gap is not None else \
        "no step scored by both"
    return (f"<div class='tts-open-compare'>{esc(verifier_words(a.verifier))} chose {choice(a)}; "
            f"{esc(verifier_words(b.verifier))} chose {choice(b)}: "
            f"{'the same solution' if same else 'a different solution'}"
            f"{'' if same or not leaves else (' (the top-scored completion is the same)' if same_top else '')}; "
            f"{gap_words}.</div>")


def describe(trace: Trace) -> str:
    info = trace.root.extra.get("imported", {}) if isinstance(trace.root.extra, dict) else {}
    stored = info.get("stored") or {}
    bits = [f"{esc(info.get('format', 'imported'))}: {len(trace.nodes) - 1} nodes"]
    if info.get("completions") is not None:
        bits.append(f"{info['completions']} completions merged into a prefix tree")
    if stored:
        bits.append("stored predictions: " + ", ".join(f"{esc(k)} = {esc(v)}" for k, v in list(stored.items())[:6]))
    return "<div>" + " · ".join(bits) + "</div>"


# ------------------------------------------------------------------------------------------------
def open_data_tab(pool, verifier_choices: list[str], policy_name: str) -> None:
    """Build the tab inside the caller's gr.Tabs (the app's thin shell)."""
    import gradio as gr

    from ..viz import summary_html, tree_figure

    def on_open(file, index):
        path = file if isinstance(file, str) else getattr(file, "name", None)
        try:
            t = open_row(path, index)
        except OpenDataError as e:
            return gr.update(), "", error_html(str(e)), None, gr.update(), ""
        return tree_figure(t), summary_html(t), describe(t), t, gr.update(value=None), ""

    def on_rescore(trace, name):
        if trace is None:
            return gr.update(), "", error_html("Open a row first.")
        backend = None
        try:
            if name.removeprefix("arith+") in NEEDS_POLICY:
                from ..backends import policy_backend

                backend = policy_backend(policy_name, pool)
            b = rescored(trace, name, pool, backend)
        except Exception as e:  # noqa: BLE001 - a missing model, an oracle without gold: say so
            return gr.update(), "", error_html(str(e))
        return tree_figure(b), summary_html(b), comparison_html(trace, b)

    gr.Markdown("Open a **search-and-learn** result file, **ProcessBench** or **PRM800K** rows (JSONL, JSON or "
                "Parquet): a row becomes a tree (search-and-learn's completions merged where they share steps), "
                "with the scores it carries; **re-score** it with any verifier here and compare the two side by side.")
    with gr.Row():
        file = gr.File(label="Data file", file_types=list(SUFFIXES), type="filepath", elem_id="tts-open-file")
        with gr.Column():
            row = gr.Number(0, precision=0, label="Row", elem_id="tts-open-row")
            open_btn = gr.Button("Open row", variant="primary", elem_id="tts-open-btn")
            rescore_with = gr.Dropdown(verifier_choices, value=verifier_choices[0], label="Re-score with",
                                       elem_id="tts-open-verifier")
            rescore_btn = gr.Button("Re-score", elem_id="tts-open-rescore")
    msg = gr.HTML("", elem_id="tts-open-msg")
    state = gr.State(None)
    with gr.Row():
        with gr.Column():
            tree_a = gr.Plot(label="As stored", elem_id="tts-open-a")
            sum_a = gr.HTML("")
        with gr.Column():
            tree_b = gr.Plot(label="Re-scored", elem_id="tts-open-b")
            sum_b = gr.HTML("")
    open_btn.click(on_open, [file, row], [tree_a, sum_a, msg, state, tree_b, sum_b])
    rescore_btn.click(on_rescore, [state, rescore_with], [tree_b, sum_b, msg])
