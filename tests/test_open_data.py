"""The app's Open data tab without a browser: a search-and-learn row opened as a tree, re-scored by
another verifier, and the two compared; files and rows it cannot open get a message."""

from __future__ import annotations

import json

import pytest

from tts_viz.trace import SELECTED
from tts_viz.ui.open_data import OpenDataError, comparison_html, describe, open_row, rescored


def sal_row(**kw):
    row = {"problem": "What is 2 + 3, then times 4?", "answer": "20", "level": 1, "unique_id": "t/1",
           "completions": ["2 + 3 = 5\n\n5 * 4 = 20\n\nSo \\boxed{20}",    # right, arithmetic right
                           "2 + 3 = 5\n\n5 * 4 = 24\n\nSo \\boxed{24}",    # shares step 1, a wrong product
                           "2 + 3 = 6\n\n6 * 4 = 24\n\nSo \\boxed{24}"],   # wrong at step 1
           # the stored PRM liked the wrong completions: arith should overturn it
           "scores": [[0.9, 0.2, 0.3], [0.9, 0.95, 0.97], [0.8, 0.9, 0.99]],
           "pred": "\\boxed{24}", "completion_tokens": [12, 12, 12], "agg_scores": [0.3, 0.97, 0.99],
           "pred_weighted@4": "\\boxed{24}", "pred_maj@4": "\\boxed{24}", "pred_naive@4": "\\boxed{24}"}
    row.update(kw)
    return row


def test_a_row_opens_as_a_tree_and_another_verifier_overturns_its_choice(tmp_path):
    f = tmp_path / "sal.jsonl"
    f.write_text("\n".join(json.dumps(sal_row(unique_id=f"t/{i}")) for i in range(3)) + "\n")
    a = open_row(str(f), 2)
    assert len(a.nodes) == 1 + 2 + 3 + 3  # two first steps (one shared by two completions), then a branch each
    assert "3 completions merged" in describe(a) and "pred = \\boxed{24}" in describe(a)
    b = rescored(a, "arith")
    assert b.verifier == "arith" and a.verifier != "arith"
    assert [n.text for n in b.nodes] == [n.text for n in a.nodes]  # the same tree, other scores
    chosen = next(n for n in b.nodes if n.status == SELECTED)
    assert chosen.answer == "20" and chosen.correct
    html = comparison_html(a, b)
    assert "a different solution" in html and "<b>20 ✓</b>" in html and "mean |difference|" in html
    assert "oracle" in rescored(a, "oracle").verifier  # the row's gold reaches the oracle


def test_what_cannot_be_opened_gets_a_message(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps({"problem": "q", "completions": ["a"]}) + "\n")
    with pytest.raises(OpenDataError, match="Upload"):
        open_row(None, 0)
    with pytest.raises(OpenDataError, match="fewer than 5 rows"):
        open_row(str(f), 4)
    with pytest.raises(OpenDataError, match="whole number"):
        open_row(str(f), "abc")
    with pytest.raises(OpenDataError, match="between 0"):
        open_row(str(f), -1)
    with pytest.raises(OpenDataError, match="scores"):  # the missing columns are named
        open_row(str(f), 0)
    (tmp_path / "y.txt").write_text("hi")
    with pytest.raises(OpenDataError, match=".jsonl, .json or .parquet"):
        open_row(str(tmp_path / "y.txt"), 0)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(OpenDataError, match="bad.jsonl"):
        open_row(str(bad), 0)
