"""The pure views: Trace in, plotly figure / HTML out. No model is loaded here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tts_viz.trace import FINISHED, KEPT, PRUNED, SELECTED, RevisionLink, Trace
from tts_viz.viz import (
    decision_html,
    inspector_html,
    revision_figure,
    score_color,
    scores_table_html,
    summary_html,
    tidy_layout,
    tree_figure,
)
from tts_viz.viz.figures import PRUNED_OPACITY, UNSCORED_COLOR

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "assets" / "examples"
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"
EVIL = f"Let x = 2. {XSS_SCRIPT} then {XSS_IMG} so 2 + 2 = 4"


def make_tree() -> Trace:
    """root -> a(0.9) -> c(0.8, selected, answer 4)
                      -> d(0.2, pruned)
            -> b(0.1, pruned)
            -> e(0.6) -> f(0.5, finished, answer 5)"""
    t = Trace(question="What is 2 + 2?", strategy="beam", gold="4", policy="fake", verifier="arith")
    a = t.add_node(0, "2 + 2 = 4", tokens=5, step_score=0.9, agg_score=0.9, status=KEPT, reason="kept: rank 1")
    t.add_node(0, "2 + 2 = 5", tokens=5, step_score=0.1, agg_score=0.1, status=PRUNED, reason="pruned: rank 3")
    e = t.add_node(0, "two plus two", tokens=4, step_score=0.6, agg_score=0.6, status=KEPT)
    t.add_node(a.id, "\\boxed{4}", tokens=3, step_score=0.8, agg_score=0.8, status=SELECTED, answer="4",
               correct=True, reason="selected: highest weighted vote")
    t.add_node(a.id, "hmm", tokens=2, step_score=0.2, agg_score=0.2, status=PRUNED, reason="pruned: rank 4")
    t.add_node(e.id, "\\boxed{5}", tokens=3, step_score=0.5, agg_score=0.5, status=FINISHED, answer="5", correct=False)
    t.final_answer, t.correct, t.status, t.rounds = "4", True, "done", 2
    t.model_compute("policy", 1000).add(100, 22, 1.5)
    return t


def make_evil() -> Trace:
    t = Trace(question="Q " + XSS_IMG, strategy="revisions", gold="4", policy="fake", verifier="arith")
    s1 = t.add_node(0, EVIL, tokens=9, step_score=0.7, agg_score=0.7, status=FINISHED, answer=XSS_IMG,
                    correct=False, chain=0, attempt=0, reason="finished: " + XSS_SCRIPT)
    s2 = t.add_node(0, "revised " + EVIL, tokens=9, step_score=0.4, agg_score=0.4, status=SELECTED, answer="4",
                    correct=True, chain=0, attempt=1)
    t.revisions.append(RevisionLink(chain=0, src=s1.id, dst=s2.id))
    t.final_answer = XSS_SCRIPT
    t.status = "error"
    t.error = "boom " + XSS_IMG
    return t


def nodes_trace(fig):
    return next(tr for tr in fig.data if tr.name == "nodes")


def assert_escaped(s: str) -> None:
    assert "<script" not in s and "<img" not in s, s
    assert "&lt;script&gt;" in s or "&lt;img" in s


# ----- tree figure --------------------------------------------------------------------------
def test_node_count_and_customdata():
    t = make_tree()
    fig = tree_figure(t)
    nt = nodes_trace(fig)
    assert len(nt.x) == len(t.nodes)
    assert list(nt.customdata) == [n.id for n in t.nodes]
    assert fig.layout.meta["n_nodes"] == len(t.nodes)


def test_colours_follow_scores_on_fixed_scale():
    t = make_tree()
    nt = nodes_trace(tree_figure(t))
    for n, c in zip(t.nodes[1:], list(nt.marker.color)[1:]):
        assert c == score_color(n.step_score)
    # fixed scale: the same score gives the same colour in another tree
    assert score_color(0.9) == score_color(0.9) != score_color(0.1)
    assert score_color(None) == UNSCORED_COLOR
    # a colour bar on 0..1
    bar = next(tr for tr in tree_figure(t).data if tr.name == "score scale")
    assert bar.marker.showscale and bar.marker.cmin == 0 and bar.marker.cmax == 1


def test_pruned_nodes_faded():
    t = make_tree()
    nt = nodes_trace(tree_figure(t))
    for n, o in zip(t.nodes, nt.marker.opacity):
        assert (o == PRUNED_OPACITY) == (n.status == PRUNED)
        assert o < 1 if n.status == PRUNED else o == 1


def test_selected_path_highlighted():
    t = make_tree()
    fig = tree_figure(t)
    sel = t.selected_path_ids()
    assert sel == {0, 1, 4}
    assert sorted(fig.layout.meta["selected_path"]) == sorted(sel)
    pos = tidy_layout(t)
    sel_trace = next(tr for tr in fig.data if tr.name == "selected path")
    pts = {(x, y) for x, y in zip(sel_trace.x, sel_trace.y) if x is not None}
    assert pts == {pos[i] for i in sel}
    other = next(tr for tr in fig.data if tr.name == "steps")
    assert sel_trace.line.width > other.line.width
    nt = nodes_trace(fig)
    widths = list(nt.marker.line.width)
    for n in t.nodes:
        assert (widths[n.id] > 1) == (n.id in sel)


def test_finished_leaves_labelled_with_answer_and_mark():
    t = make_tree()
    labels = list(nodes_trace(tree_figure(t)).text)
    assert labels[4] == "4 ✓" and labels[6] == "5 ✗"
    assert labels[1] == labels[2] == ""
    t.gold = None
    assert list(nodes_trace(tree_figure(t)).text)[4] == "4"


def test_tidy_layout_is_top_down_and_centred():
    t = make_tree()
    pos = tidy_layout(t)
    for n in t.nodes:
        assert pos[n.id][1] == -n.depth
        kids = t.children(n.id)
        if kids:
            xs = [pos[k.id][0] for k in kids]
            assert pos[n.id][0] == pytest.approx((min(xs) + max(xs)) / 2)
    leaves = [pos[n.id][0] for n in t.leaves()]
    assert len(set(leaves)) == len(leaves)  # no two leaves overlap


def test_clicked_node_outlined_and_running_title():
    t = make_tree()
    t.status = "running"
    fig = tree_figure(t, selected_node=6)
    assert list(nodes_trace(fig).marker.line.width)[6] == 4
    assert "running" in fig.layout.title.text


def test_deep_tree_no_recursion_error():
    t = Trace(question="q", strategy="beam")
    p = 0
    for i in range(3000):
        p = t.add_node(p, f"s{i}").id
    fig = tree_figure(t)
    assert len(nodes_trace(fig).x) == 3001


# ----- untrusted text -----------------------------------------------------------------------
def test_model_text_escaped_everywhere():
    t = make_evil()
    fig = tree_figure(t)
    nt = nodes_trace(fig)
    for h in nt.hovertext:
        assert "<script" not in h and "<img" not in h
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in nt.hovertext[1]
    assert "&lt;img src=x onerror=alert(1)&gt;" in nt.hovertext[1]
    assert "&lt;img" in nt.hovertext[0]  # the question on the root
    for lab in nt.text:
        assert "<img" not in lab
    assert "&lt;img" in nt.text[1]  # the answer label
    assert "<script" not in (fig.layout.title.text or "")

    ins = inspector_html(t, 1)
    assert_escaped(ins)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in ins and "&lt;img src=x onerror=alert(1)&gt;" in ins

    rev = revision_figure(t)
    for tr in rev.data:
        for s in list(tr.hovertext or []) + list(tr.text or []):
            assert "<script" not in s and "<img" not in s
    att = next(tr for tr in rev.data if tr.name == "attempts")
    assert any("&lt;script&gt;" in h for h in att.hovertext)

    summ = summary_html(t)
    assert_escaped(summ)
    assert "&lt;script&gt;" in summ and "&lt;img" in summ  # final answer and the error

    table = scores_table_html([EVIL, "ok"], {"arith": [0.9, 0.1], XSS_SCRIPT: "unavailable " + XSS_IMG})
    assert_escaped(table)

    t.decision = {"difficulty": 0.3, "bin": 2, "choice": "beam", "why": XSS_SCRIPT,
                  "candidates": [{"strategy": "beam", "expected_accuracy": 0.4}, {"strategy": XSS_IMG, "expected_accuracy": 0.2}]}
    dec = decision_html(t)
    assert_escaped(dec)


# ----- revision chains ----------------------------------------------------------------------
def test_revision_figure_chains_left_to_right():
    t = make_evil()
    fig = revision_figure(t)
    att = next(tr for tr in fig.data if tr.name == "attempts")
    assert list(att.customdata) == [1, 2]
    assert list(att.x) == [0.0, 1.0] and att.y[0] == att.y[1]
    ch = next(tr for tr in fig.data if tr.name == "changes")
    assert "answer" in ch.hovertext[0]
    # no revisions: a message, no crash
    fig2 = revision_figure(make_tree())
    assert fig2.layout.meta["n_attempts"] == 0


# ----- panels -------------------------------------------------------------------------------
def test_inspector_shows_path_scores_tokens_reason():
    t = make_tree()
    h = inspector_html(t, 4)
    assert "2 + 2 = 4" in h and "\\boxed{4}" in h and "2 + 2 = 5" not in h
    assert "0.900" in h and "0.800" in h
    assert "8 tokens" in h
    assert "selected: highest weighted vote" in h
    assert "not in this tree" in inspector_html(t, 99)
    assert "question" in inspector_html(t, 0).lower()
    assert "Click a node" in inspector_html(t, None)


def test_summary_lists_compute_per_role():
    h = summary_html(make_tree())
    assert "policy" in h and "total" in h and "✓ correct" in h and "122" not in h  # tokens shown separately
    assert "100" in h and "22" in h
    assert "No run yet" in summary_html(None)


def test_summary_says_when_the_cpu_was_shared_and_an_upload_keeps_it():
    t = make_tree()
    t.cpu_share = 0.42
    assert "got 42% of the CPU" in summary_html(t)
    again = Trace.from_json(t.to_json())
    assert again.cpu_share == 0.42 and "got 42% of the CPU" in summary_html(again)
    t.cpu_share = 0.93
    assert "of the CPU" not in summary_html(t)
    t.cpu_share = None
    assert "of the CPU" not in summary_html(t)
    bad = json.loads(make_tree().to_json())
    bad["cpu_share"] = "lots"
    from tts_viz.trace import TraceFormatError

    with pytest.raises(TraceFormatError, match="cpu_share"):
        Trace.from_dict(bad)


def test_decision_only_when_present():
    t = make_tree()
    assert decision_html(t) == ""
    t.decision = {"difficulty": 0.72, "bin": "hard", "choice": "beam", "why": "hard question, small policy",
                  "candidates": [{"strategy": "beam", "expected_accuracy": 0.41},
                                 {"strategy": "best-of-n", "expected_accuracy": 0.33}]}
    h = decision_html(t)
    assert "0.720" in h and "hard" in h and "beam" in h and "#e6f4ea" in h


def test_decision_panel_reads_a_table_decision_for_a_person():
    from tests.test_allocate import POLICY, VERIFIER, synthetic_rows
    from tts_viz.allocate import decide, fit_table

    table = fit_table(synthetic_rows(), "absolute", split="val")
    t = make_tree()
    # easy at N=4 after 2 probes: the vote keeps its probes; beam (width=2) was only measured at 4,
    # so it cannot run on the 2 generations left
    dec = decide(table, 0.9, 4, POLICY, VERIFIER, probes=2)
    t.decision = dec.to_dict()
    h = decision_html(t)
    assert "bin bin" not in h and "easy (&gt; 0.5)" in h and "2 probe samples" in h
    assert "{" not in h and "0.9000" not in h  # no Python/JSON reprs, no raw floats
    rows = {r.split("</td>")[0].rsplit(">", 1)[-1]: r for r in h.split("<tr")[1:] if "<td" in r}
    chosen = [name for name, r in rows.items() if "#e6f4ea" in r]
    want = dec.choice["strategy"] + (f" (width={dec.choice['params']['width']})" if dec.choice["params"] else "")
    assert chosen == [want]
    assert "100.0%" in rows[want]
    assert "color:#999" in rows["beam (width=2)"] and "✗" in rows["beam (width=2)"]
    assert "Fallback" not in h

    t.decision = decide(table, 0.5, 4, "smollm2-135m", "arith", strict=False).to_dict()
    h = decision_html(t)
    assert "⚠ Fallback" in h and "another policy/verifier pair" in h and "smollm2-135m" in h


def test_scores_table_marks_first_step_below_threshold():
    h = scores_table_html(["a", "b", "c"], {"arith": [0.9, 0.3, 0.1], "hub": "not available offline"}, threshold=0.5)
    assert h.count("⚠ first") == 1
    rows = h.split("<tr>")
    assert "⚠" in rows[3] and "⚠" not in rows[2]  # header, step 1, step 2 ...
    assert "not available offline" in h


# ----- saved example traces (produced by a real small run) ----------------------------------
EXAMPLE_FILES = sorted(EXAMPLES_DIR.glob("*.json"))


@pytest.mark.skipif(not EXAMPLE_FILES, reason="no saved example traces under assets/examples")
@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_saved_example_traces(path):
    t = Trace.load(path)
    fig = tree_figure(t)
    nt = nodes_trace(fig)
    assert len(nt.x) == len(t.nodes)
    for n, c, o in zip(t.nodes[1:], list(nt.marker.color)[1:], list(nt.marker.opacity)[1:]):
        assert c == score_color(n.step_score)
        assert (o < 1) == (n.status == PRUNED)
    assert set(fig.layout.meta["selected_path"]) == t.selected_path_ids()
    json.loads(fig.to_json())  # serialisable for the browser
    summary_html(t)
    inspector_html(t, len(t.nodes) - 1)
    revision_figure(t)


def test_decision_panel_reads_the_allocator_record_of_an_auto_run():
    from tests.fakes import ScriptedPolicy, TaggedVerifier
    from tts_viz.runner import RunConfig, run_search
    from tts_viz.strategies.base import SearchConfig

    def solutions(i, call_no, prev):
        return ["think [0.5]", f"\\boxed{{{i % 2}}} [0.{i + 1}]"]

    def steps(partial, i, call_no):
        return "\\boxed{1} [0.6]" if partial else f"s{i} [0.{i + 1}]"

    cfg = RunConfig(question="q?", strategy="auto", verifier="arith", search=SearchConfig(n=8, width=4))
    trace = run_search(cfg, policy=ScriptedPolicy(steps, solution_fn=solutions), verifier=TaggedVerifier())
    assert trace.decision, trace.error
    html_out = decision_html(trace)
    assert "Estimated difficulty" in html_out
    choice = trace.decision["choice"]
    name = choice["strategy"] if isinstance(choice, dict) else choice
    assert name in html_out and "background:#e6f4ea" in html_out  # the chosen candidate is highlighted


def test_prm_report_panel_shows_each_verifier_and_escapes_names():
    from tts_viz.viz import prm_report_html

    sel = {"best": 0.5, "weighted": 0.625, "majority": 0.5, "pass@1": 0.3, "pass@n": 0.75}
    report = {"policy": "p", "sets": {"arith": {"problems": 8, "samples": 64, "verifiers": {
        "arith": {"step_auroc": 0.91, "first_error": {"f1": 0.7}, "solution_auroc": 0.8, "selection": sel},
        "<script>x</script>": {"step_auroc": None, "first_error": {"f1": None}, "solution_auroc": 0.49, "selection": sel},
    }}}}
    html = prm_report_html(report)
    assert "0.910" in html and "0.625" in html and "arith (8 × 8)" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "prm-eval" in prm_report_html(None)  # says how to make one


def test_a_wide_tree_labels_only_what_fits_and_keeps_the_chosen_leaf():
    """At N=64 the finished leaves would write 64 answers side by side: only the chosen leaf and the
    first leaf of each other answer are labelled, never two on neighbouring columns; pruned nodes keep a
    grey rim so they stay visible."""
    from tts_viz.trace import FINISHED, PRUNED, SELECTED, Trace

    t = Trace(question="q", strategy="best-of-n", gold="1")
    for i in range(64):
        status = SELECTED if i == 40 else FINISHED
        t.add_node(0, f"\\boxed{{{i % 3}}}", status=status, answer=str(i % 3), correct=i % 3 == 1, step_score=0.5)
    t.add_node(0, "dropped", status=PRUNED, step_score=0.2)
    fig = tree_figure(t)
    nodes = next(tr for tr in fig.data if tr.name == "nodes")
    labelled = [i for i, text in zip(nodes.customdata, nodes.text) if text]
    assert 41 in labelled  # node 41 is leaf 40, the chosen one
    assert len(labelled) <= 3
    xs = sorted(nodes.x[list(nodes.customdata).index(i)] for i in labelled)
    assert all(b - a >= 2 for a, b in zip(xs, xs[1:]))
    pruned = list(nodes.customdata).index(65)
    assert nodes.marker.line.color[pruned] != "rgb(255,255,255)" and nodes.marker.opacity[pruned] >= 0.4
    few = Trace(question="q", strategy="best-of-n", gold="1")
    for i in range(4):
        few.add_node(0, "\\boxed{1}", status=FINISHED, answer="1", correct=True)
    assert all(next(tr for tr in tree_figure(few).data if tr.name == "nodes").text[1:])  # all labelled


def test_maths_reads_as_maths_in_the_inspector_and_hover_and_stays_escaped():
    from tts_viz.trace import Trace
    from tts_viz.viz.figures import latex_to_text, node_hover

    assert latex_to_text(r"\[ \frac{48}{2} = 24 \]") == "48/2 = 24"
    assert latex_to_text(r"so the answer is $\boxed{\frac{5}{6}}$") == "so the answer is ⟦5/6⟧"
    assert latex_to_text("pays $5 for 3 \\times 4 = 12") == "pays $5 for 3 × 4 = 12"  # money keeps its sign
    t = Trace(question="q", strategy="beam")
    n = t.add_node(0, r"\( 3 \cdot 4 = 12 \) <script>alert(1)</script>", step_score=0.5)
    html = inspector_html(t, n.id)
    assert "3 · 4 = 12" in html and "<script>" not in html and "&lt;script&gt;" in html
    assert 'title="\\( 3 \\cdot 4' in html  # the raw LaTeX on hover
    hover = node_hover(t, n)
    assert "3 · 4 = 12" in hover and "<script>" not in hover


def test_compare_says_which_side_won():
    from tts_viz.trace import ModelCompute, Trace
    from tts_viz.viz import compare_html

    def t(strategy, answer, correct, tokens, verifier="arith"):
        tr = Trace(question="q", strategy=strategy, gold="5", final_answer=answer, correct=correct, verifier=verifier)
        tr.compute["policy"] = ModelCompute(params=1, generated_tokens=tokens)
        return tr

    assert "A wins" in compare_html(t("beam", "5", True, 900), t("best-of-n", "<b>6</b>", False, 700))
    assert "&lt;b&gt;6" in compare_html(t("beam", "5", True, 900), t("best-of-n", "<b>6</b>", False, 700))
    assert "B wins" in compare_html(t("beam", "6", False, 900), t("beam", "5", True, 700, "oracle@0.9"))
    assert "oracle (knows the answer) at AUROC 0.9" in compare_html(t("beam", "6", False, 9), t("beam", "5", True, 7, "oracle@0.9"))
    both = compare_html(t("beam", "5", True, 900), t("best-of-n", "5", True, 700))
    assert "both right" in both and "B used fewer tokens" in both
    assert compare_html(None, t("beam", "5", True, 1)) == ""


def test_a_tree_wider_than_the_panel_scrolls_and_its_labels_do_not_overlap():
    """Past what fits the panel the figure gets a column of pixels per leaf (the page scrolls it);
    a narrow tree fills the panel. Labels are the answers as text, never closer than their widths."""
    from tts_viz.trace import FINISHED, SELECTED, Trace
    from tts_viz.viz.figures import COLUMN_PX, FIT_COLUMNS

    def fan(n):
        t = Trace(question="q", strategy="best-of-n", gold="1")
        for i in range(n):
            ans = ["\\frac{5}{6}", "1", "12"][i % 3]
            t.add_node(0, f"\\boxed{{{ans}}}", status=SELECTED if i == n // 2 else FINISHED, answer=ans,
                       correct=ans == "1", step_score=0.5)
        return tree_figure(t)

    wide, narrow = fan(64), fan(8)
    assert FIT_COLUMNS < 64 and wide.layout.width >= COLUMN_PX * 64 and narrow.layout.width is None
    for fig, n in ((wide, 64), (narrow, 8)):
        nodes = next(tr for tr in fig.data if tr.name == "nodes")
        labels = [(x, text) for x, text in zip(nodes.x, nodes.text) if text]
        assert all("frac" not in t for _, t in labels) and any(t.startswith("5/6") for _, t in labels)
        col_px = COLUMN_PX if fig.layout.width else 800 / n
        labels.sort()
        for (xa, ta), (xb, tb) in zip(labels, labels[1:]):  # ~6.5 px per character at font size 11
            assert (xb - xa) * col_px >= (len(ta) + len(tb)) / 2 * 6.5
    # the app scrolls a wide tree to its chosen leaf (the 33rd of 64 columns): the title sits there, not at
    # the far left where it would be scrolled out of view; a narrow tree keeps it at the left
    assert 0.45 < wide.layout.title.x < 0.55 and wide.layout.title.xanchor == "right"
    assert narrow.layout.title.x == 0.01


def test_particles_are_sized_by_weight_and_mcts_nodes_by_visits():
    from tts_viz.trace import Trace

    t = Trace(question="q", strategy="particle-filter")
    heavy = t.add_node(0, "a", step_score=0.9, extra={"weight": 0.9, "rel_weight": 2.7, "copies": 3})
    light = t.add_node(0, "b", step_score=0.1, extra={"weight": 0.05, "rel_weight": 0.15, "copies": 0})
    busy = t.add_node(0, "c", step_score=0.5, extra={"visits": 9, "value": 0.61})
    quiet = t.add_node(0, "d", step_score=0.5, extra={"visits": 1, "value": 0.2})
    nodes = next(tr for tr in tree_figure(t).data if tr.name == "nodes")
    size = dict(zip(nodes.customdata, nodes.marker.size))
    assert size[heavy.id] > size[light.id] and size[busy.id] > size[quiet.id]
    hover = dict(zip(nodes.customdata, nodes.hovertext))
    assert "copied into 3 slot(s)" in hover[heavy.id] and "9 visits · value 0.610" in hover[busy.id]


def test_inspector_reads_method_numbers_safely_from_an_uploaded_trace():
    """A reopened trace may carry anything in a node's extra: the particle / MCTS column shows the numbers
    it can read and a dash for the rest, never an error."""
    from tts_viz.trace import Trace

    t = Trace(question="q", strategy="particle-filter")
    a = t.add_node(0, "a", step_score=0.9, extra={"weight": 0.9, "rel_weight": 2.7, "copies": "abc"})
    b = t.add_node(a.id, "b", step_score=0.5, extra={"rel_weight": "heavy", "reference": 2})
    html = inspector_html(Trace.from_json(t.to_json()), b.id)
    assert "particle weight · copies" in html and "2.70× avg · 0" in html and "<td" in html
    assert ">reference<" in html
    m = Trace(question="q", strategy="mcts")
    c = m.add_node(0, "c", step_score=0.5, extra={"visits": 3, "value": "high"})
    assert "3 · –" in inspector_html(m, c.id)
    # the tree's hover reads them the same way (it raised in int() on such an upload before)
    from tts_viz.viz.figures import node_hover

    assert "copied into 0 slot(s)" in node_hover(t, a) and "3 visits · value –" in node_hover(m, c)
    d = m.add_node(0, "d", step_score=0.5, extra={"visits": float("inf"), "weight": "x"})
    assert "visits" not in node_hover(m, d) and "particle" not in node_hover(m, d)
