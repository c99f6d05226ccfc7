"""The Scaling tab's numbers and figures from synthetic sweep rows (no model)."""

from __future__ import annotations

import json

from tts_viz.allocate import QuantileBins
from tts_viz.viz.scaling import (ALL, accuracy_by_bin, accuracy_table_markdown, bin_winners, binning_for, budget_ratio,
                                 busy_seconds, difficulty_predictors, flops_figure, flops_matched, load_results_file, lookup_ablation_markdown,
                                 paired_against, paired_table_markdown, probe_agreement, table_lookup_ablation,
                                 scaling_figure, scaling_report, scaling_view, sign_test_p, what_ran_markdown)


def _row(pid, strategy, budget, correct, split="test", oracle=0.8, policy="p05", flops=1e9, params=None):
    return {"problem_id": pid, "strategy": strategy, "params": params or {}, "budget": budget, "correct": correct,
            "split": split, "oracle_difficulty": oracle, "policy": policy, "flops": flops * budget, "status": "done"}


def _rows():
    rows = []
    # easy problems e0, e1 (oracle 0.8), hard h0, h1 (oracle 0.05)
    for pid, oracle in (("e0", 0.8), ("e1", 0.8), ("h0", 0.05), ("h1", 0.05)):
        rows.append({**_row(pid, "pool", 16, None, oracle=oracle), "correct": None})
        for n in (1, 4, 16):
            easy = oracle > 0.5
            rows.append(_row(pid, "weighted-best-of-n", n, easy or (n == 16 and pid == "h0"), oracle=oracle))
            rows.append(_row(pid, "auto", n, easy or (n >= 4 and pid == "h0"), oracle=oracle))
    rows.append(_row("v0", "auto", 1, False, split="val"))  # other split: left out
    rows.append({**_row("e0", "beam", 4, True), "status": "error"})  # failed run: left out
    return rows


def test_accuracy_by_bin_splits_easy_and_hard_problems():
    data = accuracy_by_bin(_rows(), split="test")
    assert set(data) == {ALL, "easy", "hard"}
    cell = data["easy"]["weighted-best-of-n"][1]
    assert (cell["accuracy"], cell["n"], cell["flops"], cell["hi"]) == (1.0, 2, 1e9, 1.0)
    assert 0.3 < cell["lo"] < 0.35  # 2 of 2 right is not certainty: its 95% Wilson interval starts at 0.34
    assert data["hard"]["weighted-best-of-n"][16]["accuracy"] == 0.5
    assert data["hard"]["auto"][4]["accuracy"] == 0.5
    assert data[ALL]["auto"][1]["accuracy"] == 0.5  # 2 easy right, 2 hard wrong; the val row is not counted
    assert "beam" not in data[ALL]  # error rows are not results


def test_accuracy_points_carry_their_wilson_interval_as_bars_and_in_the_hover():
    from tts_viz.viz.scaling import wilson_interval

    lo, hi = wilson_interval(7, 20)  # 0.35 on 20 problems: the study's size
    assert abs(lo - 0.1812) < 1e-3 and abs(hi - 0.5671) < 1e-3
    assert wilson_interval(0, 5)[0] == 0.0 and abs(wilson_interval(0, 5)[1] - 0.4345) < 1e-3
    fig = scaling_figure(_rows(), split="test")
    wbon = next(t for t in fig.data if t.name == "weighted-best-of-n" and t.xaxis == "x")  # the all-problems panel
    k = list(wbon.x).index(16)  # 3 of 4 right at 16
    lo, hi = wilson_interval(3, 4)
    assert abs(wbon.error_y.array[k] - (hi - 0.75)) < 1e-9 and abs(wbon.error_y.arrayminus[k] - (0.75 - lo)) < 1e-9
    assert "95%" in wbon.hovertemplate and any("95% interval" in a.text for a in fig.layout.annotations)


def test_paired_comparison_counts_problems_auto_won_and_lost():
    pairs = paired_against(_rows(), split="test")
    # at 4 auto also solves h0, which weighted-best-of-4 misses; at 16 both solve it
    assert pairs["weighted-best-of-n"][4] == {"won": 1, "lost": 0, "tied": 3, "n": 4, "p": 1.0}
    assert pairs["weighted-best-of-n"][16]["won"] == pairs["weighted-best-of-n"][16]["lost"] == 0
    flipped = [{**x, "correct": not x["correct"]} if x["strategy"] == "auto" and x["problem_id"] == "e1" else x
               for x in _rows()]
    assert paired_against(flipped, split="test")["weighted-best-of-n"][1]["lost"] == 1
    assert "auto" not in pairs and "beam" not in pairs  # auto is not its own rival; failed runs are not results


def test_paired_comparison_against_the_vote_says_where_search_beat_it():
    # dvts right on h0 and h1 at 16 where the vote is wrong; the vote right on e1 where dvts is wrong
    rows = [_row(pid, "majority", 16, pid in ("e0", "e1")) for pid in ("e0", "e1", "h0", "h1")]
    rows += [_row(pid, "dvts", 16, pid != "e1") for pid in ("e0", "e1", "h0", "h1")]
    rows += [_row("e0", "dvts", 4, True)]  # no vote at 4: nothing to pair
    pairs = paired_against(rows, split="test", reference="majority")
    assert pairs == {"dvts": {16: {"won": 1, "lost": 2, "tied": 1, "n": 4, "p": 1.0}}}
    md = paired_table_markdown(rows, "test", reference="majority")
    assert md.splitlines()[0] == "| majority against | N=16 |" and "| dvts | +1 −2 (p=1.00) |" in md
    assert paired_table_markdown(rows, "val", reference="majority") == ""  # nothing on that split


def test_sign_test_p_values():
    assert sign_test_p(0, 0) == 1.0 and sign_test_p(3, 2) == 1.0
    assert abs(sign_test_p(7, 1) - 18 / 256) < 1e-12  # 2 * (1 + 8) / 2**8
    assert abs(sign_test_p(0, 6) - 2 / 64) < 1e-12


def test_budget_ratio_finds_smallest_budget_reaching_weighted_16():
    r = budget_ratio(_rows(), split="test")
    assert r["reference_accuracy"] == 0.75
    assert r["auto_budget"] == 4 and r["ratio"] == 4.0
    worse = [x for x in _rows() if not (x["strategy"] == "auto" and x["budget"] >= 4)]
    r2 = budget_ratio(worse, split="test")
    assert r2["ratio"] is None and "never reaches" in r2["note"]


def test_quantile_binning_is_fitted_on_validation_problems():
    rows = [_row(f"v{i}", "pool", 16, None, split="val", oracle=i / 10) for i in range(10)]
    b = binning_for("quantile", rows, k=5)
    assert isinstance(b, QuantileBins) and b.k == 5
    assert b.label(0.95) == "1" and b.label(0.0) == "5"
    assert binning_for("absolute", rows).labels == ["easy", "medium", "hard"]


def test_scaling_figure_has_a_panel_per_bin_and_auto_drawn_last():
    fig = scaling_figure(_rows(), split="test")
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0].startswith("all problems") and any(t.startswith("easy") for t in titles)
    assert fig.data[-1].name == "auto" and fig.data[-1].line.width == 4
    assert fig.layout.xaxis.type == "log"
    empty = scaling_figure([], split="test")
    assert "No sweep results" in empty.layout.annotations[0].text


def test_flops_figure_separates_policies():
    rows = _rows() + [_row("e0", "majority", 1, True, policy="p15", flops=3e9),
                      _row("h0", "majority", 1, False, policy="p15", flops=3e9)]
    fig = flops_figure(rows, split="test")
    names = {t.name for t in fig.data}
    assert "p15: majority" in names and "p05: auto" in names
    p15 = next(t for t in fig.data if t.name == "p15: majority")
    assert list(p15.x) == [3e9] and list(p15.y) == [0.5]
    # the FLOPs axis names its ticks in SI units across the data, 1-2-5 steps
    ticks = dict(zip(fig.layout.xaxis.tickvals, fig.layout.xaxis.ticktext))
    assert ticks[2e9] == "2G" and ticks[5e9] == "5G" and min(ticks) <= min(x for t in fig.data for x in t.x)


def test_si_log_ticks():
    from tts_viz.viz.scaling import si_log_ticks

    vals, text = si_log_ticks([2.3e11, 8.1e12])
    assert dict(zip(vals, text)) == {2e11: "200G", 5e11: "500G", 1e12: "1T", 2e12: "2T", 5e12: "5T", 1e13: "10T"}
    assert si_log_ticks([]) == ([], [])
    assert si_log_ticks([150, 3e9])[1] == ["100", "1k", "10k", "100k", "1M", "10M", "100M", "1G"]


def test_markdown_table_and_loading_skip_bad_lines(tmp_path):
    md = accuracy_table_markdown(_rows(), split="test")
    assert "| auto | 0.500 (4) | 0.750 (4) | 0.750 (4) |" in md
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(_rows()[1]) + "\n{\"truncated")
    assert len(load_results_file(path)) == 1
    assert load_results_file(tmp_path / "missing.jsonl") == []


def test_scaling_view_reports_ratio_and_says_when_nothing_is_shipped():
    fig, ffig, md = scaling_view(_rows(), "test", "absolute", policy="p05")
    assert "4x less compute" in md and "| auto |" in md
    assert "| weighted-best-of-n | +0 −0 (p=1.00) | +1 −0 (p=1.00) | +0 −0 (p=1.00) |" in md  # paired table
    assert len(fig.data) > 0 and len(ffig.data) > 0
    _, _, empty = scaling_view([], "test", "absolute")
    assert "No sweep results shipped yet" in empty


def test_bin_winners_name_the_best_strategy_per_bin_with_ties():
    rows = _rows() + [_row(pid, "beam", 16, pid != "h1", oracle=o) for pid, o in
                      (("e0", 0.8), ("e1", 0.8), ("h0", 0.05), ("h1", 0.05))]
    wins = bin_winners(rows, "test")
    assert wins["easy"][1] == {"best": ["weighted-best-of-n"], "accuracy": 1.0, "n": 2}  # auto is no candidate
    assert wins["easy"][16]["best"] == ["beam", "weighted-best-of-n"]  # a tie lists both
    assert wins["hard"][16]["best"] == ["beam", "weighted-best-of-n"] and wins["hard"][16]["accuracy"] == 0.5
    assert wins[ALL][16]["accuracy"] == 0.75
    assert wins["hard"][1] == {"best": [], "accuracy": 0.0, "n": 2}  # nothing solves them: no winner, not a tie of all


def test_flops_matched_finds_the_small_models_best_point_within_the_big_ones_flops():
    rows = []
    for pid in ("a", "b"):
        rows.append(_row(pid, "majority", 1, pid == "a", policy="big", flops=3e9))  # 3e9 FLOPs, accuracy 0.5
        for n, ok in ((1, False), (2, True), (4, True)):  # small: 1e9 * n FLOPs
            rows.append(_row(pid, "weighted-best-of-n", n, ok, policy="small"))
    rows.append(_row("c", "weighted-best-of-n", 1, True, policy="small"))  # no big row for c: not compared
    [m] = flops_matched(rows, "small", "big")
    assert m["big"] == "majority@1" and m["big_accuracy"] == 0.5 and m["n"] == 2
    assert m["small"] == "weighted-best-of-n@2" and m["small_accuracy"] == 1.0 and m["small_flops"] == 2e9  # @4 costs more
    md = scaling_report(rows + [{**_row("a", "pool", 4, None, policy="small"), "seconds": 7200}], "small", "big")
    assert "| small | test | 3 |" in md and "2.00 CPU-hours" in md and "| majority@1 | 0.500 (2)" in md


def test_difficulty_predictors_rank_problems_against_pass_at_1_after_the_probes():
    rows = []
    # problem i: the probes agree more the easier it is (i of 4 share one answer), while the verifier
    # scores the probes in reverse; its pass@1 on the 4 samples after the probes is i/4
    for i in range(1, 5):
        probes = ["7"] * i + [str(10 + j) for j in range(4 - i)]
        rows.append({**_row(f"p{i}", "pool", 8, None), "answers": probes + ["7"] * 4,
                     "scores": [1 - i / 10] * 4 + [0.5] * 4,
                     "sample_correct": [False] * 4 + [True] * i + [False] * (4 - i)})
    rows.append({**_row("no-scores", "pool", 8, None), "answers": ["1"] * 8, "scores": [None] * 8,
                 "sample_correct": [True] * 8})  # unscored pool: left out
    pred = difficulty_predictors(rows, probes=4)
    assert pred["problems"] == 4
    assert abs(pred["agreement"] - 1.0) < 1e-9 and abs(pred["mean score"] + 1.0) < 1e-9
    assert "Difficulty estimates** (4 problems" in scaling_report(rows, small="p05")


def test_what_ran_says_which_precision_the_seconds_were_spent_in():
    rows = [{**_row("a", "pool", 16, None), "seconds": 3600, "precision": {"policy": "bfloat16"}},
            {**_row("b", "pool", 16, None), "seconds": 7200, "precision": {"policy": "float32 + int8 weights"}},
            {**_row("c", "pool", 16, None), "seconds": 1800}]  # a row from before the sweep recorded it
    md = what_ran_markdown(rows)
    assert "3.50 CPU-hours" in md
    assert ("The policy ran in bfloat16 for 1.00 h; float32 + int8 weights for 2.00 h; unrecorded for 0.50 h"
            in md)
    assert "ran in" not in what_ran_markdown(rows[2:])  # nothing recorded: no claim either way


def test_search_time_counts_overlapping_runs_once():
    # four problems at once: each run's seconds span the same wall hour (turns waited for included)
    together = [{**_row(p, "beam", 16, True), "seconds": 3600, "time": "2026-12-02T13:00:00+00:00"} for p in "abcd"]
    later = {**_row("e", "beam", 16, True), "seconds": 1800, "time": "2026-12-02T15:00:00+00:00"}  # on its own
    half = {**_row("f", "beam", 4, True), "seconds": 3600, "time": "2026-12-02T13:30:00+00:00"}  # half overlaps
    assert busy_seconds(together) == 3600
    assert busy_seconds(together + [later, half]) == 3600 + 1800 + 1800
    md = what_ran_markdown(together + [later])
    assert "Search time in all: 1.50 CPU-hours (2 cores)" in md and "add up to 4.50 h" in md
    assert "add up to" not in what_ran_markdown([later])  # one run at a time: nothing to explain


def test_probe_agreement_groups_equivalent_answers_as_the_vote_does():
    # the 0.5B writes "10 + 8" for 18: the vote counts it with "18", and so does the agreement
    assert probe_agreement(["18", "10 + 8", "x - 8", "8"]) == 0.5
    assert probe_agreement(["6", "6", "10", "8 - 2"]) == 0.75
    assert probe_agreement([None, None, "3", "4"]) == 0.25  # no answer never agrees


def _ablation_rows():
    """Easy problems (pass@1 0.8, probes agree) that the cheap vote solves and hard ones (0.05, probes
    all differ) that only the dearer beam solves; the verifier scores every probe 0.5 (no signal)."""
    rows = []
    for split in ("val", "test"):
        for i in range(4):
            for kind, oracle in (("e", 0.8), ("h", 0.05)):
                pid, easy = f"{split}-{kind}{i}", kind == "e"
                answers = ["7"] * 4 if easy else ["1", "2", "3", "4"]
                rows.append({**_row(pid, "pool", 4, None, split=split, oracle=oracle), "scores": [0.5] * 4,
                             "answers": answers})
                for n in (1, 4):
                    rows.append(_row(pid, "majority", n, easy, split=split, oracle=oracle))
                    rows.append(_row(pid, "beam", n, not easy, split=split, oracle=oracle, flops=2e9))
                rows.append(_row(pid, "auto", 4, easy, split=split, oracle=oracle))
    return rows


def test_lookup_ablation_separates_a_useless_estimate_from_a_useful_one():
    abl = {(a["estimate"], a["bins"]): a for a in table_lookup_ablation(_ablation_rows(), policy="p05")}
    # a score that ranks nothing puts every problem in one bin: the table takes the cheaper of two
    # strategies tied at 4 of 8 on validation (the vote) and gets the hard half wrong
    assert abl[("mean probe score", "3 quantile bins")]["accuracy"] == {1: 0.5, 4: 0.5}
    assert abl[("none", "one bin")]["accuracy"][4] == 0.5
    # agreement and oracle pass@1 split easy from hard: vote on easy, beam on hard, all 8 held-out right
    assert abl[("probe agreement", "3 quantile bins")]["accuracy"] == {1: 1.0, 4: 1.0}
    assert abl[("oracle pass@1", "absolute (easy/medium/hard)")]["accuracy"][4] == 1.0
    assert abl[("oracle pass@1", "3 quantile bins")]["n"][4] == 8
    md = lookup_ablation_markdown(_ablation_rows(), policy="p05")
    assert "| probe agreement | 3 quantile bins | 1.000 | 1.000 |" in md
    assert "| auto as run (probes paid, mean probe score) | 5 quantile bins | - | 0.500 |" in md
    assert "Where auto's gap comes from" in scaling_report(_ablation_rows(), small="p05")


def _qrow(pid, verifier, strategy, n, correct, policy="p"):
    return {"problem_id": pid, "split": "test", "policy": policy, "verifier": verifier, "strategy": strategy,
            "params": {}, "budget": n, "correct": correct, "status": "done", "seed": 0}


def test_quality_figure_draws_accuracy_at_16_against_the_oracle_auroc():
    from tts_viz.viz.scaling import quality_curves, quality_figure, quality_markdown, rows_for_verifier, verifiers_in

    rows = []
    for pid in ("a", "b", "c", "d"):
        rows.append(_qrow(pid, "arith", "best-of-n", 16, pid == "a"))  # the real verifier: not on the AUROC axis
        rows.append(_qrow(pid, "oracle", "best-of-n", 16, True))
        rows.append(_qrow(pid, "oracle@0.6", "best-of-n", 16, pid in ("a", "b")))
        for v in ("oracle", "oracle@0.6"):
            rows.append(_qrow(pid, v, "majority", 16, pid != "d"))
    rows.append(_qrow("e", "oracle", "best-of-n", 16, False))  # only one level ran it: left out of the pairing
    curves = quality_curves(rows, "test", "p", 16)
    assert {q: (c["accuracy"], c["n"]) for q, c in curves["best-of-n"].items()} == {1.0: (1.0, 4), 0.6: (0.5, 4)}
    assert curves["majority"][0.6]["accuracy"] == 0.75
    fig = quality_figure(rows, "test", "p")
    bon = next(t for t in fig.data if t.name == "best-of-n")
    assert list(bon.x) == [0.6, 1.0] and list(bon.y) == [0.5, 1.0]
    assert verifiers_in(rows, "p") == ["arith", "oracle@0.6", "oracle"]
    md = quality_markdown(rows, "test", "p")
    assert md.index("oracle at AUROC 0.6") < md.index("exact oracle")
    big = _qrow("a", "none", "majority", 1, True, policy="big")
    kept = rows_for_verifier(rows + [big], "oracle@0.6", "p")
    assert big in kept and {r["verifier"] for r in kept if r["policy"] == "p"} == {"oracle@0.6"}


def test_empty_bins_are_named_and_a_second_policy_gets_its_own_colour():
    rows = _rows()  # test problems at pass@1 0.8 and 0.05 only
    bins = QuantileBins(edges=[0.02, 0.3, 0.6, 0.9])  # 5 bins: 1 (>= 0.9) .. 5 (< 0.02)
    fig = scaling_figure(rows, split="test", binning=bins)
    assert "no problem of this split fell in 1, 3, 5" in fig.layout.title.text
    rows += [_row("e0", "majority", 1, True, policy="p15"), _row("e0", "majority", 1, True, policy="p05")]
    lines = {t.name: t for t in flops_figure(rows, split="test").data}
    a, b = lines["p05: majority"], lines["p15: majority"]
    assert a.line.color != b.line.color and a.line.dash != b.line.dash and a.marker.symbol != b.marker.symbol


def test_two_verifiers_in_one_results_file_are_reported_apart_and_side_by_side_on_shared_problems(tmp_path, capsys):
    """The prm re-run sits beside the arith study in results.jsonl: scaling-report shows one verifier's
    rows (the one with the most problems unless told), and --against compares the two on the problems
    both ran, never mixing their rows into one cell."""
    import json

    from tts_viz.cli import main
    from tts_viz.viz.scaling import study_verifier, verifier_pair_markdown

    rows = []
    for pid in ("a", "b", "c", "d"):
        rows.append(_qrow(pid, "arith", "weighted-best-of-n", 16, pid == "a", policy="qwen2.5-coder-0.5b"))
    for pid in ("a", "b"):
        rows.append(_qrow(pid, "prm", "weighted-best-of-n", 16, True, policy="qwen2.5-coder-0.5b"))
    assert study_verifier(rows, "qwen2.5-coder-0.5b") == "arith"
    table = verifier_pair_markdown(rows, "test", "qwen2.5-coder-0.5b", "prm", "arith")
    assert "| weighted-best-of-n | 1.000 / 0.500 (2) |" in table  # a and b only: prm 2/2, arith 1/2
    f = tmp_path / "r.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["scaling-report", "--results", str(f)]) == 0
    out = capsys.readouterr().out
    assert "Verifier of qwen2.5-coder-0.5b: arith" in out and "0.250 (4)" in out  # arith alone: 1 of 4
    assert main(["scaling-report", "--results", str(f), "--verifier", "prm", "--against", "arith"]) == 0
    out = capsys.readouterr().out
    assert "1.000 (2)" in out and "prm / arith on the same problems" in out and "1.000 / 0.500 (2)" in out


def test_a_curve_run_on_few_problems_neither_wins_a_bin_nor_a_flops_match():
    # deepconf reached one of the two easy problems (1.0 on it); weighted-best-of-n 0.5 on both.
    rows = [_row(pid, "weighted-best-of-n", 4, pid == "e0") for pid in ("e0", "e1")]
    rows.append(_row("e0", "deepconf", 4, True, flops=1e8))
    wins = bin_winners(rows, "test")
    assert wins["easy"][4] == {"best": ["weighted-best-of-n"], "accuracy": 0.5, "n": 2}
    big = [_row(pid, "majority", 1, True, policy="big", flops=1e10) for pid in ("e0", "e1")]
    [m] = flops_matched([{**r, "policy": "small"} for r in rows] + big, "small", "big")
    assert m["small"] == "weighted-best-of-n@4" and m["small_accuracy"] == 0.5
