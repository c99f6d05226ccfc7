"""tts-viz: an interactive explorer for test-time compute scaling (Gradio 6).

    python app.py            # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT respected)

Models: the default policy is loaded in a BACKGROUND THREAD at start (TTS_VIZ_PRELOAD=0 turns it
off: then it loads lazily on the first Run); the page is served at once either way, and a Run
issued before the load finishes simply waits for it (ModelPool loads a model once, under a lock).

Environment:
    TTS_VIZ_TEST_POLICY=smollm2-135m   default policy for tests (also: verifier arith, tiny budget)
    TTS_VIZ_PRELOAD=0                  do not load the default policy at start

This file is the shell: the tabs live in tts_viz/ui/ (search_tab, compare_tab, scaling_tab, prm_tab,
open_data), the run machinery in tts_viz/ui/runs.py, search logic in tts_viz.runner, views in tts_viz.viz.
"""

from __future__ import annotations

import os
import threading

import gradio as gr

from tts_viz.models import EMBEDDED, install_hint, is_installed
from tts_viz.problems import EXAMPLES
from tts_viz.ui.clickjs import CLICK_JS
from tts_viz.ui.compare_tab import compare_tab, wire_compare
from tts_viz.ui.notes import STRATEGY_NOTES
from tts_viz.ui.open_data import open_data_tab
from tts_viz.ui.prm_tab import prm_tab
from tts_viz.ui.runs import POLICY, method_knobs, pool
from tts_viz.ui.scaling_tab import scaling_tab
from tts_viz.ui.search_tab import click_ui, search_tab, stop_ui
from tts_viz.verifiers import VERIFIERS

# the app's API as the tests (and scripts calling the Space) use it
from tts_viz.ui.runs import checked_policy, make_config  # noqa: F401,E402
from tts_viz.ui.search_tab import check_model_server, load_problem  # noqa: F401,E402

# ----- Spaces: @spaces.GPU when the package is importable, a no-op otherwise -------------------
try:  # pragma: no cover - depends on the hosting
    import spaces  # type: ignore

    gpu = spaces.GPU
except Exception:  # noqa: BLE001 - any import problem means "not on Spaces"

    def gpu(fn=None, **_kw):
        return fn if fn is not None else (lambda f: f)


# ----- layout -------------------------------------------------------------------------------
CSS = """
#tts-tree { min-height: 380px; overflow-x: auto; }
#tts-tree .js-plotly-plot { min-width: fit-content; }
.tts-inspector table, .tts-summary table { width: 100%; }
"""


def build_app() -> gr.Blocks:
    # only models that can run here are offered; the others are named with their install command
    policies = [m for m in EMBEDDED if is_installed(m)]
    if POLICY not in policies:
        policies.insert(0, POLICY)
    missing = [m for m in EMBEDDED if m not in policies]
    policy_info = ("Not installed: " + "; ".join(f"{m} ({install_hint(EMBEDDED[m])})" for m in missing)) if missing else None
    with gr.Blocks(title="tts-viz: test-time compute explorer") as demo:
        trace_state = gr.State(None)  # per browser session: this session's current Trace
        trace_a = gr.State(None)
        trace_b = gr.State(None)
        problem_state = gr.State(EXAMPLES[0].to_dict())  # the loaded problem (its known intermediate values)
        gr.Markdown(
            "# tts-viz · test-time compute, visible\n"
            "A small policy writes a solution step by step, a verifier scores every step, and a search "
            "strategy spends extra inference compute. Pick a problem and a strategy, press **Run**, and "
            "watch the search tree grow. Everything runs locally on the embedded models."
        )
        with gr.Tabs():
            search = search_tab(policies, policy_info, trace_state, problem_state, gpu)
            prm_tab(pool, policies, POLICY, trace_state, search.node_num)
            scaling_tab(POLICY)

            cmp = compare_tab()

            with gr.Tab("Open data", id="open-data"):
                open_data_tab(pool, [k for k in VERIFIERS if k != "none"] + ["oracle@0.9", "oracle@0.75", "oracle@0.6"],
                              POLICY)

            with gr.Tab("How it works", id="notes"):
                gr.Markdown("\n\n".join(STRATEGY_NOTES[k] for k in STRATEGY_NOTES))

        # ----- across tabs -----
        for ctl in (search.strategy, cmp.strat_a, cmp.strat_b):
            ctl.change(method_knobs, [search.strategy, cmp.strat_a, cmp.strat_b], search.knobs)
        search.click_btn.click(click_ui, [search.click_box, trace_state, trace_a, trace_b],
                               [search.inspector, search.node_num, cmp.inspector], queue=False)
        wire_compare(cmp, [search.question, search.gold, search.policy], search.verifier, search.settings, problem_state,
                     trace_a, trace_b, stop_ui, gpu)
    return demo


def _preload() -> None:
    try:
        pool.get(POLICY)
    except Exception as e:  # noqa: BLE001 - the first Run will show the error to the user
        print(f"[tts-viz] background load of {POLICY} failed: {e}", flush=True)


demo = build_app()
demo.queue(default_concurrency_limit=4)

if __name__ == "__main__":
    if os.environ.get("TTS_VIZ_PRELOAD", "1") != "0":
        threading.Thread(target=_preload, name="tts-viz-preload", daemon=True).start()
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        js=CLICK_JS,
        css=CSS,
        show_error=False,
    )
