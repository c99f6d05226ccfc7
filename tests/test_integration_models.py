"""The real embedded tiny model, loaded from its PyPI package: one beam round, one self-judge pass."""

from __future__ import annotations

import pytest

from tts_viz import models
from tts_viz.backends.transformers_backend import TransformersBackend
from tts_viz.policy import StepPolicy
from tts_viz.runner import RunConfig, run_search
from tts_viz.strategies.base import SearchConfig
from tts_viz.trace import DONE, Trace
from tts_viz.verifiers import SelfJudgeVerifier

pytestmark = pytest.mark.integration

QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"


@pytest.fixture(scope="module")
def tiny():
    try:
        lm = models.load_embedded("smollm2-135m")
    except models.ModelNotAvailable as e:
        pytest.skip(str(e))
    return lm


def test_one_beam_round_on_the_real_tiny_model(tiny):
    pool = models.ModelPool()
    pool._models["smollm2-135m"] = tiny
    cfg = RunConfig(
        question=QUESTION, gold="7", policy="smollm2-135m", verifier="self-judge", strategy="beam",
        search=SearchConfig(n=4, width=2, max_rounds=1, seed=1), max_step_tokens=24,
    )
    trace = run_search(cfg, pool=pool)
    assert trace.status == DONE, trace.error
    first = trace.children(0)
    assert len(first) == 4  # N first steps from one batched call
    assert all(0.0 <= n.step_score <= 1.0 for n in first)
    assert all(0 < n.tokens <= 24 for n in first)
    assert sum(n.status == "pruned" for n in first if n.finish_reason is None) <= 2
    policy_compute = trace.compute["policy"]
    assert policy_compute.generated_tokens == sum(n.tokens for n in first)
    assert policy_compute.flops == 2 * tiny.params * (policy_compute.prompt_tokens + policy_compute.generated_tokens)
    assert trace.compute["verifier"].prompt_tokens > 0
    assert Trace.from_json(trace.to_json()).to_dict() == trace.to_dict()


def test_self_judge_scores_every_step_in_one_pass(tiny):
    judge = SelfJudgeVerifier(TransformersBackend.from_loaded(tiny))
    solutions = [["3 + 4 = 7.", "The answer is \\boxed{7}."], ["3 + 4 = 9."]]
    scores = judge.score(QUESTION, solutions)
    assert [len(s) for s in scores] == [2, 1]
    assert all(0.0 < x < 1.0 for row in scores for x in row)
    # score_last agrees with the last entry of the full scoring (same prompts, batched differently).
    last = judge.score_last(QUESTION, solutions)
    assert last == pytest.approx([scores[0][-1], scores[1][-1]], abs=2e-2)


def test_greedy_generation_is_reproducible_and_batch_consistent(tiny):
    policy = StepPolicy(TransformersBackend.from_loaded(tiny), max_step_tokens=16)
    a = policy.next_steps(QUESTION, [[], ["3 + 4 = 7."]], temperature=0.0, seed=0)
    b = policy.next_steps(QUESTION, [[], ["3 + 4 = 7."]], temperature=0.0, seed=5)
    assert [r.text for r in a] == [r.text for r in b]
