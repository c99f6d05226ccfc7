"""The PRM inspector tab: score one solution's steps with several verifiers side by side."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from ..policy import has_final_answer, split_steps
from ..verifiers import NEEDS_POLICY, VERIFIERS, base_verifier, default_verifier, make_verifier
from ..verifiers.base import score_thresholds
from ..viz import prm_report_html, scores_table_html
from .messages import error_html, status_html
from .notes import VIEW_NOTES

PRM_REPORT = Path(__file__).resolve().parents[2] / "assets" / "prm-eval-report.json"


def load_prm_report() -> dict | None:
    """The shipped prm-eval report (assets/), or None: a broken file must not break the app."""
    try:
        return json.loads(PRM_REPORT.read_text())
    except (OSError, ValueError):
        return None


def prm_from_node(trace, nid):
    """The inspected node's question and path, for scoring here."""
    if trace is None or nid is None:
        return gr.update(), gr.update(), error_html("No node: run a search (or open a trace) and click a node first.")
    try:
        steps = trace.steps(int(nid))
    except (IndexError, ValueError, TypeError):
        return gr.update(), gr.update(), error_html(f"Node {nid} is not in the current tree.")
    return trace.question, "\n\n".join(steps), status_html(f"Took the path of node {int(nid)} ({len(steps)} steps).")


def own_thresholds(verifier, steps) -> list[float] | None:
    """A verifier's own threshold for each step (its answer threshold where the step states the final
    answer), when it has ones other than 0.5 (the trained PRM's card); else None."""
    step_cut, answer_cut = score_thresholds(verifier)
    if step_cut == answer_cut == 0.5:
        return None
    return [answer_cut if has_final_answer(s) else step_cut for s in steps]


def prm_score_ui(pool, default_judge: str, question, solution, verifiers, judge, threshold, use_own=True,
                 progress=gr.Progress()):
    steps = split_steps(solution or "")
    if not steps:
        return scores_table_html([], {})
    scores: dict[str, list[float] | str] = {}
    own: dict[str, list[float]] = {}
    for name in verifiers or []:
        progress(0.0, desc=f"scoring with {name}")
        try:
            if base_verifier(name) in NEEDS_POLICY:  # self-judge, and the verifiers that read the policy's own states
                from ..backends.transformers_backend import TransformersBackend

                model = (judge or default_judge).strip()
                backend = TransformersBackend.from_loaded(pool.get(model))
                with pool.run_lock(model):
                    v = make_verifier(name, pool, backend)
                    column = f"{name} ({model})"
                    scores[column] = v.score(question or "", [steps])[0]
            else:
                v = make_verifier(name, pool, None)
                column = name
                scores[column] = v.score(question or "", [steps])[0]
            if use_own and (cuts := own_thresholds(v, steps)) is not None:
                own[column] = cuts
        except Exception as e:  # noqa: BLE001 - a verifier that cannot run says why, others still show
            scores[name] = f"unavailable: {e}"
    return scores_table_html(steps, scores, threshold=float(threshold), own=own)


def prm_tab(pool, policies: list, default_judge: str, trace_state, node_num) -> None:
    """The tab's layout and events (call inside gr.Tabs); trace_state / node_num are the Search tab's."""
    with gr.Tab("PRM inspector", id="prm"):
        gr.Markdown(VIEW_NOTES["prm"])
        with gr.Row():
            with gr.Column():
                question = gr.Textbox(label="Question", lines=3)
                solution = gr.Textbox(label="Solution (steps separated by a blank line)", lines=10)
                node_btn = gr.Button("Use the inspected node's path", size="sm")
            with gr.Column():
                first = [v for v in dict.fromkeys(["arith", default_verifier(default_judge)]) if v in VERIFIERS]
                verifiers = gr.CheckboxGroup([k for k in VERIFIERS if k != "none"], value=first, label="Verifiers")
                judge = gr.Dropdown(policies, value=default_judge, label="Model: self-judge's judge, and the policy whose states prm / probe / confidence read",
                                    allow_custom_value=True)
                threshold = gr.Slider(0, 1, value=0.5, step=0.05, label="Mark the first step below")
                use_own = gr.Checkbox(True, label="Where a verifier has its own thresholds (prm: its card's, for "
                                                  "steps and for the final answer), mark against those instead")
                score_btn = gr.Button("Score the steps", variant="primary")
        msg = gr.HTML("")
        table = gr.HTML(scores_table_html([], {}), elem_id="tts-prm-table")
        with gr.Accordion("How good is each verifier? (prm-eval report)", open=False):
            gr.HTML(prm_report_html(load_prm_report()), elem_id="tts-prm-report")
    node_btn.click(prm_from_node, [trace_state, node_num], [question, solution, msg])

    def score(q, s, v, j, t, o, progress=gr.Progress()):
        return prm_score_ui(pool, default_judge, q, s, v, j, t, bool(o), progress)

    score_btn.click(score, [question, solution, verifiers, judge, threshold, use_own], table, concurrency_limit=1)
