"""prm-eval's metrics on a synthetic pool whose right answers are known."""

from __future__ import annotations

import pytest

from tts_viz.study.prm_eval import (
    auroc, build_pool, evaluate, first_error_metrics, predicted_first_error, selection_metrics, true_first_error,
    PoolSpec,
)
from tts_viz.problems import Problem


def test_auroc_counts_pairs_and_ties():
    assert auroc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    # 2 positives x 2 negatives: pairs (0.9>0.3) (0.9>0.6) (0.4>0.3) (0.4<0.6) -> 3/4
    assert auroc([0.9, 0.4, 0.3, 0.6], [True, True, False, False]) == 0.75
    assert auroc([0.1, 0.2], [True, True]) is None


def test_first_error_step_like_processbench():
    assert true_first_error([True, None, False, False], correct=False) == 2
    assert true_first_error([True, None], correct=True) == -1
    assert true_first_error([True, None], correct=False) is None  # wrong, but no located error
    assert predicted_first_error([0.9, 0.4, 0.2]) == 1
    assert predicted_first_error([0.9, 0.8]) == -1
    samples = [
        {"labels": [True, False], "correct": False, "scores": {"v": [0.9, 0.1]}},  # error found at 1
        {"labels": [False, False], "correct": False, "scores": {"v": [0.9, 0.1]}},  # says 1, truth 0
        {"labels": [True, True], "correct": True, "scores": {"v": [0.9, 0.8]}},  # no error: right
        {"labels": [True, None], "correct": False, "scores": {"v": [0.1, 0.1]}},  # unlocated: skipped
    ]
    m = first_error_metrics(samples, "v")
    assert (m["erroneous"], m["correct"]) == (2, 1)
    assert m["acc_erroneous"] == 0.5 and m["acc_correct"] == 1.0
    assert m["f1"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)


def _sample(answer, correct, score):
    return {"answer": answer, "correct": correct, "labels": [None], "scores": {"v": [score]}}


def test_selection_best_weighted_majority_and_pass_rates():
    # problem 1: majority says 5 (wrong, 3 votes), the verifier prefers 7 (right)
    p1 = {"samples": [_sample("5", False, 0.2), _sample("5", False, 0.1), _sample("5", False, 0.2),
                      _sample("7", True, 0.9), _sample("7.0", True, 0.8)]}
    # problem 2: nobody is right
    p2 = {"samples": [_sample("1", False, 0.5), _sample("2", False, 0.6)]}
    m = selection_metrics([p1, p2], "v")
    assert m["majority"] == 0.0  # 5 wins the vote in p1
    assert m["best"] == 0.5 and m["weighted"] == 0.5  # "7" and "7.0" sum to 1.7 > 0.5
    assert m["pass@1"] == pytest.approx((2 / 5 + 0) / 2)
    assert m["pass@n"] == 0.5
    assert selection_metrics([p1], "v", n=3)["pass@n"] == 0.0  # only the first three samples
    # a tied vote goes to the earlier sample whatever the verifier says: the same baseline for all
    p3 = {"samples": [_sample("4", False, 0.1), _sample("9", True, 0.9)]}
    assert selection_metrics([p3], "v")["majority"] == 0.0 and selection_metrics([p3], "v")["best"] == 1.0


def test_evaluate_uses_only_labelled_steps():
    pool = [{"samples": [
        {"answer": "3", "correct": True, "labels": [True, None], "scores": {"v": [0.9, 0.9]}},
        {"answer": "4", "correct": False, "labels": [False, False], "scores": {"v": [0.2, 0.3]}},
    ]}]
    m = evaluate(pool, "v")
    assert m["labelled_steps"] == 3 and m["step_auroc"] == 1.0 and m["solution_auroc"] == 1.0


class _ScriptedPolicy:
    def __init__(self):
        self.calls = 0

    def full_solutions(self, question, count, temperature, seed):
        self.calls += 1
        return [(["2 + 3 = 5", "\\boxed{5}"], 10, "boxed"), (["2 + 3 = 6", "\\boxed{6}"], 10, "boxed")][:count]


def test_pool_is_labelled_cached_and_resumed(tmp_path):
    probs = [Problem(id=f"p{i}", question="What is 2 + 3?", gold="5", source="custom") for i in range(2)]
    policy = _ScriptedPolicy()
    cache = tmp_path / "pool.jsonl"
    pool = build_pool(probs[:1], policy, PoolSpec(policy="fake", samples=2), cache, progress=False)
    assert [s["correct"] for s in pool[0]["samples"]] == [True, False]
    assert [s["labels"] for s in pool[0]["samples"]] == [[True, None], [False, False]]
    pool = build_pool(probs, policy, PoolSpec(policy="fake", samples=2), cache, progress=False)
    assert policy.calls == 2 and len(pool) == 2  # the first problem came from the cache


def test_pool_samples_several_problems_in_one_call(tmp_path):
    from tts_viz.backends.transformers_backend import Generation
    from tts_viz.policy import StepPolicy

    class Backend:
        name, params = "fake", 1

        def __init__(self):
            self.calls = []

        def chat_prompt(self, messages, continuation=""):
            return messages[-1]["content"] + continuation

        def generate(self, prompts, **kw):
            self.calls.append(list(prompts))
            return [Generation(text=f"{p[-1]} + 0 = {p[-1]}\n\n\\boxed{{{p[-1]}}}", tokens=5, finish_reason="eos")
                    for p in prompts]

    backend = Backend()
    probs = [Problem(id=f"p{i}", question=f"Say {i}", gold=str(i), source="custom") for i in range(5)]
    spec = PoolSpec(policy="fake", samples=3, problems_per_call=2)
    assert spec.key("sha") != PoolSpec(policy="fake", samples=3).key("sha")  # another pool, another file
    pool = build_pool(probs, StepPolicy(backend), spec, tmp_path / "pool.jsonl", progress=False)
    assert [len(c) for c in backend.calls] == [6, 6, 3]  # 2 + 2 + 1 problems x 3 samples
    assert [r["id"] for r in pool] == [p.id for p in probs]
    assert all(s["answer"] == r["gold"] and s["correct"] for r in pool for s in r["samples"])


def test_probe_head_fit_separates_and_labels_follow_the_kind():
    import torch

    from tts_viz.study.train_probe import _rows_xy, fit_head

    torch.manual_seed(0)
    x = torch.randn(200, 6)
    y = (x[:, 2] > 0.3).float()  # one informative direction, unbalanced classes
    head = fit_head(x, y, hidden=0, seed=0, epochs=200)
    with torch.inference_mode():
        scores = torch.sigmoid(head(x)).tolist()
    assert auroc(scores, [bool(v) for v in y]) > 0.95
    again = fit_head(x, y, hidden=0, seed=0, epochs=200)  # seeded: the same head
    assert torch.equal(again.net.weight, head.net.weight)
    # outcome labels give every step the solution's correctness; process labels skip unlabelled steps
    rows = [{"id": "p", "samples": [{"correct": True, "labels": [None, True]}, {"correct": False, "labels": [False]}]}]
    feats = {"p": torch.arange(3.0)[:, None]}
    xo, yo = _rows_xy(rows, feats, "outcome")
    xp, yp = _rows_xy(rows, feats, "process")
    assert yo.tolist() == [1.0, 1.0, 0.0] and xo[:, 0].tolist() == [0.0, 1.0, 2.0]
    assert yp.tolist() == [1.0, 0.0] and xp[:, 0].tolist() == [1.0, 2.0]


def test_score_store_reads_back_and_combines_the_arith_veto(tmp_path):
    from tts_viz.study.prm_eval import ScoreStore

    def pool():
        return [{"id": "p0", "question": "q", "samples": [
            {"steps": ["2 + 3 = 5", "\\boxed{5}"]}, {"steps": ["2 + 3 = 6", "\\boxed{6}"]}]}]

    first = pool()
    for s, sc in zip(first[0]["samples"], ([0.4, 0.7], [0.9, 0.6])):
        s["scores"] = {"probe": sc}
    ScoreStore(tmp_path / "pool.jsonl").save(first, "probe", 12.5, fingerprint="w1")
    again = pool()
    store = ScoreStore(tmp_path / "pool.jsonl")  # a later run: read from disk
    assert store.attach(again, "probe", "w2") is None  # a retrained probe scores again
    assert store.attach(again, "probe", "w1") == 12.5
    assert [s["scores"]["probe"] for s in again[0]["samples"]] == [[0.4, 0.7], [0.9, 0.6]]
    assert store.attach_veto(again, "arith+probe", "w1") == 12.5
    assert [s["scores"]["arith+probe"] for s in again[0]["samples"]] == [[0.4, 0.7], [0.0, 0.0]]
    assert store.attach(again, "self-judge") is None  # never scored: the caller scores it
    other = pool()
    other[0]["samples"].append({"steps": ["x"]})  # a different pool shape is not read back
    assert store.attach(other, "probe", "w1") is None


def test_cross_validation_scores_every_problem_out_of_fold():
    import torch

    from tts_viz.study.train_probe import cross_validate

    torch.manual_seed(0)
    rows, feats = [], {}
    for i in range(10):  # feature 0 says whether the sample is right
        samples = [{"steps": ["a", "b"], "answer": str(k), "correct": k == 0, "labels": [None, k == 0]} for k in range(3)]
        rows.append({"id": f"p{i}", "samples": samples})
        feats[f"p{i}"] = torch.cat([torch.tensor([[float(k == 0)] * 2 + [0.0] * 2] * 2) for k in range(3)]) + 0.1 * torch.randn(6, 4)
    res = cross_validate(rows, feats, hidden=0, seed=0, folds=5, weight_decays=(1e-3,))
    assert set(res) == {"outcome-wd0.001", "process-wd0.001"}
    assert res["outcome-wd0.001"]["cv"]["selection"]["weighted"] == 1.0
    assert all("scores" not in s for r in rows for s in r["samples"])  # out-of-fold scores cleaned up


def test_shipped_probe_belongs_to_the_default_policy_and_is_offered():
    from tts_viz.models import DEFAULT_POLICY, EMBEDDED
    from tts_viz.verifiers import VERIFIERS
    from tts_viz.verifiers.probe import load_probe, probe_paths

    weights, card = probe_paths(DEFAULT_POLICY)
    if not weights.is_file():
        pytest.skip("no probe shipped in assets/ (python -m tts_viz train-probe makes one)")
    head, meta = load_probe(DEFAULT_POLICY, EMBEDDED[DEFAULT_POLICY].sha256)  # the pinned GGUF's hash
    assert meta["policy_sha256"] == EMBEDDED[DEFAULT_POLICY].sha256
    assert head.dim == 896 and meta["labels"] in ("outcome", "process")
    assert "probe" in VERIFIERS and "arith+probe" in VERIFIERS
    with pytest.raises(ValueError):
        load_probe(DEFAULT_POLICY, "0" * 64)  # another policy build is refused


def test_shipped_prm_belongs_to_the_default_policy_reads_its_card_features_and_is_offered():
    from tts_viz.models import DEFAULT_POLICY, EMBEDDED
    from tts_viz.verifiers import VERIFIERS
    from tts_viz.verifiers.learned_prm import load_prm, prm_paths
    from tts_viz.verifiers.step_features import ARITH_FEATURES, CONFIDENCE_FEATURES, feature_dim

    weights, _ = prm_paths(DEFAULT_POLICY)
    if not weights.is_file():
        pytest.skip("no PRM shipped in assets/ (python -m tts_viz train-prm makes one)")
    head, card = load_prm(DEFAULT_POLICY, EMBEDDED[DEFAULT_POLICY].sha256)
    assert card["policy_sha256"] == EMBEDDED[DEFAULT_POLICY].sha256 and card["train_problems"] >= 400
    which = card["candidate"]["features"]
    full = feature_dim(896, card["layers"])
    base = {"all": full, "states": full - CONFIDENCE_FEATURES, "confidence": CONFIDENCE_FEATURES}[which.split("+")[0]]
    assert head.dim == base + (ARITH_FEATURES if which.endswith("+arith") else 0)  # the head reads what its card says
    assert card["candidate"]["loss"] in ("pointwise", "pairwise", "listwise") and card["cross_validation"]
    assert "prm" in VERIFIERS and "arith+prm" in VERIFIERS
    with pytest.raises(ValueError):
        load_prm(DEFAULT_POLICY, "0" * 64)


def test_scoring_resumes_after_the_problems_already_stored(tmp_path):
    from tts_viz.study.prm_eval import ScoreStore, score_pool

    def pool():
        return [{"id": f"p{i}", "question": "q", "samples": [{"steps": ["a", "b"]}]} for i in range(3)]

    class Judge:
        calls = 0

        def score(self, question, solutions):
            Judge.calls += 1
            if Judge.calls == 3:
                raise KeyboardInterrupt  # killed while scoring the third problem
            return [[0.5, 0.25] for _ in solutions]

    store = ScoreStore(tmp_path / "pool.jsonl")
    first = pool()
    with pytest.raises(KeyboardInterrupt):
        score_pool(first, "j", Judge(), after_each=lambda row, t: store.save([row], "j", 10.0 + t, "v1"))
    prior, todo = ScoreStore(tmp_path / "pool.jsonl").resume(pool(), "j", "v1")
    assert [r["id"] for r in todo] == ["p2"] and prior >= 10.0  # two problems were saved
    assert ScoreStore(tmp_path / "pool.jsonl").resume(pool(), "j", "v2")[1] == pool()  # another version: all again
    again = pool()
    store2 = ScoreStore(tmp_path / "pool.jsonl")
    _, todo = store2.resume(again, "j", "v1")
    Judge.calls = 10
    score_pool(todo, "j", Judge(), after_each=lambda row, t: store2.save([row], "j", t, "v1"))
    assert all(r["samples"][0]["scores"]["j"] == [0.5, 0.25] for r in again)
    assert ScoreStore(tmp_path / "pool.jsonl").attach(pool(), "j", "v1") is not None  # now complete


def test_within_problem_auroc_is_blind_to_difficulty_knowledge():
    """A verifier that only knows which problem is easy (every sample of the easy problem 0.9, of the
    hard one 0.1) ranks the pool well but no two samples of one problem: 0.5 within, high pooled."""
    from tts_viz.study.prm_eval import evaluate, within_problem_auroc

    def sample(correct, score):
        return {"steps": ["s"], "labels": [None], "answer": "1" if correct else "2", "correct": correct,
                "scores": {"v": [score]}}

    easy = {"id": "easy", "samples": [sample(True, 0.9)] * 3 + [sample(False, 0.9)]}
    hard = {"id": "hard", "samples": [sample(True, 0.1)] + [sample(False, 0.1)] * 3}
    pure = {"id": "pure", "samples": [sample(False, 0.5)] * 4}  # no right sample: not a mixed problem
    pool = [easy, hard, pure]
    within, mixed = within_problem_auroc(pool, "v")
    assert (within, mixed) == (0.5, 2)
    m = evaluate(pool, "v")
    assert m["within_auroc"] == 0.5 and m["mixed_problems"] == 2
    assert m["solution_auroc"] > 0.7
    # a verifier that ranks inside each problem: right samples above wrong ones of the same problem
    easy["samples"] = [sample(True, 0.8)] * 3 + [sample(False, 0.7)]
    hard["samples"] = [sample(True, 0.3)] + [sample(False, 0.2)] * 3
    assert within_problem_auroc(pool, "v") == (1.0, 2)


def test_score_pool_binds_the_oracle_to_each_rows_problem():
    from tts_viz.study.prm_eval import score_pool
    from tts_viz.verifiers import make_verifier

    probs = [Problem(id=f"p{g}", question="What is 2 + 3?", gold=g, source="custom") for g in ("5", "6")]
    rows = [{"id": p.id, "question": p.question, "samples": [{"steps": ["\\boxed{5}"]}, {"steps": ["\\boxed{6}"]}]}
            for p in probs]
    score_pool(rows, "oracle", make_verifier("oracle", problem=probs[0]), problems={p.id: p for p in probs})
    assert [[s["scores"]["oracle"] for s in r["samples"]] for r in rows] == [[[1.0], [0.0]], [[0.0], [1.0]]]
