"""The Compare tab: two strategies (or one at two verifier qualities) on the Search tab's problem and
settings, run at once and streamed side by side, with a line saying which side won."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..strategies import STRATEGIES
from ..verifiers import is_oracle
from ..viz import compare_html, summary_html, tree_figure
from .messages import error_html, status_html
from .notes import VIEW_NOTES, strategy_note
from .runs import ERRORS, end_cancel, make_config, start_cancel, stream_together


def compare_ui(question, gold, policy, verifier, strat_a, strat_b, n, width, lookahead, rev_len, temperature,
               seed, aggregation, max_step_tokens, max_rounds, pf_temp, ess, explore, mcts_eval, conf_keep, vote_conf, quality_a, quality_b,
               problem, request: gr.Request, progress=gr.Progress()):
    """Two strategies (or one strategy at two oracle qualities), same problem / budget / seed, run at
    once and streamed side by side."""
    out = [gr.update(), gr.update(), gr.update(), gr.update(), gr.update(), None, None]  # figA sumA figB sumB status stA stB
    try:
        cfgs = [make_config(question, gold, policy, verifier, s, n, width, lookahead, rev_len, temperature, seed,
                            aggregation, max_step_tokens, max_rounds, q, problem, (pf_temp, ess, explore, mcts_eval, conf_keep, vote_conf))
                for s, q in ((strat_a, quality_a), (strat_b, quality_b))]
    except ERRORS as e:
        out[4] = error_html(str(e))
        yield tuple(out)
        return
    key, cancel = start_cancel(request)
    labels = [f"{cfg.strategy}" + (f" ({cfg.verifier})" if is_oracle(cfg.verifier) else "") + ": " for cfg in cfgs]
    try:
        # both sides at once: their trees grow together (taking turns on the model, each decoding alone)
        for side, tr in stream_together(cfgs, cancel, progress, labels):
            if side is None:  # a status line: waiting for the model, loading it
                out[4] = status_html(tr)
            else:
                out[2 * side], out[2 * side + 1], out[5 + side] = tree_figure(tr), summary_html(tr), tr
                out[4] = status_html(" · ".join(
                    f"{lab}round {t.rounds} · {t.status}" for lab, t in zip(labels, out[5:7]) if t is not None))
            yield tuple(out)
        out[4] = status_html("stopped" if cancel.is_set() else "done") + compare_html(out[5], out[6])
        yield tuple(out)
    except ERRORS as e:
        out[4] = error_html(str(e))
        yield tuple(out)
    finally:
        end_cancel(key, cancel)


@dataclass
class CompareTab:
    """The components the app wires to the Search tab's (the inspector's click, the knobs, the verifier)."""
    strat_a: Any
    strat_b: Any
    quality_row: Any
    quality_a: Any
    quality_b: Any
    run: Any
    stop: Any
    status: Any
    tree_a: Any
    sum_a: Any
    tree_b: Any
    sum_b: Any
    inspector: Any


def compare_tab() -> CompareTab:
    """The tab's layout (call inside gr.Tabs); wire_compare connects it once the Search tab exists."""
    with gr.Tab("Compare", id="compare"):
        gr.Markdown(VIEW_NOTES["compare"] + "\n\nUses the problem and settings of the Search tab. Both sides grow "
                    "together, taking turns on the model; each is the very run the Search tab gives.")
        with gr.Row():
            strat_a = gr.Dropdown(list(STRATEGIES), value="beam", label="Strategy A")
            strat_b = gr.Dropdown(list(STRATEGIES), value="best-of-n", label="Strategy B")
        with gr.Row(visible=False) as quality_row:
            quality_a = gr.Slider(0.5, 1.0, value=1.0, step=0.05, label="A: verifier quality (AUROC)",
                                  elem_id="tts-quality-a")
            quality_b = gr.Slider(0.5, 1.0, value=0.6, step=0.05, label="B: verifier quality (AUROC)",
                                  elem_id="tts-quality-b")
        with gr.Row():
            run = gr.Button("Compare", variant="primary")
            stop = gr.Button("Stop", variant="stop")
        status = gr.HTML("", elem_id="tts-cmp-status")
        with gr.Row():
            with gr.Column():
                note_a = gr.Markdown(strategy_note("beam"))
                tree_a = gr.Plot(label="A", elem_id="tts-tree-a")
                sum_a = gr.HTML("")
            with gr.Column():
                note_b = gr.Markdown(strategy_note("best-of-n"))
                tree_b = gr.Plot(label="B", elem_id="tts-tree-b")
                sum_b = gr.HTML("")
        inspector = gr.HTML("", elem_id="tts-cmp-inspector")
    strat_a.change(strategy_note, strat_a, note_a)
    strat_b.change(strategy_note, strat_b, note_b)
    return CompareTab(strat_a, strat_b, quality_row, quality_a, quality_b, run, stop, status, tree_a, sum_a, tree_b,
                      sum_b, inspector)


def wire_compare(tab: CompareTab, problem_inputs: list, verifier, settings: list, problem_state, trace_a, trace_b,
                 stop_fn, run_decorator=lambda f: f) -> None:
    """problem_inputs: question, gold, policy (the Search tab's); settings: its budget and Advanced values."""
    question, gold, policy = problem_inputs
    verifier.change(lambda v: gr.update(visible=v == "oracle"), verifier, tab.quality_row)
    tab.run.click(
        run_decorator(compare_ui), [question, gold, policy, verifier, tab.strat_a, tab.strat_b, *settings,
                                    tab.quality_a, tab.quality_b, problem_state],
        [tab.tree_a, tab.sum_a, tab.tree_b, tab.sum_b, tab.status, trace_a, trace_b],
        concurrency_limit=2, concurrency_id="search",
    )
    tab.stop.click(stop_fn, None, tab.status, queue=False)
