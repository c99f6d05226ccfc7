"""The oracle verifier (exact and noisy), step truth on the tree, and where the verifier was fooled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tts_viz.grading import extract_answer
from tts_viz.study.prm_eval import auroc, evaluate
from tts_viz.problems import Problem, arith_problem_set, generate_arith
from tts_viz.runner import RunConfig, RunError
from tts_viz.step_truth import label_trace
from tts_viz.trace import FINISHED, FOOLED_HIGH, FOOLED_LOW, KEPT, PRUNED, SELECTED, Trace, truth_summary
from tts_viz.verifiers import check_verifier_name, make_verifier
from tts_viz.verifiers.oracle import OracleError, OracleVerifier, oracle_label, parse_oracle
from tts_viz.viz import inspector_html, summary_html, tree_figure

ROOT = Path(__file__).resolve().parent.parent
POOL = ROOT / "assets" / "prm-eval-pools" / "pool-c9711b532d1e-arith-101-20.jsonl"

PROBLEM = generate_arith(3, 1, 0)  # 33 * 3 = 99; 6 * 4 = 24; 99 + 24 = 123; 123 + 18 = 141
RIGHT = PROBLEM.meta["reference_steps"]
# a correct sum of the wrong things: 33 + 3 = 36 is true arithmetic but not a quantity of the problem
WRONG = ["At the start there are 33 apples.", "Now there are 33 + 3 = 36 apples.",
         "Then 36 + 24 = 60 apples.", "So 60 + 18 = 78.", "The answer is \\boxed{78}."]


def test_exact_oracle_scores_follow_the_step_labels_and_the_final_answer():
    v = OracleVerifier(PROBLEM)
    right, wrong = v.score(PROBLEM.question, [RIGHT, WRONG])
    assert right == [1.0] * len(RIGHT)  # the first step has nothing to check: nothing is wrong yet
    assert wrong == [1.0, 0.0, 0.0, 0.0, 0.0]  # wrong from the first wrong quantity on
    # a right path that boxes the wrong answer: the finished solution scores its final correctness
    slip = RIGHT[:-1] + ["The answer is \\boxed{140}."]
    assert v.score(PROBLEM.question, [slip])[0][-1] == 0.0
    # a step with nothing to check carries the previous label
    carry = RIGHT[:2] + ["Let me think about the bags next."]
    assert v.score(PROBLEM.question, [carry])[0] == [1.0, 1.0, 1.0]
    assert v.score_last(PROBLEM.question, [WRONG[:2], RIGHT[:2]]) == [0.0, 1.0]


def test_oracle_on_a_gold_only_row_checks_arithmetic_and_the_answer():
    row = Problem(id="gsm8k-x", question="Tom has 3 bags of 4 apples. How many apples?", gold="12", source="gsm8k")
    v = make_verifier("oracle", problem=row)
    got = v.score(row.question, [["3 * 4 = 13 apples.", "\\boxed{13}"], ["3 * 4 = 12 apples.", "\\boxed{12}"]])
    assert got == [[0.0, 0.0], [1.0, 1.0]]


def test_a_problem_without_a_gold_answer_is_refused_with_a_clear_message():
    with pytest.raises(OracleError, match="knows the answer.*no(ne)?"):
        OracleVerifier(Problem(id="q", question="What is 2 + 2?", gold="", source="custom"))
    with pytest.raises(OracleError):
        make_verifier("oracle@0.8", problem=None)
    cfg = RunConfig(question="What is 2 + 2?", gold=None, verifier="oracle@0.75", strategy="beam")
    with pytest.raises(RunError, match="gold answer"):
        cfg.validate()


@pytest.mark.parametrize("name, expected", [("oracle", None), ("oracle@0.75", 0.75), ("oracle@1", None),
                                            ("oracle@0.5", 0.5)])
def test_oracle_names(name, expected):
    assert parse_oracle(name) == expected
    check_verifier_name(name)


@pytest.mark.parametrize("bad", ["oracle@0.4", "oracle@1.5", "oracle@high", "oracle@nan"])
def test_oracle_quality_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="AUROC"):
        check_verifier_name(bad)


def test_the_oracle_says_what_it_is():
    assert oracle_label("oracle") == "oracle (knows the answer)"
    assert oracle_label("oracle@0.75") == "oracle (knows the answer) at AUROC 0.75"


def test_noise_is_deterministic_per_problem_path_and_seed():
    a = OracleVerifier(PROBLEM, 0.75, seed=3).score(PROBLEM.question, [RIGHT, WRONG])
    b = OracleVerifier(PROBLEM, 0.75, seed=3).score(PROBLEM.question, [WRONG, RIGHT])
    assert a == [b[1], b[0]]  # the same path scores the same in any batch position
    c = OracleVerifier(PROBLEM, 0.75, seed=4).score(PROBLEM.question, [RIGHT, WRONG])
    assert c != a
    assert all(0.0 < s < 1.0 for row in a for s in row)
    # the same step text under another prefix is another path: other noise
    assert a[0][1] != OracleVerifier(PROBLEM, 0.75, seed=3).score(PROBLEM.question, [[RIGHT[0] + " ", RIGHT[1]]])[0][1]


@pytest.mark.skipif(not POOL.is_file(), reason=f"the shipped reference pool {POOL.name} is missing")
@pytest.mark.parametrize("target", [0.6, 0.75, 0.9])
def test_noisy_oracle_is_calibrated_on_the_shipped_pool(target):
    """prm-eval's step AUROC on the reference pool (20 generated problems x 8 samples) is the requested
    value within 0.03; the solution AUROC (last step vs correctness) too."""
    problems = {p.id: p for p in arith_problem_set((1, 2, 3, 4, 5), 4, 101)}
    rows = [json.loads(line) for line in POOL.read_text().splitlines()]
    key = f"oracle@{target}"
    for row in rows:
        v = make_verifier(key, problem=problems[row["id"]])
        for s, sc in zip(row["samples"], v.score(row["question"], [s["steps"] for s in row["samples"]])):
            s.setdefault("scores", {})[key] = sc
    m = evaluate(rows, key)
    assert m["labelled_steps"] > 300
    assert abs(m["step_auroc"] - target) <= 0.03
    assert abs(m["solution_auroc"] - target) <= 0.05


def _hand_trace() -> Trace:
    """Round 0: four first steps of which the verifier keeps two; the truth says it kept a wrong one
    and pruned a right one. Round 1: two finished solutions; the chosen one is wrong."""
    t = Trace(question=PROBLEM.question, strategy="beam", gold=PROBLEM.gold, verifier="oracle@0.6")
    a = t.add_node(0, "Now there are 33 * 3 = 99 apples.", step_score=0.8, status=KEPT)
    b = t.add_node(0, "Now there are 33 + 3 = 36 apples.", step_score=0.9, status=KEPT)
    c = t.add_node(0, "Now there are 33 * 3 = 99 apples, times 2.", step_score=0.2, status=PRUNED)
    t.add_node(0, "Now there are 33 - 3 = 30 apples.", step_score=0.1, status=PRUNED)
    t.add_node(a.id, "The answer is \\boxed{141}.", step_score=0.4, status=FINISHED, answer="141", correct=True,
               round=1)
    t.add_node(b.id, "The answer is \\boxed{36}.", step_score=0.7, status=SELECTED, answer="36", correct=False,
               round=1)
    for n in t.nodes[1:]:
        n.agg_score = n.step_score
    return label_trace(t, PROBLEM)


def test_step_truth_labels_every_node():
    t = _hand_trace()
    assert [n.true_label for n in t.nodes] == [None, True, False, True, False, True, False]


def test_step_truth_agrees_with_the_exact_oracle_so_it_is_never_marked_fooled():
    """A wrong step, then a step boxing the right answer anyway (a lucky recovery), beside a right
    path that boxes a wrong answer: the exact oracle's scores and the step truth say the same of
    every node, the final-answer nodes included, so no node of the tree is marked fooled."""
    lucky = ["Now there are 33 + 3 = 36 apples.", "Then 36 + 24 = 60 apples.", "So the answer is \\boxed{141}."]
    slip = RIGHT[:-1] + ["The answer is \\boxed{140}."]
    # a boxed intermediate result (not the final answer, so labelled wrong) does not make the right
    # steps after it wrong (the tree once carried its verdict down, the oracle did not)
    boxed_midway = [RIGHT[0], "So far \\boxed{99} apples.", *RIGHT[1:]]
    oracle = OracleVerifier(PROBLEM)
    assert oracle.score(PROBLEM.question, [boxed_midway])[0] == [1.0, 0.0] + [1.0] * (len(RIGHT) - 1)
    t = Trace(question=PROBLEM.question, strategy="best-of-n", gold=PROBLEM.gold, verifier="oracle")
    for path, finished_as in ((lucky, True), (slip, False), (boxed_midway, True)):
        scores, parent = oracle.score(PROBLEM.question, [path])[0], 0
        for k, (text, score) in enumerate(zip(path, scores)):
            last = k == len(path) - 1
            parent = t.add_node(parent, text, step_score=score, status=FINISHED if last else KEPT, round=k,
                                answer=extract_answer(text) if last else None, correct=finished_as if last else None).id
    label_trace(t, PROBLEM)
    assert [n.true_label for n in t.nodes[1:4]] == [False, False, True]  # the recovery's final node is right
    assert [n.true_label for n in t.nodes[-len(boxed_midway):]] == [None, False] + [True] * (len(RIGHT) - 1)
    assert all(bool(n.step_score) == n.true_label for n in t.nodes[1:] if n.true_label is not None)
    assert tree_figure(t).layout.meta["fooled"] == {FOOLED_HIGH: [], FOOLED_LOW: []}


def test_fooled_steps_are_marked_on_the_tree_counted_and_shown():
    t = _hand_trace()
    fig = tree_figure(t)
    assert fig.layout.meta["fooled"] == {FOOLED_HIGH: [2, 6], FOOLED_LOW: [3, 5]}
    marks = {tr.name: list(tr.customdata) for tr in fig.data if tr.name in (FOOLED_HIGH, FOOLED_LOW)}
    assert marks == {FOOLED_HIGH: [2, 6], FOOLED_LOW: [3, 5]}
    assert not any(tr.name in (FOOLED_HIGH, FOOLED_LOW) for tr in tree_figure(t, show_truth=False).data)
    s = truth_summary(t)
    assert (s["rated_high_wrong"], s["rated_low_right"], s["fooled_rounds"], s["rounds"], s["final_fooled"]) == \
        (2, 2, 1, 1, True)
    html = summary_html(t)
    assert "final choice fooled" in html and "1 of 1 rounds" in html
    assert "oracle (knows the answer) at AUROC 0.6" in html
    insp = inspector_html(t, 6)
    assert "true label" in insp and "✗ wrong" in insp and "rated high, wrong" in insp
    # a score at the threshold is no opinion (arith's 0.5 before anything is checkable): not fooled
    from tts_viz.trace import fooled_kind

    assert fooled_kind(0.5, False) is None and fooled_kind(0.5, True) is None
    assert fooled_kind(0.51, False) == FOOLED_HIGH and fooled_kind(0.49, True) == FOOLED_LOW


def test_a_reopened_trace_keeps_its_step_truth():
    t = Trace.from_json(_hand_trace().to_json())
    assert tree_figure(t).layout.meta["fooled"][FOOLED_HIGH] == [2, 6]
    old = json.loads(_hand_trace().to_json())
    for n in old["nodes"]:
        del n["true_label"]  # a trace written before step truth existed still opens, with no marks
    assert truth_summary(Trace.from_dict(old)) is None
    bad = json.loads(_hand_trace().to_json())
    bad["nodes"][1]["true_label"] = "yes"
    with pytest.raises(ValueError, match="true_label"):
        Trace.from_dict(bad)


def test_no_gold_means_no_labels():
    t = Trace(question="q", strategy="beam")
    t.add_node(0, "1 + 1 = 3", step_score=0.9)
    assert label_trace(t, None).nodes[1].true_label is None


def test_auroc_of_the_exact_oracle_is_one_on_clean_labels():
    v = OracleVerifier(PROBLEM)
    scores = v.score(PROBLEM.question, [RIGHT, WRONG])
    flat = [s for row in scores for s in row]
    labels = [True] * len(RIGHT) + [True, False, False, False, False]
    assert auroc(flat, labels) == 1.0


def test_the_app_builds_the_oracle_from_the_slider_and_the_loaded_problem(monkeypatch):
    monkeypatch.setenv("TTS_VIZ_PRELOAD", "0")
    import app

    settings = dict(n=4, width=2, lookahead=1, rev_len=2, temperature=0.8, seed=0, aggregation="last",
                    max_step_tokens=64, max_rounds=4)
    cfg = app.make_config(PROBLEM.question, PROBLEM.gold, None, "oracle", "beam", *settings.values(),
                          quality=0.75, problem=PROBLEM.to_dict())
    assert cfg.verifier == "oracle@0.75" and cfg.intermediates == PROBLEM.intermediates
    edited = app.make_config(PROBLEM.question + " Then 5 more.", PROBLEM.gold, None, "oracle", "beam",
                             *settings.values(), quality=1.0, problem=PROBLEM.to_dict())
    assert edited.verifier == "oracle" and edited.intermediates == []  # another question: arithmetic only
    with pytest.raises(RunError, match="gold answer"):
        app.make_config(PROBLEM.question, "", None, "oracle", "beam", *settings.values(), quality=0.9)
    assert app.make_config(PROBLEM.question, "", None, "arith", "beam", *settings.values(), quality=0.6).verifier \
        == "arith"  # the slider only means something for the oracle


@pytest.mark.parametrize("field, value, words", [("strategy", 3, "'strategy' is not text"),
                                                  ("gold", ["5"], "'gold' is not text"),
                                                  ("seconds", "fast", "'seconds' is not a number"),
                                                  ("status", "exploded", "unknown run status"),
                                                  ("decision", "table", "'decision' is not an object")])
def test_an_uploaded_trace_has_every_field_checked(field, value, words):
    d = json.loads(_hand_trace().to_json())
    d[field] = value
    with pytest.raises(ValueError, match=words):
        Trace.from_dict(d)


def _pairwise_prm_trace(step_threshold: float, answer_threshold: float) -> Trace:
    """Scores as the trained PRM gives them: steps around 0.5, finished solutions low (a ranking loss
    moves the last step's logit; only the order within a problem matters)."""
    t = Trace(question=PROBLEM.question, strategy="best-of-n", gold=PROBLEM.gold, verifier="prm",
              step_threshold=step_threshold, answer_threshold=answer_threshold)
    a = t.add_node(0, "Now there are 33 * 3 = 99 apples.", step_score=0.62, status=KEPT)  # right
    b = t.add_node(0, "Now there are 33 + 3 = 36 apples.", step_score=0.55, status=KEPT)  # wrong
    t.add_node(a.id, "The answer is \\boxed{141}.", step_score=0.30, status=SELECTED, answer="141", correct=True)
    t.add_node(b.id, "The answer is \\boxed{36}.", step_score=0.02, status=FINISHED, answer="36", correct=False)
    # a right finished solution that a filter pruned afterwards keeps its finish reason: an answer's threshold
    t.add_node(a.id, "So \\boxed{141}.", step_score=0.2, status=PRUNED, answer="141", correct=True, finish_reason="boxed")
    return label_trace(t, PROBLEM)


def test_fooled_marks_read_the_verifiers_own_thresholds_and_survive_a_reopen():
    """Against 0.5 the PRM's right finished answer (0.30) looks 'rated low' and its wrong step (0.55)
    'rated high'; against its card's thresholds (0.5677 for steps, 0.0799 for answers) neither is."""
    naive = _pairwise_prm_trace(0.5, 0.5)
    assert tree_figure(naive).layout.meta["fooled"] == {FOOLED_HIGH: [2], FOOLED_LOW: [3, 5]}
    own = Trace.from_json(_pairwise_prm_trace(0.5677, 0.0799).to_json())
    assert (own.step_threshold, own.answer_threshold) == (0.5677, 0.0799)
    assert tree_figure(own).layout.meta["fooled"] == {FOOLED_HIGH: [], FOOLED_LOW: []}
    s = truth_summary(own)
    assert (s["rated_high_wrong"], s["rated_low_right"]) == (0, 0)
    assert "rated above 0.5677 (0.0799 for finished solutions)" in summary_html(own)
    assert "fooled" not in inspector_html(own, 3).split("true label")[-1]
    bad = json.loads(own.to_json())
    bad["answer_threshold"] = "low"
    with pytest.raises(ValueError, match="answer_threshold"):
        Trace.from_dict(bad)


def test_the_run_copies_the_verifiers_thresholds_onto_its_trace():
    from tests.fakes import ScriptedPolicy, TaggedVerifier
    from tts_viz.strategies.base import SearchConfig
    from tts_viz.runner import run_search

    v = TaggedVerifier()
    v.step_threshold, v.answer_threshold = 0.6, 0.1
    policy = ScriptedPolicy(None, solution_fn=lambda i, call, prev: ["1 + 1 = 2 [0.7]", "\\boxed{2} [0.2]"])
    cfg = RunConfig(question="What is 1 + 1?", gold="2", strategy="best-of-n", verifier="arith",
                    search=SearchConfig(n=2, width=1))
    t = run_search(cfg, policy=policy, verifier=v)
    assert (t.step_threshold, t.answer_threshold) == (0.6, 0.1)


def test_the_separating_threshold_falls_between_the_classes():
    from tts_viz.study.train_prm import separating_threshold

    assert separating_threshold([0.1, 0.2, 0.3, 0.9], [False, False, True, True]) == 0.25
    # overlapping classes: the cut with the largest true-minus-false-positive rate (the first of a tie)
    assert separating_threshold([0.3, 0.4, 0.8, 0.1, 0.35, 0.2], [True, True, True, False, False, False]) == 0.25
    assert separating_threshold([0.4, 0.6], [True, True]) == 0.5  # one class only: no cut to learn
