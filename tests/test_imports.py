"""Readers of the field's data: search-and-learn rows as prefix trees, ProcessBench with its metric."""

from __future__ import annotations

import json

import pytest

from tts_viz.cli import main
from tts_viz.imports.processbench import processbench_metric, processbench_trace
from tts_viz.imports.sal import sal_trace
from tts_viz.trace import Trace

SAL_ROW = {
    "problem": "What is 2 + 3 + 4?", "answer": "9", "unique_id": "toy/1",
    "completions": [
        "2 + 3 = 5\n\n5 + 4 = 9\n\nSo \\boxed{9}",
        "2 + 3 = 5\n\n5 + 4 = 10\n\nSo \\boxed{10}",
        "2 + 3 = 5\n\n5 + 4 = 9\n\nSo \\boxed{9}",  # identical to the first: its own vote
        "",  # an empty completion
    ],
    "scores": [[0.9, 0.8, 0.7], [0.9, 0.3, 0.2], [0.9, 0.8, 0.7], []],
    "pred": "\\boxed{9}", "pred_weighted@4": "\\boxed{9}", "pred_maj@4": "\\boxed{9}", "pred_naive@4": "\\boxed{9}",
    "agg_scores": [0.7, 0.2, 0.7, 0.0], "completion_tokens": [12, 13, 12, 0],
}


def test_sal_row_becomes_a_prefix_tree_with_its_scores():
    t = sal_trace(SAL_ROW)
    first = t.children(0)
    # "2 + 3 = 5" is shared by the three real completions; the empty one is a leaf of its own
    assert [n.text for n in first] == ["2 + 3 = 5", ""]
    shared = first[0]
    assert shared.step_score == 0.9
    second = t.children(shared.id)
    assert [n.text for n in second] == ["5 + 4 = 9", "5 + 4 = 10"]  # the two 5 + 4 branches
    leaves = [n for n in t.nodes if n.status in ("finished", "selected")]
    assert len(leaves) == 4  # identical completions stay two votes
    assert sorted(n.answer or "" for n in leaves) == ["", "10", "9", "9"]
    assert t.final_answer == "9" and t.correct is True
    info = t.root.extra["imported"]
    assert info["ours"] == {"majority": "9", "best": "9", "weighted": "9"}
    assert info["stored"]["pred_weighted@4"] == "\\boxed{9}"
    wrong = next(n for n in leaves if n.answer == "10")
    assert wrong.agg_score == 0.2 and wrong.tokens == 13
    assert Trace.from_json(t.to_json()).nodes[wrong.id].answer == "10"  # the trace round-trips


def test_sal_ties_go_as_the_apps_selection_rules_say():
    """One vote each: the vote's tie goes to the higher-scored answer (select.pick), as does best-of-N."""
    row = dict(SAL_ROW, completions=["\\boxed{1}", "\\boxed{2}", "\\boxed{1}"], scores=[[0.4], [0.9], [0.4]])
    info = sal_trace(row).root.extra["imported"]
    assert info["ours"] == {"majority": "1", "best": "2", "weighted": "2"}  # 2 votes; 0.9 alone; 0.9 > 0.8


@pytest.mark.parametrize("drop", ["completions", "scores", "problem"])
def test_a_row_with_a_missing_column_names_it(drop):
    row = {k: v for k, v in SAL_ROW.items() if k != drop}
    with pytest.raises(ValueError, match=f"missing column.*{drop}"):
        sal_trace(row)


def test_processbench_labels_and_metric_match_a_hand_computation():
    rows = [{"id": "a", "problem": "p", "steps": ["s1", "s2", "s3"], "label": 1, "final_answer_correct": False},
            {"id": "b", "problem": "p", "steps": ["s1", "s2"], "label": -1, "final_answer_correct": True},
            {"id": "c", "problem": "p", "steps": ["s1", "s2"], "label": 0, "final_answer_correct": False},
            {"id": "d", "problem": "p", "steps": ["s1"], "label": -1, "final_answer_correct": True}]
    t = processbench_trace(rows[0])
    assert [n.true_label for n in t.nodes[1:]] == [True, False, False]
    scores = [[0.9, 0.2, 0.1], [0.9, 0.8], [0.7, 0.1], [0.3]]
    # a: predicted 1 = label 1 (hit); c: predicted 1, label 0 (miss) -> 1/2 on erroneous
    # b: no step below 0.5 (hit); d: step 0 below (miss) -> 1/2 on correct; F1 = 0.5
    m = processbench_metric([r["label"] for r in rows], scores)
    assert m == {"acc_erroneous": 0.5, "acc_correct": 0.5, "f1": 0.5, "erroneous": 2, "correct": 2}
    with pytest.raises(ValueError, match="missing column.*label"):
        processbench_trace({"problem": "p", "steps": ["s"]})


def test_import_command_writes_one_trace_per_problem_and_guesses_the_format(tmp_path, capsys):
    f = tmp_path / "runs.jsonl"
    f.write_text(json.dumps(SAL_ROW) + "\n" + json.dumps(dict(SAL_ROW, problem="Another?")) + "\n")
    assert main(["import", str(f), "--out", str(tmp_path / "out")]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["format"] for x in lines] == ["sal", "sal"] and lines[0]["completions"] == 4
    assert Trace.load(lines[1]["trace"]).question == "Another?"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q"}) + "\n")
    assert main(["import", str(bad), "--out", str(tmp_path / "o2")]) == 2
    assert "Cannot tell the format" in capsys.readouterr().err


def test_a_trace_exports_to_treelog_and_back_to_a_sal_row():
    from tts_viz.imports.export import to_sal_row, to_treelog

    t = sal_trace(SAL_ROW)
    log = to_treelog(t)["logs"][0]
    assert len(log["nodes"]) == len(t.nodes) and len(log["edges"]) == len(t.nodes) - 1
    chosen = t.selected()
    # following selected_edge from the root walks the chosen path down to the chosen leaf
    walk, at = [], 0
    while log["nodes"][str(at)]["selected_edge"] is not None:
        at = log["nodes"][str(at)]["selected_edge"]
        walk.append(at)
    assert walk[-1] == chosen.id and log["edges"][str(chosen.id)]["data"]["reward"] == chosen.step_score
    row = to_sal_row(t)
    again = sal_trace(row)  # what we export reads back as the same tree
    assert [n.text for n in again.nodes] == [n.text for n in t.nodes]
    assert row["pred"] == "\\boxed{9}" and len(row["completions"]) == 4


def test_export_command_writes_treelog(tmp_path, capsys):
    path = tmp_path / "t.json"
    sal_trace(SAL_ROW).save(path)
    assert main(["export", str(path), "--format", "treelog", "--out", str(tmp_path / "log.json")]) == 0
    assert "logs" in json.loads((tmp_path / "log.json").read_text())
    assert main(["export", str(path), "--format", "sal"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["answer"] == "9"


def test_prm800k_row_keeps_the_rated_path_and_the_alternatives():
    from tts_viz.imports.prm800k import prm800k_trace

    row = {"question": {"problem": "What is 2 + 3 + 4?", "ground_truth_answer": "9"},
           "label": {"finish_reason": "solution", "steps": [
               {"completions": [{"text": "2 + 3 = 5", "rating": 1}, {"text": "2 + 3 = 6", "rating": -1}],
                "human_completion": None, "chosen_completion": 0},
               {"completions": [{"text": "5 + 4 = 9, so \\boxed{9}", "rating": 0}], "human_completion": None,
                "chosen_completion": 0}]}}
    t = prm800k_trace(row)
    texts = {n.text: n for n in t.nodes[1:]}
    assert texts["2 + 3 = 5"].true_label is True and texts["2 + 3 = 6"].true_label is False
    assert texts["2 + 3 = 6"].status == "pruned"
    assert texts["5 + 4 = 9, so \\boxed{9}"].true_label is None  # a neutral rating is no label
    assert t.final_answer == "9" and t.correct is True
    with pytest.raises(ValueError, match="missing column.*label"):
        prm800k_trace({"question": {"problem": "p"}})


def test_prm_eval_import_computes_processbench_f1_for_a_local_verifier(tmp_path, capsys):
    rows = [{"problem": "p", "steps": ["2 + 3 = 5", "5 * 2 = 11", "so 11"], "label": 1, "final_answer_correct": False},
            {"problem": "p", "steps": ["2 + 3 = 5", "5 * 2 = 10"], "label": -1, "final_answer_correct": True},
            {"problem": "p", "steps": ["2 + 3 = 6", "6 * 2 = 12"], "label": 0, "final_answer_correct": False}]
    f = tmp_path / "pb.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "pb.json"
    assert main(["prm-eval", "--import", str(f), "--verifiers", "arith", "--out", str(out)]) == 0
    m = json.loads(out.read_text())["verifiers"]["arith"]
    # arith finds both wrong equations exactly where they are and passes the right solution
    assert (m["acc_erroneous"], m["acc_correct"], m["f1"]) == (1.0, 1.0, 1.0)
