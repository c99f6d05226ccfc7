"""The Scaling tab: the shipped study's curves (assets/scaling/*.jsonl), read without a model."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ..models import DEFAULT_POLICY
from ..verifiers import DEFAULT_VERIFIER
from ..viz.figures import verifier_words
from ..viz.scaling import (QUALITY_RESULTS, SCALING_RESULTS, load_results_file, problems_per_verifier, quality_figure,
                           quality_markdown, rows_for_verifier, scaling_view, verifiers_in)
from ..viz.scaling import study_verifier as _study_verifier
from .notes import VIEW_NOTES

_cache: dict[tuple, tuple] = {}


def _stamp(path: Path):
    try:
        st = path.stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return None


def scaling_rows() -> list:
    """The shipped sweep results and the verifier-quality study, read once per file version."""
    key = ("rows", _stamp(SCALING_RESULTS), _stamp(QUALITY_RESULTS))
    if key not in _cache:
        _cache.clear()
        _cache[key] = load_results_file(SCALING_RESULTS) + load_results_file(QUALITY_RESULTS)
    return _cache[key]


def study_policy(app_policy: str = DEFAULT_POLICY) -> str:
    """The policy whose search the shipped study shows: the app's policy if it was swept, else the default."""
    return app_policy if any(r.get("policy") == app_policy for r in scaling_rows()) else DEFAULT_POLICY


def scaling_verifiers(app_policy: str = DEFAULT_POLICY) -> list[tuple[str, str]]:
    """(label, verifier) choices: the real verifier(s) first, then the oracle levels; each label says
    how many problems ran under it (a study still in installments shows as such)."""
    rows, policy = scaling_rows(), study_policy(app_policy)
    found, counts = verifiers_in(rows, policy), problems_per_verifier(rows, policy)
    return [(f"{verifier_words(v)} ({counts.get(v, 0)} problems)", v) for v in found] or [
        (DEFAULT_VERIFIER, DEFAULT_VERIFIER)]


def study_verifier(app_policy: str = DEFAULT_POLICY) -> str:
    """The verifier the tab opens on: the one with the most problems run (the default verifier on a tie)."""
    return _study_verifier(scaling_rows(), study_policy(app_policy), DEFAULT_VERIFIER) or DEFAULT_VERIFIER


def scaling_views(split: str, binning_kind: str, verifier: str = DEFAULT_VERIFIER, app_policy: str = DEFAULT_POLICY):
    """(budget figure, FLOPs figure, Markdown, verifier-quality figure, its Markdown).

    Cached per (split, binning, verifier, file stamps): reading the files and refitting the ablation
    tables takes seconds on a CPU, and a user flips these radios back and forth; a changed file is
    read afresh."""
    rows = scaling_rows()
    key = (split, binning_kind, verifier, app_policy, _stamp(SCALING_RESULTS), _stamp(QUALITY_RESULTS))
    if key not in _cache:
        if len(_cache) >= 12:
            _cache.clear()
            _cache[("rows", _stamp(SCALING_RESULTS), _stamp(QUALITY_RESULTS))] = rows
        policy = study_policy(app_policy)
        fig_n, fig_f, md = scaling_view(rows_for_verifier(rows, verifier, policy), split, binning_kind, policy)
        qmd = quality_markdown(rows, split, policy)
        _cache[key] = (fig_n, fig_f, md, quality_figure(rows, split, policy),
                       qmd or "_No verifier-quality sweep shipped yet._")
    return _cache[key]


def scaling_tab(app_policy: str) -> None:
    """The tab's layout and events (call inside gr.Tabs)."""
    with gr.Tab("Scaling", id="scaling"):
        gr.Markdown(VIEW_NOTES["scaling"])
        with gr.Row():
            split = gr.Radio([("held-out", "test"), ("validation", "val")], value="test", label="Split")
            bins = gr.Radio([("absolute (Liu)", "absolute"), ("quantile (Snell)", "quantile")],
                            value="absolute", label="Difficulty bins")
            choices = scaling_verifiers(app_policy)
            default = study_verifier(app_policy)
            default = default if default in [v for _, v in choices] else choices[0][1]
            verifier = gr.Radio(choices, value=default, elem_id="tts-scaling-verifier",
                                label="Verifier (the oracle levels know the answer)")
        fig_n, fig_f, md, fig_q, md_q = scaling_views("test", "absolute", default, app_policy)
        plot = gr.Plot(fig_n, label="Accuracy vs budget", elem_id="tts-scaling")
        table = gr.Markdown(md, elem_id="tts-scaling-table")
        flops = gr.Plot(fig_f, label="FLOPs-matched", elem_id="tts-flops")
        gr.Markdown(VIEW_NOTES["quality"])
        quality = gr.Plot(fig_q, label="Accuracy vs verifier quality", elem_id="tts-quality-plot")
        quality_md = gr.Markdown(md_q, elem_id="tts-quality-table")
    for ctl in (split, bins, verifier):
        ctl.change(lambda s, b, v: scaling_views(s, b, v, app_policy), [split, bins, verifier],
                   [plot, flops, table, quality, quality_md])
