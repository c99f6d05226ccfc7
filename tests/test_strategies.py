"""Each strategy's logic, proved with a scripted policy and a verifier that reads scores from the text."""

from __future__ import annotations

import re
import threading

import pytest

from tests.fakes import ScriptedPolicy, TaggedVerifier, tagged_score
from tts_viz.runner import RunConfig, RunError, iter_search, run_search
from tts_viz.strategies.base import SearchConfig
from tts_viz.trace import CANCELLED, DONE, FINISHED, KEPT, PRUNED, SELECTED, Trace

Q = "What is one half?"


def run(strategy, policy, n=8, width=4, verifier=None, gold=None, **search):
    cfg = RunConfig(question=Q, gold=gold, strategy=strategy, verifier="arith",
                    search=SearchConfig(n=n, width=width, **search))
    return run_search(cfg, policy=policy, verifier=verifier if verifier is not None else TaggedVerifier())


# ---------------------------------------------------------------------------------------------
# beam search


def beam_step(steps, i, call_no):
    """Round 0: 8 first steps scored 0.0..0.7. Round 1: children compete across parents.
    Round 2: every child finishes; the 0.9 branch says 1/2 (four weak votes), the 0.85 branch
    has one strong '7' and three other numbers."""
    depth = len(steps)
    if depth == 0:
        return f"first-{i} [0.{i}]"
    if depth == 1:
        parent = int(re.search(r"first-(\d)", steps[0]).group(1))
        table = {7: [0.9, 0.1, 0.2, 0.3], 6: [0.8, 0.85, 0.05, 0.1]}
        return f"mid-{parent}-{i % 4} [{table[parent][i % 4]}]"
    if "[0.9]" in steps[1]:
        return f"so \\boxed{{{['1/2', '0.5', '1/2', '0.5'][i % 4]}}} [0.4]"
    return f"so \\boxed{{{['7', '8', '9', '10'][i % 4]}}} [{[0.95, 0.9, 0.9, 0.9][i % 4]}]"


def test_beam_keeps_exactly_top_n_over_m_and_prunes_the_rest():
    policy = ScriptedPolicy(beam_step)
    trace = run("beam", policy, n=8, width=4, gold="0.5")
    assert trace.status == DONE
    first = trace.children(0)
    assert len(first) == 8
    kept = sorted(n.text for n in first if n.status == KEPT)
    assert kept == ["first-6 [0.6]", "first-7 [0.7]"]  # top N/M = 2 of 8
    assert sum(n.status == PRUNED for n in first) == 6
    # Round 1: the 8 children of both survivors compete together; 0.9 and 0.85 survive.
    second = [n for n in trace.nodes if n.depth == 2]
    assert len(second) == 8
    assert sorted(tagged_score(n.text) for n in second if n.status == KEPT) == [0.85, 0.9]
    assert all("pruned: rank" in n.reason for n in second if n.status == PRUNED)
    # Pruned nodes are never expanded.
    pruned_ids = {n.id for n in trace.nodes if n.status == PRUNED}
    assert not any(n.parent in pruned_ids for n in trace.nodes)
    # One batched generate call per round, N candidates each.
    assert [len(c["partials"]) for c in policy.calls] == [8, 8, 8]


def test_beam_answers_by_weighted_vote_over_finished_beams():
    trace = run("beam", ScriptedPolicy(beam_step), n=8, width=4, gold="0.5")
    # Weighted: 1/2 and 0.5 are one answer worth 4 x 0.4 = 1.6 > 0.95 for '7'.
    assert trace.final_answer in ("1/2", "0.5")
    assert trace.correct is True
    sel = trace.selected()
    assert sel is not None and sel.status == SELECTED and sel.depth == 3
    assert len(trace.finished()) == 8
    assert trace.selected_path_ids() == {0} | {n.id for n in trace.path(sel.id)}


# ---------------------------------------------------------------------------------------------
# best-of-N family


def pool_solutions(i, call_no, prev):
    answers = [("1/2", 0.4), ("0.5", 0.4), ("3", 0.7), ("4", 0.1)]
    a, s = answers[i % 4]
    return ["think [0.5]", f"thus \\boxed{{{a}}} [{s}]"]


@pytest.mark.parametrize(
    "strategy,expected",
    [("weighted-best-of-n", {"1/2", "0.5"}), ("best-of-n", {"3"}), ("majority", {"1/2", "0.5"})],
)
def test_selection_rules(strategy, expected):
    policy = ScriptedPolicy(None, solution_fn=pool_solutions)
    trace = run(strategy, policy, n=4, width=1, gold="1/2")
    assert trace.final_answer in expected
    assert len(trace.leaves()) == 4
    assert policy.calls == [{"kind": "solutions", "count": 4, "previous": None}]  # one batched call


def test_weighted_sums_equivalent_answers():
    # 1/2 (0.4) + 0.5 (0.4) = 0.8 beats a single 3 (0.7): only if "1/2" and "0.5" are grouped.
    trace = run("weighted-best-of-n", ScriptedPolicy(None, solution_fn=pool_solutions), n=4, width=1)
    assert "0.800" in trace.selected().reason


# ---------------------------------------------------------------------------------------------
# DVTS


def dvts_step(steps, i, call_no):
    if not steps:
        sub = i // 4
        score = 0.9 + i % 4 / 100 if sub == 0 else 0.1 + i % 4 / 100
        return f"s{sub}-c{i % 4} [{score:.2f}]"
    sub = int(steps[0][1])
    if len(steps) == 2:
        return f"s{sub} \\boxed{{{sub}}} [0.5]"
    score = 0.95 if sub == 0 else 0.2 + i % 4 / 100
    return f"s{sub}-d{len(steps)}-c{i % 4} [{score:.2f}]"


def test_dvts_subtrees_are_independent():
    policy = ScriptedPolicy(dvts_step)
    trace = run("dvts", policy, n=8, width=4)
    first = trace.children(0)
    assert len(first) == 8
    # Subtree 1's steps score far below subtree 0's, yet it keeps its own best: one survivor each.
    kept = [n for n in first if n.status == KEPT]
    assert sorted(n.text for n in kept) == ["s0-c3 [0.93]", "s1-c3 [0.13]"]
    for n in trace.nodes[1:]:
        assert n.chain == int(trace.path(n.id)[0].text[1])  # never crosses subtrees
        if n.parent:
            assert trace.nodes[n.parent].chain == n.chain
    # Each round: one generate call with M proposals per live subtree.
    assert [len(c["partials"]) for c in policy.calls] == [8, 8, 8]
    finals = [n for n in trace.finished()]
    assert sorted(n.answer for n in finals) == ["0", "1"]


# ---------------------------------------------------------------------------------------------
# lookahead


def lookahead_step(steps, i, call_no):
    if not steps:
        return ["A [0.9]", "B [0.2]"][i % 2]
    if len(steps) == 1:  # the greedy rollout step: A leads nowhere, B is promising
        return "after A [0.1]" if steps[0].startswith("A") else "after B [0.8]"
    return "\\boxed{1} [0.5]"


def test_lookahead_scores_candidates_by_their_rollout():
    policy = ScriptedPolicy(lookahead_step)
    trace = run("lookahead", policy, n=2, width=2, lookahead=1, max_rounds=1)
    first = trace.children(0)
    kept = [n for n in first if n.status != PRUNED]
    assert [n.text for n in kept] == ["B [0.2]"]
    assert [n.text for n in first if n.status == PRUNED] == ["A [0.9]"]
    assert kept[0].step_score == pytest.approx(0.8)
    assert kept[0].extra["lookahead"] == ["after B [0.8]"]
    assert policy.calls[1]["temperature"] == 0.0  # rollouts are greedy


# ---------------------------------------------------------------------------------------------
# revisions


def revision_solutions(i, call_no, prev):
    return [f"chain {i} attempt {call_no} saw {len(prev)} [0.5]", f"\\boxed{{{call_no}}} [0.{call_no + 1}]"]


def test_revisions_see_earlier_attempts_of_their_own_chain():
    policy = ScriptedPolicy(None, solution_fn=revision_solutions)
    trace = run("revisions", policy, n=6, width=1, revision_length=3)
    assert len(policy.calls) == 3  # one batched call per attempt round
    assert policy.calls[0]["previous"] is None
    for call_no in (1, 2):
        previous = policy.calls[call_no]["previous"]
        assert len(previous) == 2  # two chains
        for chain, attempts in enumerate(previous):
            assert len(attempts) == call_no
            assert all(f"chain {chain} attempt" in a for a in attempts)
            assert [f"attempt {k} " in a for k, a in enumerate(attempts)] == [True] * call_no
    assert len(trace.revisions) == 4  # 2 chains x (3 - 1) links
    for link in trace.revisions:
        src, dst = trace.node(link.src), trace.node(link.dst)
        assert src.chain == dst.chain == link.chain and dst.attempt == src.attempt + 1
    assert trace.final_answer == "2"  # latest attempts score highest


# ---------------------------------------------------------------------------------------------
# cancellation, progress, validation


def test_cancel_keeps_the_partial_tree():
    policy = ScriptedPolicy(beam_step, cancel_after_calls=2)
    cfg = RunConfig(question=Q, strategy="beam", verifier="arith", search=SearchConfig(n=8, width=4))
    cancel = threading.Event()
    trace = run_search(cfg, policy=policy, verifier=TaggedVerifier(), cancel=cancel)
    assert trace.status == CANCELLED
    assert len(trace.nodes) == 1 + 8 + 8  # two rounds done, the third never started
    assert trace.final_answer is None
    assert Trace.from_json(trace.to_json()).status == CANCELLED


def test_progress_streams_one_snapshot_per_round():
    cfg = RunConfig(question=Q, strategy="beam", verifier="arith", search=SearchConfig(n=8, width=4))
    snaps = list(iter_search(cfg, policy=ScriptedPolicy(beam_step), verifier=TaggedVerifier()))
    assert [len(s.nodes) for s in snaps] == [1, 9, 17, 25, 25]  # the root first, then one per round
    assert snaps[-1].status == DONE and snaps[0].status != DONE


@pytest.mark.parametrize(
    "kw,msg",
    [
        (dict(question="   "), "empty"),
        (dict(question="x" * 5000), "limit"),
        (dict(question=Q, strategy="nope"), "Unknown strategy"),
        (dict(question=Q, search=SearchConfig(n=0)), "Budget N"),
        (dict(question=Q, search=SearchConfig(n=4, width=8)), "width"),
        (dict(question=Q, strategy="beam", verifier="none"), "pick a verifier"),
    ],
)
def test_bad_requests_get_clear_messages(kw, msg):
    with pytest.raises(RunError, match=msg):
        RunConfig(**kw).validate()


def test_trace_round_trips_through_json():
    trace = run("beam", ScriptedPolicy(beam_step), n=8, width=4, gold="0.5")
    again = Trace.from_json(trace.to_json())
    assert again.to_dict() == trace.to_dict()
    assert again.compute["policy"].generated_tokens == trace.compute["policy"].generated_tokens > 0
    g = again.to_networkx()
    assert g.number_of_nodes() == len(trace.nodes) and g.number_of_edges() == len(trace.nodes) - 1


def test_early_stop_vote_stops_exactly_when_the_leader_cannot_be_caught():
    """Batches of 2, budget 8. All agree: after 2 batches the leader has 4 votes, 4 samples are left (a
    4-4 tie is still possible): go on; after 3 batches 6 > 0 + 2: stop, 6 of 8 spent."""
    from tts_viz.strategies.early_stop_vote import leader_cannot_be_caught

    policy = ScriptedPolicy(lambda *a: "", solution_fn=lambda i, call, prev: ["\\boxed{7}"])
    t = run("early-stop-vote", policy, n=8, width=2)
    stop = t.root.extra["early_stop"]
    assert [c["count"] for c in policy.calls] == [2, 2, 2]
    assert stop["spent"] == 6 and stop["stopped_early"] and stop["leader"] == "7"
    assert t.final_answer == "7" and len(t.finished()) == 6
    # split votes: never decided early, the whole budget is spent
    split = ScriptedPolicy(lambda *a: "", solution_fn=lambda i, call, prev: [f"\\boxed{{{i % 2}}}"])
    t2 = run("early-stop-vote", split, n=8, width=2)
    assert t2.root.extra["early_stop"]["spent"] == 8 and not t2.root.extra["early_stop"]["stopped_early"]
    assert leader_cannot_be_caught([3, 1], 1) and not leader_cannot_be_caught([3, 1], 2)
    assert leader_cannot_be_caught([1], 0) and not leader_cannot_be_caught([2, 2], 0)
    # the sweep's replay of the rule on a pool of whole samples stops where the live runs did
    from tts_viz.strategies.early_stop_vote import samples_drawn

    assert samples_drawn(["7"] * 8, 8, 2) == 6 and samples_drawn(["0", "1"] * 4, 8, 2) == 8
    from tts_viz.viz import summary_html

    assert "6 of 8" in summary_html(t)


def test_early_stop_vote_with_a_posterior_rule_stops_sooner_than_the_exact_one():
    """All samples agree, batches of 2, budget 16. Exact rule: 10 > 0 + 6 after 5 batches. Beta rule at
    0.95: after 2 votes P = 1 - 1/2^3 = 0.875, after 4 votes 1 - 1/2^5 = 0.969: stop at 4."""
    from tts_viz.strategies.early_stop_vote import leader_probability, samples_drawn

    assert leader_probability(0, 0) == 0.5 and leader_probability(3, 0) == 15 / 16
    assert leader_probability(6, 1) == pytest.approx(247 / 256)  # P(Binomial(8, 1/2) <= 6)
    agree = lambda: ScriptedPolicy(lambda *a: "", solution_fn=lambda i, call, prev: ["\\boxed{7}"])
    exact = run("early-stop-vote", agree(), n=16, width=2)
    beta = run("early-stop-vote", agree(), n=16, width=2, vote_confidence=0.95)
    assert exact.root.extra["early_stop"]["spent"] == 10 and beta.root.extra["early_stop"]["spent"] == 4
    assert "posterior probability 0.969" in beta.root.extra["early_stop"]["why"] and beta.final_answer == "7"
    assert samples_drawn(["7"] * 16, 16, 2, 0.95) == 4 and samples_drawn(["7"] * 16, 16, 2) == 10
    # a close vote (3 to 2, then answers of their own) is never settled at 0.95: P = 42/64
    assert samples_drawn(["1", "2", "1", "2", "1"] + [f"9{i}" for i in range(11)], 16, 1, 0.95) == 16


def test_pool_strategies_stream_sample_by_sample_and_keep_sample_order():
    """best-of-n shows each whole sample as it is written (unscored previews with 1, 2, 3, 4 leaves),
    then the scored tree; the final trace holds the samples in sample order."""
    seen = []
    policy = ScriptedPolicy(lambda *a: "", solution_fn=lambda i, call, prev: [f"go [0.{i + 1}]", f"\\boxed{{{i}}}"])
    cfg = RunConfig(question=Q, strategy="best-of-n", verifier="arith", search=SearchConfig(n=4))
    final = run_search(cfg, policy=policy, verifier=TaggedVerifier(),
                       on_progress=lambda t: seen.append((len(t.finished()), t.rounds, t.nodes[-1].step_score)))
    previews = [s for s in seen if s[1] == 0 and s[0]]
    assert [p[0] for p in previews] == [1, 2, 3, 4] and all(p[2] is None for p in previews)
    assert seen[-1][0] == 4 and seen[-1][1] == 1  # the scored round
    assert [n.answer for n in final.finished()] == ["0", "1", "2", "3"]


# ---------------------------------------------------------------------------------------------
# particle filtering


def test_particle_filter_copies_the_heavy_particle_and_never_drops_a_finished_one():
    """Round 0: four first steps, one scored 0.95, two 0.05 and one that already finishes (scored
    0.05, so it would lose any draw). The weights (softmax at T=0.2) put ~99% on the heavy particle:
    resampling copies it into all three open slots, the two light ones are pruned with their weight,
    and the finished one stays a finished solution. Round 1: the heavy node has three children."""
    from tts_viz.strategies.particle_filter import (effective_sample_size, softmax_weights,
                                                    systematic_resample)

    def step(steps, i, call_no):
        if not steps:
            return ["heavy [0.95]", "light-a [0.05]", "light-b [0.05]", "early \\boxed{7} [0.05]"][i]
        return f"then \\boxed{{1/2}} [0.{6 + i}]"

    trace = run("particle-filter", ScriptedPolicy(step), n=4, width=2, gold="1/2")
    first = trace.children(0)
    heavy, light_a, light_b, early = first
    assert heavy.extra["copies"] == 3 and heavy.extra["weight"] > 0.95
    assert light_a.status == PRUNED and light_b.status == PRUNED and "not resampled" in light_a.reason
    assert early.status == FINISHED and early.answer == "7"  # frozen, not resampled away
    assert len(trace.children(heavy.id)) == 3 and not trace.children(light_a.id)
    log = trace.root.extra["resampling"][0]
    assert log["resampled"] and log["slots"] == [heavy.id] * 3 and log["ess"] < 1.5
    assert trace.final_answer == "1/2"  # three weighted votes against one
    # the pieces: weights, ESS, and systematic resampling's floor/ceil of k * w
    w = softmax_weights([0.9, 0.5, 0.5])
    assert w[0] > w[1] == w[2] and abs(sum(w) - 1) < 1e-9
    assert effective_sample_size([0.25] * 4) == pytest.approx(4.0)
    import random
    picks = systematic_resample([0.5, 0.25, 0.25, 0.0], 8, random.Random(0))
    assert [picks.count(i) for i in range(4)] == [4, 2, 2, 0]


def test_particle_filter_keeps_every_particle_while_the_weights_are_even():
    def step(steps, i, call_no):
        return "go [0.5]" if len(steps) < 2 else "so \\boxed{1/2} [0.5]"

    trace = run("particle-filter", ScriptedPolicy(step), n=4, width=2, gold="1/2")
    assert all(not r["resampled"] for r in trace.root.extra["resampling"])
    assert all(len(trace.children(n.id)) == 1 for n in trace.children(0))  # each particle its own line
    assert sum(n.status in (FINISHED, SELECTED) for n in trace.nodes) == 4 and trace.correct


# ---------------------------------------------------------------------------------------------
# MCTS


def test_mcts_follows_uct_and_backpropagates_the_values():
    """Root fans out to 2 steps scored 0.9 and 0.3. Iteration 1: both have one visit, the root two:
    UCT = Q + sqrt(ln 2 / 1) picks the 0.9 child, which gets 2 unfinished children (0.8, 0.2).
    Iteration 2: the good child has 3 visits, Q = 1.9 / 3, UCT 0.633 + sqrt(ln 4 / 3) = 1.313; the
    bad one 0.3 + sqrt(ln 4 / 1) = 1.477: exploration wins, the bad child is expanded, and its two
    children finish the budget of N=2 solutions."""
    import math

    from tts_viz.strategies.mcts import uct

    def step(steps, i, call_no):
        if not steps:
            return ["good [0.9]", "bad [0.3]"][i]
        if steps == ["good [0.9]"]:
            return ["deep-a [0.8]", "deep-b [0.2]"][i]
        return "so \\boxed{1/2} [0.7]"

    trace = run("mcts", ScriptedPolicy(step), n=2, width=2, gold="1/2", max_rounds=3, mcts_evaluation="prm")
    good, bad = trace.children(0)
    assert [k.text for k in trace.children(good.id)] == ["deep-a [0.8]", "deep-b [0.2]"]
    assert "chosen by UCT in iteration 1" in good.reason
    assert uct(1.9 / 3, 3, 4) == pytest.approx(1.9 / 3 + math.sqrt(math.log(4) / 3))
    assert "chosen by UCT in iteration 2" in bad.reason and "= 1.477" in bad.reason
    assert len(trace.children(bad.id)) == 2 and trace.final_answer == "1/2" and trace.correct
    assert good.extra == {**good.extra, "visits": 3, "value": pytest.approx(1.9 / 3, abs=1e-4)}
    assert trace.root.extra["mcts"]["iterations"] == 3 and trace.root.extra["mcts"]["finished"] == 2
    assert uct(0.5, 0, 3) == float("inf")  # an unvisited child goes first
    # the inspector's click-through on a deep node: visits and value of each step on its line, and why
    from tts_viz.viz import inspector_html

    html = inspector_html(trace, trace.children(good.id)[0].id)
    assert "visits · value" in html and "3 · 0.633" in html and "chosen by UCT in iteration 1" in html
    # with no exploration (c = 0) iteration 2 goes back to the better-valued branch instead
    greedy = run("mcts", ScriptedPolicy(step), n=2, width=2, gold="1/2", max_rounds=3, exploration=0.0,
                 mcts_evaluation="prm")
    g_good, g_bad = greedy.children(0)
    assert "chosen by UCT in iteration 2" in greedy.children(g_good.id)[0].reason and not greedy.children(g_bad.id)


def test_mcts_walks_n_over_m_times_an_iteration_and_expands_the_leaves_in_one_call():
    """N=4, M=2: two walks an iteration. The root's 4 children score 0.9, 0.8, 0.3, 0.2 (one visit each,
    the root 4). Walk 1 picks 0.9; its virtual loss makes it 0.45 + sqrt(ln 5 / 2) = 1.347 against
    0.8 + sqrt(ln 5) = 2.069, so walk 2 picks 0.8; both get their 2 steps in ONE call, one scoring call."""
    def step(steps, i, call_no):
        if not steps:
            return ["a [0.9]", "b [0.8]", "c [0.3]", "d [0.2]"][i]
        return "so \\boxed{1/2} [0.7]"

    policy, verifier = ScriptedPolicy(step), TaggedVerifier()
    trace = run("mcts", policy, n=4, width=2, gold="1/2", max_rounds=3, verifier=verifier, mcts_evaluation="prm")
    a, b, c, d = trace.children(0)
    assert [len(call["partials"]) for call in policy.calls] == [4, 4]  # the root's fan-out, then 2 leaves x 2
    assert {tuple(p) for p in policy.calls[1]["partials"]} == {("a [0.9]",), ("b [0.8]",)}
    assert len(verifier.calls) == 2  # one scoring call an iteration
    assert "pick 1 of 2" in a.reason and "pick 2 of 2" in b.reason and "= 2.069" in b.reason
    assert not trace.children(c.id) and c.status == PRUNED
    assert a.extra["visits"] == 3 and trace.root.extra["visits"] == 8  # the real counts carry no virtual loss
    assert trace.root.extra["mcts"]["iterations"] == 2 and trace.final_answer == "1/2"


def test_mcts_backprop_sums_are_exact_after_two_iterations():
    from tts_viz.strategies.mcts import MCTS

    def step(steps, i, call_no):
        if not steps:
            return ["a [0.6]", "b [0.4]"][i]
        return ["x \\boxed{1/2} [1.0]", "y \\boxed{3} [0.0]"][i]

    policy = ScriptedPolicy(step)
    trace = run("mcts", policy, n=2, width=2, gold="1/2", max_rounds=3, mcts_evaluation="prm")
    a, b = trace.children(0)
    # iteration 0 expands the root (2 steps); iteration 1 expands a (UCT 0.6 + c·sqrt(ln 2)), whose two
    # children finish: the budget of N=2 solutions is spent
    assert len(policy.calls) == 2 and [k.text for k in trace.children(a.id)][0].startswith("x")
    assert a.extra["visits"] == 3 and a.extra["value"] == pytest.approx((0.6 + 1.0 + 0.0) / 3, abs=1e-4)
    assert trace.root.extra["visits"] == 4
    assert trace.root.extra["value"] == pytest.approx((0.6 + 0.4 + 1.0 + 0.0) / 4, abs=1e-4)
    assert b.status == PRUNED and "not expanded" in b.reason
    assert trace.final_answer == "1/2"
    assert MCTS.q({7: [2, 1.5]}, 7) == 0.75


def test_mcts_stops_at_n_solutions_worth_of_tokens_not_n_finished_paths():
    """PRM evaluation, N=2, 10 rounds allowed. The 0.9 branch's first child finishes after 2 steps (10
    tokens), so the budget is 2 x 10 = 20 tokens: spent after iteration 1 with one solution, where
    counting finished paths would have gone on expanding the open branch."""
    def step(steps, i, call_no):
        if not steps:
            return ["a [0.9]", "b [0.1]"][i]
        if steps == ["a [0.9]"]:
            return ["so \\boxed{1/2} [0.9]", "more [0.2]"][i]
        return "more [0.5]"

    policy = ScriptedPolicy(step)
    trace = run("mcts", policy, n=2, width=2, gold="1/2", max_rounds=10, mcts_evaluation="prm")
    info = trace.root.extra["mcts"]
    assert (info["iterations"], info["finished"], info["tokens"], info["token_budget"]) == (2, 1, 20, 20)
    assert "spent 20 of 20 tokens" in info["stopped"] and len(policy.calls) == 2
    assert trace.final_answer == "1/2"


def test_mcts_rollouts_complete_each_new_step_and_a_later_walk_branches_off_one():
    """Rollout evaluation, N=3, M=2. Iteration 0: the root fans out to M=2 steps; both are rolled out in
    ONE call, 'a' to 1/2 scored 0.9, 'b' to 7 scored 0.2: their values. 20 tokens spent of 3 x 10.
    Iteration 1: UCT picks 'a' (0.9 + sqrt(ln 2) against 0.2 + sqrt(ln 2)); its 2 new steps finish at
    once (no rollout) with 1/2 scored 0.8: 30 tokens, the budget. The weighted vote: 1/2 (2.5) over 7."""
    def step(steps, i, call_no):
        if call_no == 0:
            return ["a [0.5]", "b [0.5]"][i]
        if call_no == 1:  # the rollouts of a and b, one batched call
            return {"a [0.5]": "a-end \\boxed{1/2} [0.9]", "b [0.5]": "b-end \\boxed{7} [0.2]"}[steps[-1]]
        return f"a2-{i} \\boxed{{1/2}} [0.8]"

    policy = ScriptedPolicy(step)
    trace = run("mcts", policy, n=3, width=2, gold="1/2", max_rounds=4)
    assert [sorted(map(tuple, c["partials"])) for c in policy.calls] == [
        [(), ()], [("a [0.5]",), ("b [0.5]",)], [("a [0.5]",), ("a [0.5]",)]]
    a, b = trace.children(0)
    kids = trace.children(a.id)
    assert [k.text.split()[0] for k in kids] == ["a-end", "a2-0", "a2-1"]
    assert kids[0].extra["rollout"] and not kids[1].extra.get("rollout")  # the rollout stays in the tree
    assert trace.children(b.id)[0].extra == {**trace.children(b.id)[0].extra, "rollout": True, "value": 0.2}
    assert a.extra["visits"] == 3 and a.extra["value"] == pytest.approx((0.9 + 0.8 + 0.8) / 3, abs=1e-4)
    assert b.extra["value"] == pytest.approx(0.2) and "chosen by UCT in iteration 1" in a.reason
    info = trace.root.extra["mcts"]
    assert (info["evaluation"], info["iterations"], info["tokens"], info["token_budget"], info["finished"]) == (
        "rollout", 2, 30, 30, 4)
    assert trace.final_answer == "1/2" and trace.correct
    from tts_viz.viz import summary_html

    assert "<b>30 tokens</b> of 30 (N x the mean finished solution) · 2 iterations, 4 finished" in summary_html(trace)


def test_mcts_rollout_ends_at_max_rounds_as_a_solution_without_an_answer():
    """A rollout that never writes an answer stops at max_rounds steps, closed as 'ran out of steps'."""
    policy = ScriptedPolicy(lambda steps, i, call_no: f"step {len(steps)} [0.4]")
    trace = run("mcts", policy, n=1, width=1, gold="1/2", max_rounds=3)
    (first,) = trace.children(0)
    end = trace.path(max(n.id for n in trace.nodes))[-1]
    assert end.depth == 3 and end.finish_reason == "max_steps" and end.extra["rollout"]
    assert trace.nodes[end.parent].reason.startswith(f"rollout step: sampled to complete step {first.id}")
    assert trace.root.extra["mcts"]["iterations"] == 1 and trace.root.extra["mcts"]["tokens"] == 15


def gibbs_step(steps, i, call_no):
    """Iteration 1 (calls 0, 1): four even first steps; first-0's child is the best finish (0.99, '7'),
    the others finish at 0.5 with '8'. Iteration 2 (calls 2, 3): three fresh first steps, one strong
    (1.0) and two weak; the strong one's copies finish at 0.4 with '9'."""
    if call_no == 0:
        return f"first-{i} [0.3]"
    if call_no == 1:
        return "so \\boxed{7} [0.99]" if steps == ["first-0 [0.3]"] else "so \\boxed{8} [0.5]"
    if call_no == 2:
        return ["fresh-0 [1.0]", "fresh-1 [0.2]", "fresh-2 [0.2]"][i]
    return "so \\boxed{9} [0.4]"


def test_particle_gibbs_keeps_the_reference_through_resampling_and_replays_its_steps():
    from tts_viz.strategies.particle_filter import conditional_resample
    import random as _random

    policy = ScriptedPolicy(gibbs_step)
    t = run("particle-gibbs", policy, n=8)
    info = t.root.extra["gibbs"]
    assert info["iterations"] == 2 and info["particles"] == 4
    # iteration 2 writes only 3 first steps: the 4th particle is the reference, replayed, not rewritten
    assert [len(c["partials"]) for c in policy.calls] == [4, 4, 3, 3]
    ref_leaf = t.node(info["references"][0])
    ref_first = t.node(ref_leaf.parent)
    assert ref_first.text == "first-0 [0.3]" and ref_leaf.extra["reference"] == 1
    # in iteration 2 round 0 the weights are uneven (ESS < half): resampled, and the weak reference
    # (relative weight ~0.1) still kept its slot, where a plain draw would give it none
    log = [e for e in t.root.extra["resampling"] if e["iteration"] == 1]
    assert log[0]["resampled"] and log[0]["reference"] == ref_first.id and ref_first.id in log[0]["slots"]
    assert ref_first.extra["copies"] >= 1 and "reference" in ref_first.reason
    assert sum(1 for s in log[0]["slots"] if t.node(s).text == "fresh-0 [1.0]") == 3
    # the reference's step is not rewritten: first-0 still has exactly one child
    assert len(t.children(ref_first.id)) == 1
    # the vote runs over the last iteration's finished particles: 3 x 0.4 for '9' beat 0.99 for '7'
    assert t.final_answer == "9"
    # iteration 2's rounds follow iteration 1's last one (no gap of max_rounds in the tree's numbering)
    rounds = sorted({n.round for n in t.nodes[1:]})
    assert rounds == list(range(len(rounds))) and log[0]["round"] == 2
    # the inspector's click-through: the reference leaf's line, each step's weight and copies
    from tts_viz.viz import inspector_html

    html = inspector_html(t, ref_leaf.id)
    assert "particle weight · copies" in html and "reference" in html
    rng = _random.Random(0)
    assert all(conditional_resample([0.001, 0.999], 0, rng)[0] == 0 for _ in range(20))
    assert conditional_resample([0.5], 0, rng) == [0]
