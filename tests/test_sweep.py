"""The auto strategy end to end (scripted fakes) and the resumable calibration sweep."""

from __future__ import annotations

import json

import pytest

import tts_viz.allocate as allocate
import tts_viz.strategies.auto as auto
import tts_viz.study.sweep as sweep
from tests.fakes import ScriptedPolicy, TaggedVerifier
from tts_viz.allocate import StrategyTable, fit_table
from tts_viz.cli import main
from tts_viz.models import DEFAULT_POLICY
from tts_viz.problems import arith_problem_set
from tts_viz.runner import RunConfig, run_search
from tts_viz.strategies.base import SearchConfig
from tts_viz.study.sweep import SweepConfig, load_results, parse_strategies, run_sweep, split_of
from tts_viz.trace import FINISHED, SELECTED, Trace
from tts_viz.viz.scaling import scaling_report

Q = "What is one half?"


@pytest.fixture(autouse=True)
def no_shipped_tables(tmp_path, monkeypatch):
    """Tests never read the repository's assets/: default table paths point into tmp_path."""
    monkeypatch.setattr(allocate, "ASSETS_DIR", tmp_path / "assets")
    monkeypatch.setattr(auto, "TABLE_PATH", None)
    monkeypatch.setattr(auto, "STRICT", False)


def table_for(choice_by_bin, policy=DEFAULT_POLICY, verifier="arith", budgets=(1, 2, 4, 8)):
    """A table whose absolute bins pick the given strategy (with params) at every budget."""
    rows = []
    for b, (pid, diff) in {"easy": ("e", 0.9), "medium": ("m", 0.3), "hard": ("h", 0.05)}.items():
        for strategy, params in [("majority", {}), ("weighted-best-of-n", {}), ("beam", {"width": 2}),
                                 ("dvts", {"width": 2})]:
            for n in budgets:
                rows.append({"problem_id": pid, "difficulty": diff, "strategy": strategy, "params": params,
                             "budget": n, "correct": (strategy, params) == choice_by_bin[b], "tokens": 1,
                             "flops": 1.0, "policy": policy, "verifier": verifier, "problem_set": "arith",
                             "split": "val"})
    return fit_table(rows, "absolute", split="val")


def solutions(i, call_no, prev):
    # Probe scores 0.05 -> "hard"; later samples carry the right answer with a high score.
    if call_no == 0:
        return ["guess [0.05]", f"\\boxed{{{i + 10}}} [0.05]"]
    return ["work [0.9]", "\\boxed{1/2} [0.9]"]


def steps(path, i, call_no):
    if not path:
        return f"start-{i} [0.{i % 9 + 1}]"
    return "so \\boxed{0.5} [0.8]"


def run_auto(n, policy, **kw):
    search = SearchConfig(n=n, width=min(2, n), **kw)
    cfg = RunConfig(question=Q, gold="1/2", strategy="auto", verifier="arith", search=search)
    return run_search(cfg, policy=policy, verifier=TaggedVerifier())


def test_auto_with_a_pool_choice_reuses_the_probes(tmp_path):
    table_for({"easy": ("majority", {}), "medium": ("majority", {}), "hard": ("weighted-best-of-n", {})}).save(
        allocate.default_table_path(DEFAULT_POLICY, "arith"))
    policy = ScriptedPolicy(steps, solution_fn=solutions)
    trace = run_auto(8, policy)
    assert trace.status == "done", trace.error
    d = trace.decision
    assert d["source"] == "table" and d["bin"] == "hard" and d["estimate"] == pytest.approx(0.05)
    assert d["probes"] == 4 and len(d["probe_ids"]) == 4
    assert d["choice"] == {"strategy": "weighted-best-of-n", "params": {}}
    assert {c["strategy"] for c in d["candidates"]} == {"majority", "weighted-best-of-n", "beam", "dvts"}
    assert all("expected_accuracy" in c for c in d["candidates"])
    assert "part of the weighted-best-of-n pool" in d["probe_use"] and "4 more" in d["probe_use"]
    # The budget: 4 probes + 4 new samples = N whole solutions, two batched calls.
    assert [c["count"] for c in policy.calls] == [4, 4]
    leaves = [n for n in trace.nodes if n.status in (FINISHED, SELECTED)]
    assert len(leaves) == 8
    for pid in d["probe_ids"]:
        assert trace.node(pid).extra.get("probe") is True and trace.node(pid).status in (FINISHED, SELECTED)
    assert trace.final_answer == "1/2" and trace.correct is True
    # The selection ran over probes + new samples: a probe's answer is the runner-up.
    assert "(3.600); next: '10' with 0.050" in trace.selected().reason
    assert Trace.from_json(trace.to_json()).decision == d


def test_auto_majority_counts_the_probes_votes():
    table_for({"easy": ("majority", {}), "medium": ("majority", {}), "hard": ("majority", {})}).save(
        allocate.default_table_path(DEFAULT_POLICY, "arith"))

    def agree(i, call_no, prev):  # probes all say 7; the new samples all differ
        return ["p [0.05]", "\\boxed{7} [0.05]"] if call_no == 0 else ["q [0.9]", f"\\boxed{{{i + 20}}} [0.9]"]

    trace = run_auto(8, ScriptedPolicy(steps, solution_fn=agree))
    assert trace.decision["choice"]["strategy"] == "majority"
    assert trace.final_answer == "7" and "(4 of 8)" in trace.selected().reason


def test_auto_with_beam_spends_probes_on_the_estimate_only():
    table_for({"easy": ("majority", {}), "medium": ("majority", {}), "hard": ("beam", {"width": 2})}).save(
        allocate.default_table_path(DEFAULT_POLICY, "arith"))
    policy = ScriptedPolicy(steps, solution_fn=solutions)
    trace = run_auto(8, policy)
    assert trace.status == "done", trace.error
    d = trace.decision
    assert d["choice"] == {"strategy": "beam", "params": {"width": 2}}
    assert d["run_budget"] == 4 and "spent on the estimate only" in d["probe_use"]
    # Probes: one call of 4 whole solutions; beam: N - 4 = 4 beams.
    assert policy.calls[0] == {"kind": "solutions", "count": 4, "previous": None}
    assert len(policy.calls[1]["partials"]) == 4
    probe_ids = set(d["probe_ids"])
    finished = [n for n in trace.nodes if n.status in (FINISHED, SELECTED)]
    assert len(finished) <= 8  # probes count toward N
    beam_nodes = [n for n in trace.nodes[1:] if not n.extra.get("probe")]
    assert beam_nodes and any(n.text.startswith("start-") for n in beam_nodes)
    sel = trace.selected()
    assert sel.id not in probe_ids and trace.final_answer == "0.5" and trace.correct is True


def test_auto_without_a_table_uses_the_builtin_rule():
    policy = ScriptedPolicy(steps, solution_fn=solutions)
    trace = run_auto(8, policy)
    d = trace.decision
    assert trace.status == "done" and d["source"] == "built-in rule" and "built-in rule" in d["reason"]
    assert d["choice"]["strategy"] == "beam"  # estimate 0.05: hard
    assert d["table"] is None


def test_auto_budget_one_answers_from_the_probe():
    policy = ScriptedPolicy(steps, solution_fn=solutions)
    trace = run_auto(1, policy)
    assert trace.status == "done" and [c["count"] for c in policy.calls] == [1]
    assert trace.decision["choice"]["strategy"] == "weighted-best-of-n" and trace.decision["run_budget"] == 1
    assert "0 more" in trace.decision["probe_use"] and trace.final_answer == "10"


def test_auto_with_another_pairs_table(monkeypatch, tmp_path):
    path = tmp_path / "other.json"
    table_for({"easy": ("majority", {}), "medium": ("majority", {}), "hard": ("majority", {})},
              policy="smollm2-135m", verifier="self-judge").save(path)
    monkeypatch.setattr(auto, "TABLE_PATH", path)
    trace = run_auto(4, ScriptedPolicy(steps, solution_fn=solutions))
    assert trace.status == "done"
    d = trace.decision
    assert d["fallback"]["pair"]["table_policy"] == "smollm2-135m" and "Falling back" in d["note"]
    monkeypatch.setattr(auto, "STRICT", True)
    refused = run_auto(4, ScriptedPolicy(steps, solution_fn=solutions))
    assert refused.status == "error" and "smollm2-135m" in refused.error and DEFAULT_POLICY in refused.error


# ---------------------------------------------------------------------------------------------
# the split


def test_split_is_disjoint_balanced_and_stable():
    small = [(p.id, split_of(p.meta["index"], p.level, 0)) for p in arith_problem_set((1, 2, 3), 10)]
    big = dict((p.id, split_of(p.meta["index"], p.level, 0)) for p in arith_problem_set((1, 2, 3), 30))
    for lv in (1, 2, 3):
        mine = [s for pid, s in small if f"-L{lv}-" in pid]
        assert mine.count("val") == mine.count("test") == 5
    assert all(big[pid] == s for pid, s in small)  # growing --per-level keeps earlier assignments
    other = [split_of(p.meta["index"], p.level, 1) for p in arith_problem_set((1,), 10)]
    assert other != [s for pid, s in small if "-L1-" in pid]  # the seed matters


# ---------------------------------------------------------------------------------------------
# the sweep


class GoldPolicy(ScriptedPolicy):
    """Knows the arith golds so some answers are right: sample i is right when i % 3 == 0."""

    golds = {p.question: p.gold for p in arith_problem_set((1, 2), 4)}

    def __init__(self):
        super().__init__(self._step, solution_fn=self._solution)
        self.q = None
        self.backend.precision = "float32 + int8 weights"  # what the run records, and its rows after it

    def full_solutions(self, question, *a, **kw):
        self.q = question
        return super().full_solutions(question, *a, **kw)

    def next_steps(self, question, *a, **kw):
        self.q = question
        return super().next_steps(question, *a, **kw)

    def _solution(self, i, call_no, prev):
        ans = self.golds[self.q] if i % 3 == 0 else "-1"
        return [f"try [0.{i % 9 + 1}]", f"\\boxed{{{ans}}} [0.{(i * 7) % 9 + 1}]"]

    def _step(self, path, i, call_no):
        return f"\\boxed{{{self.golds[self.q]}}} [0.7]" if path else f"go [0.{i % 9 + 1}]"


class Interrupt(Exception):
    pass


def make_run_fn(calls, stop_after=None):
    def run_fn(cfg):
        if stop_after is not None and len(calls) >= stop_after:
            raise Interrupt("simulated kill")
        calls.append((cfg.question, cfg.strategy, cfg.search.n))
        return run_search(cfg, policy=GoldPolicy(), verifier=TaggedVerifier())
    return run_fn


def sweep_cfg(tmp_path, **kw):
    base = dict(results=str(tmp_path / "runs" / "sweep.jsonl"), levels=(1, 2), per_level=4, split="val",
                strategies=parse_strategies("majority,best-of-n,weighted-best-of-n,beam:width=2"),
                budgets=(1, 2, 4), policy=DEFAULT_POLICY, verifier="arith")
    base.update(kw)
    return SweepConfig(**base)


def test_run_budgets_limit_the_per_budget_strategies_only(tmp_path):
    cfg = sweep_cfg(tmp_path, limit=1, run_budgets=(1, 4))
    calls = []
    run_sweep(cfg, run_fn=make_run_fn(calls), progress=False)
    assert [(s, n) for _, s, n in calls] == [("best-of-n", 4), ("beam", 1), ("beam", 4)]
    rows = load_results(cfg.results)
    assert sorted(r["budget"] for r in rows if r["strategy"] == "majority") == [1, 2, 4]  # pool-based: every budget


def test_greedy_is_majority_at_temperature_zero_run_on_its_own(tmp_path):
    seen = []

    def run_fn(cfg):
        seen.append((cfg.strategy, cfg.search.n, cfg.search.temperature))
        return run_search(cfg, policy=GoldPolicy(), verifier=TaggedVerifier())

    cfg = sweep_cfg(tmp_path, limit=1, budgets=(1, 2), run_budgets=(1,),
                    strategies=parse_strategies("majority,majority:temperature=0"))
    run_sweep(cfg, run_fn=run_fn, progress=False)
    assert seen == [("best-of-n", 2, 0.8), ("majority", 1, 0.0)]
    greedy = [r for r in load_results(cfg.results) if r["params"] == {"temperature": 0.0}]
    assert len(greedy) == 1 and greedy[0]["budget"] == 1 and greedy[0]["effective_params"] == {"temperature": 0.0}


def test_pool_rows_come_from_one_pool_by_subsampling(tmp_path):
    cfg = sweep_cfg(tmp_path, limit=1)
    calls = []
    summary = run_sweep(cfg, run_fn=make_run_fn(calls), progress=False)
    assert summary["problems"] == 1 and summary["runs"] == 1 + 3  # one pool (N=4) + beam at 1, 2, 4
    assert summary["peak_resident_mb"] > 50  # this test process holds torch: tens of MB at the very least
    assert [(s, n) for _, s, n in calls] == [("best-of-n", 4), ("beam", 1), ("beam", 2), ("beam", 4)]
    rows = load_results(cfg.results)
    pool = [r for r in rows if r["strategy"] == "pool"]
    assert len(pool) == 1 and pool[0]["samples"] == 4
    assert pool[0]["oracle_difficulty"] == 0.5  # samples 0 and 3 of 4 are right
    assert pool[0]["predicted_difficulty"] == pytest.approx((0.1 + 0.8 + 0.6 + 0.4) / 4)
    sub = {(r["strategy"], r["budget"]): r for r in rows if r["strategy"] in ("majority", "best-of-n", "weighted-best-of-n")}
    assert len(sub) == 9
    assert sub[("majority", 1)]["correct"] is True and sub[("majority", 1)]["pass_at_n"] is True  # sample 0
    assert sub[("best-of-n", 2)]["correct"] is False  # sample 1 (-1, 0.8) beats sample 0 (0.1)
    assert sub[("best-of-n", 2)]["pass_at_n"] is True
    assert sub[("majority", 1)]["flops"] == pytest.approx(pool[0]["flops"] / 4)  # equal-length samples
    assert sub[("majority", 4)]["flops"] == pytest.approx(pool[0]["flops"])
    beam = [r for r in rows if r["strategy"] == "beam"]
    assert [r["budget"] for r in beam] == [1, 2, 4] and all(r["correct"] for r in beam)
    assert beam[0]["effective_params"] == {"width": 1} and beam[0]["params"] == {"width": 2}
    assert all(r["difficulty"] == pool[0]["difficulty"] and r["split"] == "val" for r in rows)
    assert pool[0]["precision"] == beam[0]["precision"] == {"policy": "float32 + int8 weights"}


def test_early_stop_vote_is_read_off_a_stored_pool_where_the_live_rule_would_stop(tmp_path):
    cfg = sweep_cfg(tmp_path, limit=1, budgets=(1, 4, 16), strategies=parse_strategies("majority"))
    calls = []
    run_sweep(cfg, run_fn=make_run_fn(calls), progress=False)
    assert [(s, n) for _, s, n in calls] == [("best-of-n", 16)]
    # plant the pool's answers: after 12 samples '5' leads 10 to 2 with 4 left, so a batch-4 vote stops
    # there at budget 16; at 4 and 1 it spends what it has (the budget is reached first)
    rows = load_results(cfg.results)
    pool = next(r for r in rows if r["strategy"] == "pool")
    pool.update(answers=["5"] * 5 + ["7", "7"] + ["5"] * 5 + ["7"] * 4, scores=[0.5] * 16,
                sample_correct=[False] * 16, sample_tokens=[10] * 15 + [50], flops=100.0, gold="5")
    with open(cfg.results, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    calls2 = []
    cfg2 = sweep_cfg(tmp_path, limit=1, budgets=(1, 4, 16), strategies=parse_strategies("majority,early-stop-vote"))
    summary = run_sweep(cfg2, run_fn=make_run_fn(calls2), progress=False)
    assert calls2 == [] and summary["runs"] == 0  # nothing sampled again
    esv = {r["budget"]: r for r in load_results(cfg.results) if r["strategy"] == "early-stop-vote"}
    assert {n: r["samples"] for n, r in esv.items()} == {1: 1, 4: 4, 16: 12}
    assert esv[16]["answer"] == "5" and esv[16]["correct"] is True  # the problem's gold read from the pool row
    assert esv[16]["generated_tokens"] == 120 and esv[16]["flops"] == pytest.approx(100.0 * 120 / 200)
    assert esv[16]["effective_params"] == {"width": 4, "vote_confidence": 1.0}
    # a pool row stored before per-sample tokens: shares exact where a rule's row knows them, linear between
    from tts_viz.study.sweep import _prefix_share

    shares = [_prefix_share(k, 16, {4: 40.0, 8: 100.0}, 200.0) for k in (4, 6, 12, 16)]
    assert shares == pytest.approx([0.2, 0.35, 0.75, 1.0])


def test_interrupted_sweep_resumes_without_redoing_finished_problems(tmp_path):
    cfg = sweep_cfg(tmp_path)  # 4 val problems x (1 pool + 3 beam runs) = 16 runs
    calls: list = []
    with pytest.raises(Interrupt):
        run_sweep(cfg, run_fn=make_run_fn(calls, stop_after=6), progress=False)
    assert len(calls) == 6  # problem 1 done (4 runs), problem 2: pool + beam N=1
    rows = load_results(cfg.results)
    finished_q = calls[0][0]
    assert len(rows) == 2 * (1 + 9 + 3) - 2  # problem 2 lacks beam at N=2 and N=4

    # A kill mid-write leaves half a line: ignored on reading, ended cleanly before appending.
    with open(cfg.results, "a") as f:
        f.write('{"problem_id": "arith-L1')

    calls2: list = []
    summary = run_sweep(cfg, run_fn=make_run_fn(calls2), progress=False)
    assert len(calls2) == 16 - 6 and summary["runs"] == 10
    assert all(q != finished_q for q, _, _ in calls2)  # the finished problem is not redone
    assert calls2[:2] == [(calls[4][0], "beam", 2), (calls[4][0], "beam", 4)]  # problem 2 picks up where it stopped
    rows = load_results(cfg.results)
    keys = [sweep.row_key(r) for r in rows]
    assert len(keys) == len(set(keys)) == 4 * 13
    calls3: list = []
    assert run_sweep(cfg, run_fn=make_run_fn(calls3), progress=False)["runs"] == 0 and calls3 == []


def test_sweep_and_fit_table_commands(tmp_path, monkeypatch, capsys):
    calls: list = []
    monkeypatch.setattr(sweep, "default_run_fn", lambda cfg: make_run_fn(calls))
    results = tmp_path / "r.jsonl"
    args = ["--levels", "1-2", "--per-level", "4", "--budgets", "1,2,4", "--verifier", "arith",
            "--strategies", "majority,weighted-best-of-n,beam:width=2", "--results", str(results)]
    assert main(["sweep", "--split", "val", *args]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["problems"] == 4 and out["runs"] == 16 and "majority @1" in out["accuracy"]
    assert main(["fit-table", "--results", str(results), "--binning", "absolute", "--difficulty", "oracle"]) == 0
    fit = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    table = StrategyTable.load(fit["table"])
    assert fit["table"] == str(allocate.default_table_path(DEFAULT_POLICY, "arith"))
    assert table.policy == DEFAULT_POLICY and table.verifier == "arith" and table.fitted_on == "val"
    assert table.difficulty == "oracle" and table.budgets == [1, 2, 4] and table.n_problems == 4
    # The held-out split with auto: it finds the fitted table by its default path.
    args[args.index("--strategies") + 1] = "weighted-best-of-n,auto"
    assert main(["sweep", "--split", "test", *args]) == 0
    rows = [r for r in load_results(results) if r["split"] == "test"]
    auto_rows = [r for r in rows if r["strategy"] == "auto"]
    assert len(auto_rows) == 4 * 3 and {r["problem_id"] for r in rows}.isdisjoint(
        {r["problem_id"] for r in load_results(results) if r["split"] == "val"})
    assert all(r["decision"]["source"] == "table" and r["decision"]["choice"]["strategy"] for r in auto_rows)
    assert all(r["status"] == "done" for r in auto_rows)
    assert {r["table"] for r in auto_rows} == {sweep.auto_decider(table)}

    # A refitted table makes auto's rows stale: the rerun runs auto again (only auto), and the
    # report counts the new rows; the old ones are kept in the file and named as superseded.
    assert main(["fit-table", "--results", str(results), "--binning", "absolute", "--difficulty", "predicted"]) == 0
    refit = StrategyTable.load(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["table"])
    assert refit.fingerprint != table.fingerprint
    calls.clear()
    assert main(["sweep", "--split", "test", *args]) == 0
    # auto is evaluated on each problem's pool: only a chosen search strategy runs, on N - probes
    live = [(r["decision"]["choice"]["strategy"], r["decision"]["run_budget"]) for r in
            allocate.current_rows(load_results(results)) if r["strategy"] == "auto" and "sub_run" in r]
    assert len(calls) <= len(live) and all((s, n) in live for _, s, n in calls)  # no pool, no auto run
    rows = load_results(results)
    current = allocate.current_rows(rows)
    assert len(rows) - len(current) == 12
    assert {r["table"] for r in current if r["strategy"] == "auto"} == {sweep.auto_decider(refit)}
    report = scaling_report(rows)
    assert "12 superseded row(s)" in report
    choices = report.split("**auto's choices:** ")[1].splitlines()[0]
    assert sum(int(c.rsplit(" x", 1)[1]) for c in choices.split("; ")) == 12  # the current table's rows only
    calls.clear()
    assert main(["sweep", "--split", "test", *args]) == 0 and calls == []
    # A new decision rule (same table) re-evaluates auto too; the same choices reuse their live sub-runs.
    monkeypatch.setattr(allocate, "DECISION_RULE", allocate.DECISION_RULE + 1)
    before = len(load_results(results))
    assert main(["sweep", "--split", "test", *args]) == 0
    assert calls == [] and len(load_results(results)) == before + 12


def test_auto_is_evaluated_on_the_pool_the_pool_rules_share(tmp_path):
    # The pool's first samples score 0.1 and 0.8: the probes' mean puts the question in "medium".
    table_for({"easy": ("weighted-best-of-n", {}), "medium": ("majority", {}), "hard": ("beam", {"width": 2})},
              budgets=(1, 2, 4)).save(allocate.default_table_path(DEFAULT_POLICY, "arith"))
    cfg = sweep_cfg(tmp_path, limit=1, split="test", run_budgets=(1, 4),
                    strategies=parse_strategies("majority,weighted-best-of-n,auto"))
    calls = []
    run_sweep(cfg, run_fn=make_run_fn(calls), progress=False)
    assert [(s, n) for _, s, n in calls] == [("best-of-n", 4)]  # the pool; auto drew nothing of its own
    rows = {(r["strategy"], r["budget"]): r for r in load_results(cfg.results)}
    auto4, maj4 = rows[("auto", 4)], rows[("majority", 4)]
    assert auto4["decision"]["choice"]["strategy"] == "majority" and auto4["decision"]["probes"] == 2
    assert auto4["decision"]["estimate"] == pytest.approx((0.1 + 0.8) / 2) and auto4["decision"]["bin"] == "medium"
    # the very samples majority@4 voted over: same answer (a 2-2 tie, won by the higher score), same cost
    assert auto4["answer"] == maj4["answer"] == "-1" and auto4["correct"] is maj4["correct"] is False
    assert auto4["flops"] == pytest.approx(maj4["flops"]) and auto4["evaluated"] == sweep.AUTO_EVAL
    assert "pool's first 2 sample(s)" in auto4["decision"]["probe_use"]
    assert auto4["spent_seconds"] == 0.0 and "sub_run" not in auto4  # the pool row paid for these samples
    assert rows[("auto", 1)]["answer"] == rows[("majority", 1)]["answer"] and rows[("auto", 1)]["correct"] is True


def test_auto_runs_a_chosen_search_on_what_is_left_and_reuses_it_after_a_refit(tmp_path):
    choices = {"easy": ("weighted-best-of-n", {}), "medium": ("beam", {"width": 2}), "hard": ("majority", {})}
    table_for(choices, budgets=(1, 2, 4)).save(allocate.default_table_path(DEFAULT_POLICY, "arith"))
    cfg = sweep_cfg(tmp_path, limit=1, split="test", run_budgets=(4,), strategies=parse_strategies("majority,auto"))
    calls = []
    run_sweep(cfg, run_fn=make_run_fn(calls), progress=False)
    assert [(s, n) for _, s, n in calls] == [("best-of-n", 4), ("beam", 2)]  # beam on 4 - 2 probes
    rows = {(r["strategy"], r["budget"]): r for r in load_results(cfg.results)}
    auto4 = rows[("auto", 4)]
    assert auto4["decision"]["choice"] == {"strategy": "beam", "params": {"width": 2}}
    assert auto4["decision"]["run_budget"] == 2 and auto4["sub_run"]["budget"] == 2
    assert auto4["correct"] is True  # beam's answer, not the pool's (majority@4 is wrong here)
    assert rows[("majority", 4)]["correct"] is False
    # cost: the 2 probes (majority@2's share of the pool) plus the beam run
    assert auto4["flops"] == pytest.approx(rows[("majority", 2)]["flops"] + auto4["sub_run"]["flops"])
    assert auto4["samples"] == 2 + auto4["sub_run"]["samples"]
    assert auto4["spent_seconds"] == auto4["sub_run"]["seconds"] and auto4["sub_run_reused"] is False

    # A refitted table that still picks beam: auto is re-evaluated, the beam run is reused.
    refit = table_for(choices, budgets=(1, 2, 4, 8))
    refit.save(allocate.default_table_path(DEFAULT_POLICY, "arith"))
    calls.clear()
    run_sweep(cfg, run_fn=make_run_fn(calls), progress=False)
    assert calls == []
    current = [r for r in allocate.current_rows(load_results(cfg.results)) if r["strategy"] == "auto"]
    assert len(current) == 1 and current[0]["table"] == sweep.auto_decider(refit)
    assert current[0]["answer"] == auto4["answer"] and current[0]["sub_run"] == auto4["sub_run"]
    assert current[0]["sub_run_reused"] is True and current[0]["spent_seconds"] == 0.0
    # the study's CPU time counts the beam run once, not again for the re-evaluated row
    from tts_viz.viz.scaling import spent_seconds
    assert sum(spent_seconds(r) for r in load_results(cfg.results)) == pytest.approx(
        rows[("pool", 4)]["seconds"] + auto4["sub_run"]["seconds"])


class NestPolicy(GoldPolicy):
    """Parts of a run answer differently from the whole, so reading the wrong part shows.

    DVTS (width 2): subtree 0 keeps "go1" and ends right (score 0.5); subtree 1 keeps "go3" and ends
    wrong (0.9). Revisions: chain 0 is right at attempt 0 (0.5), wrong at attempt 1 (0.8); chain 1 is
    wrong (0.9) at every attempt.
    """

    def _step(self, path, i, call_no):
        if not path:
            return f"go{i} [0.{i + 1}]"
        return f"\\boxed{{{self.golds[self.q]}}} [0.5]" if path[0].startswith("go1") else "\\boxed{-1} [0.9]"

    def _solution(self, i, call_no, prev):
        if i == 0:
            return [f"\\boxed{{{self.golds[self.q]}}} [0.5]"] if not prev else ["\\boxed{-2} [0.8]"]
        return ["\\boxed{-1} [0.9]"]


def test_dvts_and_revisions_read_smaller_budgets_off_their_largest_run(tmp_path):
    calls = []

    def run_fn(cfg):
        calls.append((cfg.strategy, cfg.search.n))
        return run_search(cfg, policy=NestPolicy(), verifier=TaggedVerifier())

    cfg = sweep_cfg(tmp_path, limit=1, budgets=(1, 2, 4),
                    strategies=parse_strategies("majority,dvts:width=2,revisions:revision_length=2"))
    summary = run_sweep(cfg, run_fn=run_fn, progress=False)
    # DVTS@2 is subtree 0 of DVTS@4; DVTS@1 has width 1, no part of it, so it runs. Revisions@4 is
    # 2 chains x 2 attempts: @2 is chain 0, @1 is chain 0's first attempt.
    assert calls == [("best-of-n", 4), ("dvts", 4), ("dvts", 1), ("revisions", 4)] and summary["runs"] == 4
    rows = {(r["strategy"], r["budget"]): r for r in load_results(cfg.results)}
    assert rows[("dvts", 4)]["correct"] is False and "derived_from" not in rows[("dvts", 4)]
    assert rows[("dvts", 2)]["correct"] is True and rows[("dvts", 2)]["derived_from"] == 4
    assert "derived_from" not in rows[("dvts", 1)]
    assert [rows[("revisions", n)]["correct"] for n in (1, 2, 4)] == [True, False, False]
    assert rows[("revisions", 1)]["derived_from"] == rows[("revisions", 2)]["derived_from"] == 4
    # each part is what a run of its own at that budget gives: same answer, samples, tokens generated
    problem = next(p for p, i, g in sweep.load_problems("arith", (1, 2), 4) if sweep.split_of(i, g) == "val")
    for strategy, n in [("dvts", 2), ("revisions", 1), ("revisions", 2)]:
        spec = next(s for s in cfg.strategies if s.name == strategy)
        own = run_search(sweep._run_config(cfg, problem.question, problem.gold, strategy, n, spec.param_dict),
                         policy=NestPolicy(), verifier=TaggedVerifier())
        row = rows[(strategy, n)]
        assert (row["answer"], row["samples"]) == (own.final_answer, len(own.finished())), (strategy, n)
        assert row["generated_tokens"] == own.totals().generated_tokens, (strategy, n)
    assert rows[("dvts", 2)]["flops"] == pytest.approx(rows[("dvts", 4)]["flops"] / 2)  # half the nodes' tokens
    assert rows[("revisions", 1)]["flops"] == pytest.approx(rows[("revisions", 4)]["flops"] / 4)
    # the study's CPU time counts the four runs, not the parts again
    from tts_viz.viz.scaling import spent_seconds
    ran = [("pool", 4), ("dvts", 4), ("dvts", 1), ("revisions", 4)]
    assert sum(spent_seconds(r) for r in rows.values()) == pytest.approx(sum(rows[k]["seconds"] for k in ran))
    # a rerun finds every row and runs nothing
    calls.clear()
    assert run_sweep(cfg, run_fn=run_fn, progress=False)["runs"] == 0 and calls == []


def test_auto_reads_a_chosen_dvts_off_the_problems_own_bigger_run(tmp_path):
    choices = {"easy": ("weighted-best-of-n", {}), "medium": ("dvts", {"width": 2}), "hard": ("majority", {})}
    table_for(choices, budgets=(1, 2, 4)).save(allocate.default_table_path(DEFAULT_POLICY, "arith"))
    cfg = sweep_cfg(tmp_path, limit=1, split="test", run_budgets=(4,),
                    strategies=parse_strategies("majority,dvts:width=2,auto"))
    calls = []
    run_sweep(cfg, run_fn=make_run_fn(calls), progress=False)
    assert [(s, n) for _, s, n in calls] == [("best-of-n", 4), ("dvts", 4)]  # no DVTS@2 run for auto
    rows = {(r["strategy"], r["budget"]): r for r in load_results(cfg.results)}
    auto4, dvts4 = rows[("auto", 4)], rows[("dvts", 4)]
    assert auto4["decision"]["choice"] == {"strategy": "dvts", "params": {"width": 2}}
    sub = auto4["sub_run"]
    assert sub["budget"] == 2 and sub["derived_from"] == 4 and sub["samples"] == 1  # subtree 0 of DVTS@4
    assert sub["flops"] == pytest.approx(dvts4["flops"] / 2)
    assert auto4["spent_seconds"] == 0.0  # DVTS@4's row paid for it
    assert auto4["flops"] == pytest.approx(rows[("majority", 2)]["flops"] + sub["flops"])


def test_bad_sweep_arguments_get_clear_messages():
    with pytest.raises(ValueError, match="Unknown strategy 'nope'"):
        parse_strategies("majority,nope")
    with pytest.raises(ValueError, match="takes no parameters"):
        parse_strategies("majority:width=2")
    with pytest.raises(ValueError, match="key=value"):
        parse_strategies("beam:width")
    assert parse_strategies("beam,revisions:revision_length=2")[0].param_dict == {"width": 4}
    with pytest.raises(ValueError, match="--budgets"):
        sweep.parse_int_list("1,x", "--budgets")
    assert sweep.parse_int_list("1-3,8", "--levels") == [1, 2, 3, 8]


def test_results_writer_follows_a_replaced_file(tmp_path):
    # A git stash / checkout replaces the file (a new inode) while a sweep runs for hours; rows
    # written afterwards must land in the file at the path, not in the deleted one.
    path = tmp_path / "r.jsonl"
    writer = sweep.ResultsWriter(path)
    writer.write({"problem_id": "a"})
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(path.read_bytes())
    copy.replace(path)
    writer.write({"problem_id": "b"})
    assert [r["problem_id"] for r in load_results(path)] == ["a", "b"]


def test_a_pool_is_sampled_once_and_rescored_for_another_verifier(tmp_path):
    """The oracle study's pools: sampled under arith, then re-scored (no new samples) under the oracle,
    whose scores follow each sample's correctness, so best-of-n picks a right sample."""
    traces = str(tmp_path / "pools")
    calls = []
    run_sweep(sweep_cfg(tmp_path, limit=1, pool_traces=traces, strategies=parse_strategies("best-of-n")),
              run_fn=make_run_fn(calls), progress=False)
    assert [(s, n) for _, s, n in calls] == [("best-of-n", 4)]
    calls2 = []
    cfg = sweep_cfg(tmp_path, limit=1, pool_traces=traces, verifier="oracle",
                    strategies=parse_strategies("best-of-n"))
    run_sweep(cfg, run_fn=make_run_fn(calls2), progress=False)
    assert calls2 == []  # nothing sampled again
    rows = [r for r in load_results(cfg.results) if r["verifier"] == "oracle"]
    pool = next(r for r in rows if r["strategy"] == "pool")
    assert pool["scores"] == [1.0 if c else 0.0 for c in pool["sample_correct"]]
    assert pool["rescored"] is True and pool["spent_seconds"] == 0.0  # no sampling was paid for again
    arith_pool = next(r for r in load_results(cfg.results) if r["verifier"] == "arith" and r["strategy"] == "pool")
    assert pool["answers"] == arith_pool["answers"]  # the very same samples
    best = {r["budget"]: r for r in rows if r["strategy"] == "best-of-n"}
    assert best[2]["correct"] is True  # the arith-scored pick at 2 was wrong (see the test above)


def test_problems_run_concurrently_write_the_same_rows(tmp_path):
    """On a model server the sweep keeps several problems in flight; each problem's runs stay in
    order and the rows are those of the one-at-a-time sweep."""
    import dataclasses

    one = sweep_cfg(tmp_path / "a")
    many = dataclasses.replace(sweep_cfg(tmp_path / "b"), concurrency=3)
    calls_one, calls_many = [], []
    s1 = run_sweep(one, run_fn=make_run_fn(calls_one), progress=False)
    s2 = run_sweep(many, run_fn=make_run_fn(calls_many), progress=False)
    assert s1["runs"] == s2["runs"] == 16 and s2["rows_written"] == s1["rows_written"]
    strip = lambda rows: sorted(json.dumps({k: v for k, v in r.items() if k not in ("time", "seconds", "spent_seconds", "concurrency")},
                                           sort_keys=True) for r in rows)
    assert strip(load_results(one.results)) == strip(load_results(many.results))
    by_problem = {}
    for q, s, n in calls_many:
        by_problem.setdefault(q, []).append((s, n))
    assert all(v == [("best-of-n", 4), ("beam", 1), ("beam", 2), ("beam", 4)] for v in by_problem.values())
