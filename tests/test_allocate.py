"""Difficulty bins, the strategy table fit and the allocator's decision, on synthetic results."""

from __future__ import annotations

import json

import pytest

from tts_viz.allocate import (
    AbsoluteBins,
    QuantileBins,
    StrategyTable,
    absolute_bin,
    builtin_decision,
    decide,
    default_table_path,
    fit_table,
    oracle_difficulty,
    predicted_difficulty,
)

POLICY, VERIFIER = "qwen2.5-coder-0.5b", "self-judge"


# ---------------------------------------------------------------------------------------------
# difficulty and binning


def test_difficulty_estimates():
    assert oracle_difficulty(["1/2", "0.5", "3", None], "1/2") == 0.5  # equivalent answers count
    assert oracle_difficulty([], "1") is None
    assert predicted_difficulty([0.2, None, 0.4, float("nan")]) == pytest.approx(0.3)
    assert predicted_difficulty([None]) is None


def test_quantile_bins_edges_and_direction():
    bins = QuantileBins.fit(range(10), k=5)
    assert bins.edges == pytest.approx([1.8, 3.6, 5.4, 7.2])  # linear interpolation, like numpy
    assert bins.k == 5 and bins.labels == ["1", "2", "3", "4", "5"]
    # Bin 1 = easiest = highest value; bin 5 = hardest.
    assert bins.bin(9) == 1 and bins.bin(100) == 1
    assert bins.bin(0) == 5 and bins.bin(-1) == 5
    assert bins.bin(5) == 3
    assert bins.bin(7.2) == 1  # a value on an edge goes to the easier bin
    assert bins.bin(7.19) == 2
    counts = [sum(bins.bin(v) == b for v in range(10)) for b in range(1, 6)]
    assert counts == [2, 2, 2, 2, 2]
    assert [bins.bin(v) for v in sorted(range(10))] == sorted((bins.bin(v) for v in range(10)), reverse=True)


def test_quantile_bins_need_values():
    with pytest.raises(ValueError, match="no difficulty values"):
        QuantileBins.fit([None, None])
    assert QuantileBins.fit([0.3, 0.3, 0.3], k=5).bin(0.3) == 1  # all edges equal: ties go easy


@pytest.mark.parametrize("p,label", [(1.0, "easy"), (0.51, "easy"), (0.5, "medium"), (0.1, "medium"),
                                     (0.099, "hard"), (0.0, "hard")])
def test_absolute_thresholds(p, label):
    assert absolute_bin(p) == label
    assert AbsoluteBins().bin(p) == label


# ---------------------------------------------------------------------------------------------
# table fit


def row(pid, diff, strategy, budget, correct, flops=100.0, tokens=50, params=None, split="val", **kw):
    return {"problem_id": pid, "level": 1, "difficulty": diff, "strategy": strategy, "params": params or {},
            "budget": budget, "correct": correct, "tokens": tokens, "flops": flops, "seconds": 1.0,
            "split": split, "policy": POLICY, "verifier": VERIFIER, "problem_set": "arith", **kw}


def synthetic_rows():
    rows = []
    for pid in ("e1", "e2"):  # easy: pass@1 0.9
        rows += [
            row(pid, 0.9, "majority", 4, True, flops=10),
            row(pid, 0.9, "weighted-best-of-n", 4, True, flops=10, tokens=40),  # same FLOPs, fewer tokens
            row(pid, 0.9, "beam", 4, True, flops=50, params={"width": 2}),
            row(pid, 0.9, "majority", 1, True, flops=3),
            row(pid, 0.9, "beam", 1, pid == "e1", flops=3, params={"width": 1}),
        ]
    for pid in ("h1", "h2"):  # hard: pass@1 0.05, rows only at budget 4
        rows += [
            row(pid, 0.05, "majority", 4, False, flops=10),
            row(pid, 0.05, "weighted-best-of-n", 4, pid == "h1", flops=10),
            row(pid, 0.05, "beam", 4, True, flops=50, params={"width": 2}),
        ]
    rows.append(row("e1", 0.9, "auto", 4, True, flops=1))  # never a candidate
    rows.append(row("t1", 0.05, "majority", 4, True, split="test"))  # held-out: not fitted on
    return rows


def test_fit_picks_best_per_cell_and_ties_to_the_cheaper():
    table = fit_table(synthetic_rows(), "absolute", split="val")
    assert table.policy == POLICY and table.verifier == VERIFIER and table.problem_set == "arith"
    assert table.fitted_on == "val" and table.created and table.budgets == [1, 4]
    assert table.bins == ["easy", "medium", "hard"]
    easy4 = table.cell("easy", 4)
    # Three candidates at accuracy 1.0: beam costs more FLOPs; majority and weighted tie on FLOPs,
    # weighted used fewer tokens.
    assert easy4["choice"] == {"strategy": "weighted-best-of-n", "params": {}}
    assert [c["strategy"] for c in easy4["candidates"]] == ["weighted-best-of-n", "majority", "beam"]
    assert all(c["accuracy"] == 1.0 for c in easy4["candidates"])
    assert {c["strategy"] for c in easy4["candidates"]}.isdisjoint({"auto"})
    hard4 = table.cell("hard", 4)
    assert hard4["choice"] == {"strategy": "beam", "params": {"width": 2}}
    assert hard4["expected_accuracy"] == 1.0
    assert {c["strategy"]: c["accuracy"] for c in hard4["candidates"]} == {
        "beam": 1.0, "weighted-best-of-n": 0.5, "majority": 0.0}
    assert hard4["fallback"] is None and table.cell("easy", 1)["fallback"] is None
    assert table.cell("easy", 1)["choice"]["strategy"] == "majority"  # 1.0 vs beam 0.5
    assert table.n_problems == 4  # the held-out problem is not in the fit
    assert decide(table, 0.9, 4, POLICY, VERIFIER).reason.endswith(
        "It tied with majority and beam (width 2) and won on fewer tokens.")


def test_equal_cost_ties_go_to_the_better_rule_over_all_bins():
    # One easy problem: all three pool rules right at the same cost. The hard problem shows that
    # weighted-best-of-n is the better rule; the easy cell takes it, not the alphabet's best-of-n.
    rows = [row("e1", 0.9, s, 4, True) for s in ("best-of-n", "majority", "weighted-best-of-n")]
    rows += [row("h1", 0.05, s, 4, s == "weighted-best-of-n") for s in ("best-of-n", "majority", "weighted-best-of-n")]
    table = fit_table(rows, "absolute", split="val")
    easy = table.cell("easy", 4)
    assert easy["choice"]["strategy"] == "weighted-best-of-n"
    assert {c["strategy"]: c["pooled_accuracy"] for c in easy["candidates"]} == {
        "weighted-best-of-n": 1.0, "best-of-n": 0.5, "majority": 0.5}
    assert [c["strategy"] for c in easy["candidates"]][1:] == ["best-of-n", "majority"]  # then by name
    assert table.cell("hard", 4)["choice"]["strategy"] == "weighted-best-of-n"
    # The decision ranks its candidates the same way, and its sentence says how the tie was broken.
    dec = decide(table, 0.9, 4, POLICY, VERIFIER)
    assert dec.choice["strategy"] == "weighted-best-of-n"
    assert dec.reason.endswith("It tied with best-of-n and majority and won on its accuracy over all bins "
                               "at that budget (100% against 50%).")
    assert "tied" not in decide(table, 0.05, 4, POLICY, VERIFIER).reason  # a clear winner: no tie words


def test_missing_cells_fall_back_and_say_so():
    table = fit_table(synthetic_rows(), "absolute", split="val")
    hard1 = table.cell("hard", 1)  # hard problems only ran at budget 4
    assert hard1["fallback"]["kind"] == "nearest_budget" and hard1["fallback"]["from_budget"] == 4
    assert hard1["choice"]["strategy"] == "beam"
    medium = table.cell("medium", 4)  # no medium problem at all
    assert medium["fallback"]["kind"] == "global"
    assert medium["choice"] == table.cell(None, 4)["choice"]
    assert any("fall back" in n for n in table.notes)


def test_quantile_fit_uses_per_problem_difficulties():
    rows = [row(f"p{i}", i / 10, "majority", 4, i >= 5) for i in range(10)]
    table = fit_table(rows, "quantile", k=5)
    assert table.binning["kind"] == "quantile" and table.binning["edges"] == pytest.approx([0.18, 0.36, 0.54, 0.72])
    assert table.cell("1", 4)["expected_accuracy"] == 1.0 and table.cell("5", 4)["expected_accuracy"] == 0.0


def test_fit_refuses_mixed_pairs():
    rows = synthetic_rows() + [row("x", 0.5, "majority", 4, True, verifier="arith")]
    with pytest.raises(ValueError, match="mix several verifier"):
        fit_table(rows, "absolute")
    assert fit_table(rows, "absolute", verifier=VERIFIER).verifier == VERIFIER


def test_table_save_load_and_validation(tmp_path):
    table = fit_table(synthetic_rows(), "absolute", split="val")
    path = table.save(default_table_path(POLICY, "self-judge (qwen2.5-coder-1.5b)", tmp_path))
    assert path.name == "strategy_table_qwen2.5-coder-0.5b_self-judge-qwen2.5-coder-1.5b.json"
    again = StrategyTable.load(path)
    assert again.to_dict() == table.to_dict()
    d = json.loads(path.read_text())
    assert {"policy", "verifier", "problem_set", "binning", "fitted_on", "created", "budgets", "cells"} <= set(d)

    def broken(mut):
        dd = json.loads(path.read_text())
        mut(dd)
        p = tmp_path / "bad.json"
        p.write_text(json.dumps(dd))
        return p

    with pytest.raises(ValueError, match="not a tts-viz strategy table"):
        StrategyTable.load(broken(lambda dd: dd.pop("format")))
    with pytest.raises(ValueError, match="'verifier' is missing"):
        StrategyTable.load(broken(lambda dd: dd.pop("verifier")))
    with pytest.raises(ValueError, match="has bin 'extreme'"):
        StrategyTable.load(broken(lambda dd: dd["cells"][0].update(bin="extreme")))
    with pytest.raises(ValueError, match="binning.kind"):
        StrategyTable.load(broken(lambda dd: dd["binning"].update(kind="weird")))
    with pytest.raises(ValueError, match="not valid JSON"):
        (tmp_path / "x.json").write_text("{")
        StrategyTable.load(tmp_path / "x.json")
    with pytest.raises(FileNotFoundError, match="fit-table"):
        StrategyTable.load(tmp_path / "missing.json")


# ---------------------------------------------------------------------------------------------
# decision


def test_decision_lists_every_candidate_the_choice_and_a_sentence():
    table = fit_table(synthetic_rows(), "absolute", split="val")
    dec = decide(table, 0.03, 4, POLICY, VERIFIER)
    assert dec.bin == "hard" and dec.estimate == 0.03 and dec.source == "table"
    assert dec.choice == {"strategy": "beam", "params": {"width": 2}}
    assert dec.expected_accuracy == 1.0
    assert [(c["strategy"], c["expected_accuracy"], c["chosen"]) for c in dec.candidates] == [
        ("beam", 1.0, True), ("weighted-best-of-n", 0.5, False), ("majority", 0.0, False)]
    assert dec.reason.count(".") >= 1 and "hard" in dec.reason and "beam" in dec.reason and "100%" in dec.reason
    assert dec.fallback is None and dec.note is None
    d = dec.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["choice"]["strategy"] == "beam" and len(d["candidates"]) == 3
    assert d["table"]["policy"] == POLICY and d["table"]["fitted_on"] == "val"

    easy = decide(table, 0.8, 6, POLICY, VERIFIER)  # no column for 6: the one for 4
    assert easy.bin == "easy" and easy.table_budget == 4 and "budget 4" in easy.note
    assert easy.choice["strategy"] == "weighted-best-of-n"

    fb = decide(table, 0.03, 1, POLICY, VERIFIER)
    assert fb.fallback["cell"]["kind"] == "nearest_budget" and "no validation results" in fb.note


def test_decision_charges_probes_to_strategies_that_cannot_reuse_them():
    table = fit_table(synthetic_rows(), "absolute", split="val")
    # Easy at N=4 with 2 probes: beam would run on 2 left -> looked up at budget 1 (its accuracy 0.5);
    # the pool strategies keep the probes and are looked up at 4.
    dec = decide(table, 0.9, 4, POLICY, VERIFIER, probes=2)
    by = {c["strategy"] + json.dumps(c["params"]): c for c in dec.candidates}
    beam1 = by['beam{"width": 1}']
    assert beam1["budget"] == 1 and beam1["expected_accuracy"] == 0.5 and not beam1["reuses_probes"]
    beam2 = by['beam{"width": 2}']  # only measured at budget 4: not available with 2 left
    assert beam2["available"] is False and beam2["expected_accuracy"] is None and not beam2["chosen"]
    assert by["majority{}"]["budget"] == 4 and by["majority{}"]["reuses_probes"]
    assert dec.run_budget == 4


def test_other_pair_is_refused_or_falls_back_clearly():
    table = fit_table(synthetic_rows(), "absolute", split="val")
    with pytest.raises(ValueError) as e:
        decide(table, 0.5, 4, "smollm2-135m", "arith", strict=True)
    msg = str(e.value)
    assert POLICY in msg and VERIFIER in msg and "smollm2-135m" in msg and "arith" in msg
    dec = decide(table, 0.5, 4, "smollm2-135m", "arith", strict=False)
    assert dec.fallback["pair"] == {"table_policy": POLICY, "table_verifier": VERIFIER,
                                    "run_policy": "smollm2-135m", "run_verifier": "arith"}
    assert dec.note.startswith("Falling back") and POLICY in dec.note and "smollm2-135m" in dec.note
    assert dec.choice["strategy"]


def test_builtin_rule_follows_the_papers():
    easy = builtin_decision(0.9, 16, probes=4)
    assert easy.source == "built-in rule" and easy.choice["strategy"] == "revisions" and easy.run_budget == 12
    assert builtin_decision(0.9, 4, probes=2).choice["strategy"] == "weighted-best-of-n"
    hard = builtin_decision(0.05, 8, probes=4)
    assert hard.choice == {"strategy": "beam", "params": {"width": 4}} and hard.run_budget == 4
    assert builtin_decision(0.3, 16, probes=4).choice["strategy"] == "weighted-best-of-n"
    assert builtin_decision(0.3, 8, probes=4).choice["strategy"] == "beam"
    one = builtin_decision(0.05, 1, probes=1)  # nothing left after the probe
    assert one.choice["strategy"] == "weighted-best-of-n"
    assert "built-in rule" in one.reason and sum(c["chosen"] for c in one.candidates) == 1


def test_strategies_run_at_fewer_budgets_stay_available_after_the_probes():
    # A sweep runs beam at 1, 4, 16 only. At N=16 with 4 probes, 12 are left: beam is read at 4
    # (the largest budget <= 12 where it was measured), not dropped for lack of a column at 8.
    rows = []
    for pid, beam_right in (("m1", True), ("m2", True)):
        rows += [row(pid, 0.3, "majority", n, False) for n in (1, 2, 4, 8, 16)]
        rows += [row(pid, 0.3, "beam", n, beam_right and n >= 4, params={"width": 4}) for n in (1, 4, 16)]
    table = fit_table(rows, "absolute", split="val")
    dec = decide(table, 0.3, 16, POLICY, VERIFIER, probes=4)
    beam = next(c for c in dec.candidates if c["strategy"] == "beam")
    assert beam["available"] and beam["budget"] == 4 and beam["expected_accuracy"] == 1.0
    assert dec.choice == {"strategy": "beam", "params": {"width": 4}} and dec.run_budget == 12
    assert "measured at budget 4" in dec.reason
    # At N=4 with 2 probes, 2 are left: beam is read at 1, where it was wrong; majority keeps the probes.
    dec4 = decide(table, 0.3, 4, POLICY, VERIFIER, probes=2)
    beam4 = next(c for c in dec4.candidates if c["strategy"] == "beam")
    assert beam4["budget"] == 1 and beam4["expected_accuracy"] == 0.0
    assert beam4["mean_flops"] == pytest.approx(2 * 100.0)  # it would run 2 generations, measured with 1
    # All at 0: the tie goes to the cheaper as each would run (majority 100 FLOPs as measured at 4,
    # beam 2 x 100), not to beam's one-generation measurement.
    assert dec4.choice["strategy"] == "majority"


def test_a_strategy_run_on_few_of_a_cells_problems_does_not_win_it():
    # deepconf reached one of the four easy problems and got it right (1.0); majority got 3 of 4
    # (0.75) on all of them. 1.0 on one problem says nothing against 0.75 on four: majority is chosen.
    rows = [row(pid, 0.9, "majority", 4, pid != "e4") for pid in ("e1", "e2", "e3", "e4")]
    rows.append(row("e1", 0.9, "deepconf", 4, True, flops=5))
    table = fit_table(rows, "absolute", split="val")
    cell = table.cell("easy", 4)
    assert cell["choice"] == {"strategy": "majority", "params": {}}
    assert [(c["strategy"], c["partial"]) for c in cell["candidates"]] == [("majority", False), ("deepconf", True)]
    assert decide(table, 0.9, 4, POLICY, VERIFIER).choice == {"strategy": "majority", "params": {}}
