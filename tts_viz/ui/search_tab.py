"""The Search tab: pick a problem and a strategy, run, watch the tree grow, inspect a node, save or reopen
the trace. Its handlers are plain functions (the tests call them); search_tab() lays it out and wires
its own events, and returns the components the other tabs read."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from ..backends.openai_backend import list_models
from ..models import EMBEDDED, is_installed
from ..problems import EXAMPLES, generate_arith, get_problem
from ..runner import MAX_BUDGET
from ..strategies import STRATEGIES
from ..strategies.base import SearchConfig
from ..strategies.mcts import EVALUATIONS as MCTS_EVALUATIONS
from ..trace import Trace, TraceFormatError
from ..verifiers import FALLBACK_VERIFIER, READS_POLICY_STATES, VERIFIERS, base_verifier, default_verifier, trained_for
from ..viz import decision_html, inspector_html, revision_figure, summary_html, tree_figure
from ..viz.figures import esc
from .clickjs import CLICK_BTN_ID, CLICK_ID
from .data_paths import check_data_path
from .messages import error_html, status_html
from .notes import VIEW_NOTES, strategy_note, verifier_note
from .runs import ERRORS, POLICY, TEST_MODE, end_cancel, make_config, start_cancel, stop_session, stream
from .servers import check_server_url

# ----- defaults -----------------------------------------------------------------------------
VERIFIER = default_verifier(POLICY)
DEFAULTS = dict(
    strategy="beam",
    n=2 if TEST_MODE else 4,
    width=2,
    lookahead=1,
    revision_length=2,
    temperature=0.8,
    seed=0,
    aggregation="last",
    max_step_tokens=24 if TEST_MODE else 128,
    max_rounds=2 if TEST_MODE else 8,
)
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
_download_dir = Path(tempfile.mkdtemp(prefix="tts-viz-traces-"))

_err, _ok = error_html, status_html


# ----- problems -----------------------------------------------------------------------------
SOURCE_CHOICES = ["built-in example", "generated arithmetic", "generated word problem", "GSM8K (JSONL path)",
                  "MATH-500 (JSONL path)",
                  "type your own"]
EXAMPLE_CHOICES = [(f"{p.id}: {p.question[:70]}…", i) for i, p in enumerate(EXAMPLES)]


def load_problem(source, example_idx, level, index, path, math_level):
    """-> question, gold, message, problem (its dict: the oracle and the step truth read its known
    intermediate values). Never raises."""
    try:
        if source == "built-in example":
            p = EXAMPLES[int(example_idx or 0)]
        elif source == "generated arithmetic":
            p = generate_arith(int(level), int(index or 0), seed=0)
        elif source == "generated word problem":
            p = get_problem("word", int(index or 0), level=int(level), seed=0)
        elif source in ("GSM8K (JSONL path)", "MATH-500 (JSONL path)"):
            if not (path or "").strip():
                raise ValueError("Give the path of a GSM8K or MATH-500 JSONL file in one of the app's data folders "
                                 "(TTS_VIZ_DATA_DIRS).")
            kind = "gsm8k" if source.startswith("GSM8K") else "math500"
            lvl = None if math_level in (None, "any") or kind == "gsm8k" else int(math_level)
            p = get_problem(kind, int(index or 0), level=lvl, path=str(check_data_path(path)))
        else:
            return gr.update(), gr.update(), _ok("Type the question (and an optional gold answer) below."), None
        extra = f" · level {p.level}" if p.level else ""
        return p.question, p.gold, _ok(f"Loaded {p.id}{extra}."), p.to_dict()
    except (IndexError, KeyError) as e:
        return gr.update(), gr.update(), _err(f"No such problem: {e}"), gr.update()
    except ERRORS as e:
        return gr.update(), gr.update(), _err(str(e)), gr.update()


def verifier_controls(verifier, quality):
    """Show the quality slider and the oracle's note only for the oracle."""
    return gr.update(visible=verifier == "oracle"), gr.update(value=verifier_note(verifier, quality),
                                                               visible=verifier == "oracle")


def verifier_for_policy(policy, verifier):
    """A new policy keeps the verifier unless it cannot run there: a head trained on another policy's
    states (prm, probe), or one that reads states a model server does not send. Then the default for
    that policy (arith where it has no trained PRM), with a line saying why."""
    policy, verifier = (policy or "").strip(), verifier or ""
    served = policy.startswith("openai:")
    if trained_for(verifier, policy) and not (served and base_verifier(verifier) in READS_POLICY_STATES):
        return gr.update(), gr.update(value="", visible=False)
    # default_verifier only ever names one that runs on the policy it is given
    new = default_verifier(policy) if policy and not served else FALLBACK_VERIFIER
    why = ("a model server does not send the hidden states it reads" if served
           else f"it is trained on another policy's states, not on {policy}")
    return gr.update(value=new), gr.update(value=f"Verifier set to **{new}**: {esc(verifier)} cannot run with this policy "
                                                 f"({esc(why)}).", visible=True)


def source_visibility(source):
    return (
        gr.update(visible=source == "built-in example"),
        gr.update(visible=source in ("generated arithmetic", "generated word problem")),
        gr.update(visible=source in ("generated arithmetic", "generated word problem", "GSM8K (JSONL path)",
                                     "MATH-500 (JSONL path)")),
        gr.update(visible=source in ("GSM8K (JSONL path)", "MATH-500 (JSONL path)")),
        gr.update(visible=source == "MATH-500 (JSONL path)"),
        gr.update(visible=source != "type your own"),
    )


# ----- runs ---------------------------------------------------------------------------------
def check_model_server(url):
    """The "Check" button: the models the server serves, added to the Policy list. -> (policy update, message)."""
    try:
        url = check_server_url(url if isinstance(url, str) else "")
        served = list_models(url, timeout=5.0)
    except ValueError as e:  # ServerError is one too
        return gr.update(), _err(str(e))
    if not served:
        return gr.update(), _err(f"{url} serves no models.")
    names = [f"openai:{m}@{url}" for m in served]
    base = [m for m in EMBEDDED if is_installed(m)] or [POLICY]
    return (gr.update(choices=base + names, value=names[0]),
            f"<div>{esc(url)} serves: {esc(', '.join(served))}. Added to the Policy list; "
            f"the verifier runs here (self-judge asks the server for top log-probabilities; the probe and "
            f"the trained PRM need the policy in process).</div>")


def _save_download(trace: Trace) -> str:
    path = _download_dir / f"trace-{trace.strategy}-{time.strftime('%Y%m%d-%H%M%S')}-{id(trace) % 10000}.json"
    trace.save(path)
    return str(path)


def views(trace: Trace | None, status: str = ""):
    """(tree, summary, revisions, decision, status) for a trace."""
    if trace is None:
        return gr.update(), summary_html(None), gr.update(), gr.update(value="", visible=False), status
    dec = decision_html(trace)
    return (
        tree_figure(trace),
        summary_html(trace),
        # the chains panel only where there are chains (revisions, or auto when it chose them)
        gr.update(value=revision_figure(trace), visible=any(n.attempt is not None for n in trace.nodes)),
        gr.update(value=dec, visible=bool(dec)),
        status,
    )


def run_ui(question, gold, policy, verifier, strategy, n, width, lookahead, rev_len, temperature, seed,
           aggregation, max_step_tokens, max_rounds, pf_temp, ess, explore, mcts_eval, conf_keep, vote_conf, quality, problem,
           request: gr.Request, progress=gr.Progress()):
    """Streams (tree, summary, revisions, decision, status, state, node id, download)."""
    keep = (gr.update(),) * 3
    try:
        cfg = make_config(question, gold, policy, verifier, strategy, n, width, lookahead, rev_len, temperature,
                          seed, aggregation, max_step_tokens, max_rounds, quality, problem,
                          (pf_temp, ess, explore, mcts_eval, conf_keep, vote_conf))
    except ERRORS as e:
        gr.Warning(str(e))
        yield (*views(None, _err(str(e)))[:4], _err(str(e)), *keep)
        return
    key, cancel = start_cancel(request)  # one run per session: a new Run stops the previous one
    t0 = time.perf_counter()
    first = None
    trace = None
    waited = 0.0  # seconds spent waiting for another user's run on the same model
    try:
        for tr, msg in stream(cfg, cancel, progress):
            if tr is None:
                if msg.startswith("waiting"):
                    waited = -1.0
                elif waited < 0:
                    waited = time.perf_counter() - t0
                yield (gr.update(), gr.update(), gr.update(), gr.update(), _ok(msg), *keep)
                continue
            trace = tr
            if tr.status == "running" and tr.rounds == 0:  # models ready; whole samples may be streaming in
                ready = time.perf_counter() - t0 - max(0.0, waited)
                written = len(tr.finished())
                after = f"waited {waited:.1f} s for another run, then " if waited > 0 else ""
                msg = (f"{written} of {cfg.search.n} samples written · scoring when all are done" if written else
                       f"{after}models ready after {ready:.1f} s · first search round running…")
                yield (*views(tr)[:4], _ok(msg), tr, gr.update(), gr.update())
                continue
            if tr.status != "running":
                continue  # the final trace: shown below, after the stream (and its lock) closed
            if first is None:  # only a streamed tree counts: a run that failed at once drew none
                first = time.perf_counter() - t0
            status = f"round {tr.rounds} · first tree after {first:.1f} s"
            yield (*views(tr)[:4], _ok(status), tr, gr.update(), gr.update())
    except ERRORS as e:
        gr.Warning(str(e))
        yield (gr.update(), gr.update(), gr.update(), gr.update(), _err(str(e)), trace if trace else gr.update(),
               gr.update(), gr.update())
        return
    finally:
        end_cancel(key, cancel)
    if trace is None:
        return
    words = {"done": "done", "cancelled": "stopped: the partial tree is kept", "error": "failed"}
    status = f"{words.get(trace.status, trace.status)} · {trace.seconds:.1f} s search"
    if first is not None:
        status += f" · first tree after {first:.1f} s"
    if trace.error:
        gr.Warning(trace.error)
        status_html = _err(f"{status}: {trace.error}")
    else:
        status_html = _ok(status)
    sel = trace.selected()
    yield (*views(trace)[:4], status_html, trace, gr.update(value=sel.id if sel else None),
           gr.update(value=_save_download(trace), interactive=True))


def stop_ui(request: gr.Request):
    return _ok("Stopping after the current step…" if stop_session(request) else "Nothing is running.")


# ----- inspector ----------------------------------------------------------------------------
def _parse_click(value: str) -> tuple[str, int | None]:
    tree, _, nid = (value or "").rpartition(":")
    try:
        return tree or "tts-tree", int(float(nid))
    except ValueError:
        return tree or "tts-tree", None


def click_ui(value, trace, trace_a, trace_b):
    tree, nid = _parse_click(value)
    if tree == "tts-tree-a":
        return gr.update(), gr.update(), inspector_html(trace_a, nid)
    if tree == "tts-tree-b":
        return gr.update(), gr.update(), inspector_html(trace_b, nid)
    return inspector_html(trace, nid), gr.update(value=nid), gr.update()


def node_ui(nid, trace):
    try:
        return inspector_html(trace, None if nid is None else int(nid))
    except (TypeError, ValueError):
        return _err(f"Not a node id: {nid!r}")


# ----- traces: upload -----------------------------------------------------------------------
def upload_ui(file):
    """Reopen a saved trace (no model needed). Malformed files -> a visible message. A reopened trace
    describes itself: its question and gold fill the problem boxes, and it can be downloaded again.
    Outputs: tree, summary, revisions, decision, message, state, node id, inspector, question, gold,
    download."""
    nothing = (gr.update(),) * 4
    keep = (gr.update(),) * 3
    if file is None:
        return (*nothing, _ok(""), gr.update(), gr.update(), gr.update(), *keep)
    path = file if isinstance(file, str) else getattr(file, "name", str(file))
    try:
        if os.path.getsize(path) > MAX_UPLOAD_BYTES:
            raise TraceFormatError(f"The file is larger than {MAX_UPLOAD_BYTES // 2**20} MB.")
        trace = Trace.load(path)
        if trace.strategy not in STRATEGIES:
            raise TraceFormatError(f"Unknown strategy {trace.strategy[:40]!r} (this app knows {', '.join(STRATEGIES)}).")
        out = views(trace)  # renders: a structurally odd trace fails here, not later
    except TraceFormatError as e:
        msg = f"Could not open this trace: {e}"
        gr.Warning(msg)
        return (*nothing, _err(msg), gr.update(), gr.update(), gr.update(), *keep)
    except Exception as e:  # noqa: BLE001 - any other shape problem is still the file's fault
        msg = f"Could not open this trace: {type(e).__name__}: {e}"
        gr.Warning(msg)
        return (*nothing, _err(msg), gr.update(), gr.update(), gr.update(), *keep)
    sel = trace.selected()
    return (*out[:4], _ok(f"Opened {Path(path).name}: {len(trace.nodes) - 1} steps, strategy {trace.strategy}."),
            trace, gr.update(value=sel.id if sel else None), inspector_html(trace, sel.id if sel else None),
            trace.question, trace.gold or "", gr.update(value=_save_download(trace), interactive=True))


def search_tab(policies: list, policy_info: str | None, trace_state, problem_state, run_decorator=lambda f: f):
    """The tab's layout and its own events (call inside gr.Tabs). Returns its components as a namespace."""
    with gr.Tab("Search", id="search"):
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                source = gr.Radio(SOURCE_CHOICES, value="built-in example", label="Problem source")
                example_dd = gr.Dropdown(EXAMPLE_CHOICES, value=0, label="Built-in example")
                level = gr.Slider(1, 5, value=2, step=1, label="Arithmetic level (1 easy … 5 hard)",
                                  visible=False)
                index = gr.Number(value=0, precision=0, minimum=0, label="Problem index", visible=False)
                ds_path = gr.Textbox(label="JSONL path", placeholder="a GSM8K / MATH-500 .jsonl file in a data folder",
                                     visible=False)
                math_level = gr.Dropdown(["any", "1", "2", "3", "4", "5"], value="any",
                                         label="MATH-500 level", visible=False)
                load_btn = gr.Button("Load problem", size="sm")
                question = gr.Textbox(EXAMPLES[0].question, label="Question", lines=4, max_lines=12,
                                      elem_id="tts-question")
                gold = gr.Textbox(EXAMPLES[0].gold, label="Gold answer (optional)", elem_id="tts-gold")
                problem_msg = gr.HTML("")
                # one above the other: side by side in this narrow column, the verifier's names were cut off
                policy = gr.Dropdown(policies, value=POLICY, label="Policy", allow_custom_value=True,
                                     info=policy_info)
                verifier = gr.Dropdown([(f"{k}: {v[0]}", k) for k, v in VERIFIERS.items()],
                                       value=VERIFIER, label="Verifier (PRM)", elem_id="tts-verifier")
                quality = gr.Slider(0.5, 1.0, value=1.0, step=0.05, visible=False, elem_id="tts-quality",
                                    label="Verifier quality (AUROC): 1 = exact oracle, 0.5 = chance; needs "
                                          "the gold answer")
                verifier_md = gr.Markdown("", visible=False, elem_id="tts-verifier-note")
                policy_md = gr.Markdown("", visible=False, elem_id="tts-policy-verifier-note")
                strategy = gr.Dropdown(list(STRATEGIES), value=DEFAULTS["strategy"], label="Strategy")
                note = gr.Markdown(strategy_note(DEFAULTS["strategy"]))
                n = gr.Slider(1, MAX_BUDGET, value=DEFAULTS["n"], step=1, label="Budget N (generations)")
                with gr.Accordion("Advanced", open=False):
                    width = gr.Slider(1, MAX_BUDGET, value=DEFAULTS["width"], step=1, label="Beam width M")
                    lookahead = gr.Slider(0, 4, value=DEFAULTS["lookahead"], step=1, label="Lookahead k")
                    rev_len = gr.Slider(1, 16, value=DEFAULTS["revision_length"], step=1,
                                        label="Revision chain length L")
                    temperature = gr.Slider(0, 2, value=DEFAULTS["temperature"], step=0.05, label="Temperature")
                    seed = gr.Number(value=DEFAULTS["seed"], precision=0, label="Seed")
                    aggregation = gr.Radio(["last", "min", "prod"], value=DEFAULTS["aggregation"],
                                           label="Step score aggregation")
                    max_step_tokens = gr.Slider(8, 512, value=DEFAULTS["max_step_tokens"], step=8,
                                                label="Max tokens per step")
                    max_rounds = gr.Slider(1, 24, value=DEFAULTS["max_rounds"], step=1,
                                           label="Max rounds (steps)")
                    # the newer methods' knobs, shown when a chosen strategy uses them
                    knob_defaults = SearchConfig()
                    pf_temp = gr.Slider(0.05, 2, value=knob_defaults.particle_temperature, step=0.05,
                                        label="Particle weights: temperature T of softmax(score / T)",
                                        visible=False, elem_id="tts-pf-temp")
                    ess = gr.Slider(0, 1, value=knob_defaults.ess_threshold, step=0.05,
                                    label="Particles: resample when ESS < this x the particles",
                                    visible=False, elem_id="tts-ess")
                    explore = gr.Slider(0, 3, value=knob_defaults.exploration, step=0.1,
                                        label="MCTS: exploration c in UCT", visible=False, elem_id="tts-explore")
                    mcts_eval = gr.Dropdown([(f"{k}: {v}", k) for k, v in MCTS_EVALUATIONS.items()],
                                            value=knob_defaults.mcts_evaluation, label="MCTS: value a new step by",
                                            visible=False, elem_id="tts-mcts-eval")
                    conf_keep = gr.Slider(0.1, 1, value=knob_defaults.confidence_keep, step=0.05,
                                          label="DeepConf: share of warm-up samples the threshold keeps",
                                          visible=False, elem_id="tts-conf-keep")
                    vote_conf = gr.Slider(0.55, 1, value=knob_defaults.vote_confidence, step=0.01,
                                          label="Early stop: stop when the leader wins with this posterior "
                                                "probability (1 = only when the vote cannot change)",
                                          visible=False, elem_id="tts-vote-conf")
                    server_url = gr.Textbox(label="Model server (vLLM, SGLang, llama-server)",
                                            placeholder="http://127.0.0.1:8080", elem_id="tts-server")
                    server_btn = gr.Button("Check the server", size="sm", elem_id="tts-server-check")
                    server_msg = gr.HTML("", elem_id="tts-server-msg")
                with gr.Row():
                    run_btn = gr.Button("Run", variant="primary", elem_id="tts-run")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="tts-stop")
                status = gr.HTML("", elem_id="tts-status")
            with gr.Column(scale=3):
                # the tree gets the column's whole width (it scrolls sideways at big budgets);
                # the inspector and the run summary sit side by side under it
                tree = gr.Plot(label="Search tree", elem_id="tts-tree")
                gr.Markdown(VIEW_NOTES["tree"])
                decision = gr.HTML("", visible=False, elem_id="tts-decision")
                with gr.Row():
                    with gr.Column(scale=1, min_width=320):
                        gr.Markdown("### Inspector")
                        with gr.Row():
                            node_num = gr.Number(None, precision=0, label="Node id",
                                                 elem_id="tts-node-num")
                            node_btn = gr.Button("Show node", size="sm")
                        inspector = gr.HTML(inspector_html(None, None), elem_id="tts-inspector")
                    with gr.Column(scale=1, min_width=320):
                        summary = gr.HTML(summary_html(None), elem_id="tts-summary")
                revisions = gr.Plot(label="Revision chains", elem_id="tts-revisions", visible=False)
                with gr.Row():
                    download = gr.DownloadButton("Download trace (JSON)", value=None, interactive=False,
                                                 elem_id="tts-download")
                    upload = gr.UploadButton("Open a saved trace (.json)", file_types=[".json"],
                                             type="filepath", elem_id="tts-upload")
                upload_msg = gr.HTML("", elem_id="tts-upload-msg")
        # the click bridge (see tts_viz/ui/clickjs.py): hidden, but present in the page
        click_box = gr.Textbox(visible="hidden", elem_id=CLICK_ID)
        click_btn = gr.Button("inspect clicked node", visible="hidden", elem_id=CLICK_BTN_ID)
        gr.Examples(
            examples=[
                [EXAMPLES[0].question, EXAMPLES[0].gold, "beam", 4, 2],
                [EXAMPLES[1].question, EXAMPLES[1].gold, "best-of-n", 4, 2],
                [EXAMPLES[3].question, EXAMPLES[3].gold, "dvts", 4, 2],
                [EXAMPLES[4].question, EXAMPLES[4].gold, "revisions", 4, 2],
            ],
            inputs=[question, gold, strategy, n, width],
            label="One-click examples (fills the problem and strategy; then press Run)",
        )

    source.change(source_visibility, source, [example_dd, level, index, ds_path, math_level, load_btn])
    load_btn.click(load_problem, [source, example_dd, level, index, ds_path, math_level],
                   [question, gold, problem_msg, problem_state])
    example_dd.change(load_problem, [source, example_dd, level, index, ds_path, math_level],
                      [question, gold, problem_msg, problem_state])
    server_btn.click(check_model_server, [server_url], [policy, server_msg])
    verifier.change(verifier_controls, [verifier, quality], [quality, verifier_md])
    policy.change(verifier_for_policy, [policy, verifier], [verifier, policy_md])
    quality.change(verifier_controls, [verifier, quality], [quality, verifier_md])
    strategy.change(strategy_note, strategy, note)

    settings = [n, width, lookahead, rev_len, temperature, seed, aggregation, max_step_tokens, max_rounds,
                pf_temp, ess, explore, mcts_eval, conf_keep, vote_conf]
    run_evt = run_btn.click(
        run_decorator(run_ui), [question, gold, policy, verifier, strategy, *settings, quality, problem_state],
        [tree, summary, revisions, decision, status, trace_state, node_num, download],
        concurrency_limit=2, concurrency_id="search",
    )
    # Stop sets this session's cancel flag: the search ends after the current step and the
    # generator yields the partial tree with status "cancelled" (Gradio's cancels= would kill
    # the generator before that last, labelled yield; the flag keeps it).
    stop_btn.click(stop_ui, None, status, queue=False)
    run_evt.then(lambda t: inspector_html(t, t.selected().id if t is not None and t.selected() else None),
                 trace_state, inspector)

    node_btn.click(node_ui, [node_num, trace_state], inspector)
    node_num.submit(node_ui, [node_num, trace_state], inspector)
    upload.upload(upload_ui, upload,
                  [tree, summary, revisions, decision, upload_msg, trace_state, node_num, inspector, question, gold,
                   download])

    # what the other tabs read: the problem and settings (Compare), the inspector and node id (the click
    # bridge, the PRM inspector), the method knobs (shown for Compare's strategies too)
    return SimpleNamespace(question=question, gold=gold, policy=policy, verifier=verifier, strategy=strategy,
                           settings=settings, knobs=[pf_temp, ess, explore, mcts_eval, conf_keep, vote_conf], inspector=inspector,
                           node_num=node_num, click_box=click_box, click_btn=click_btn)
