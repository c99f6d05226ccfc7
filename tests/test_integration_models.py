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


def test_shared_prompt_prefill_gives_the_same_tokens_as_prefilling_every_row(monkeypatch):
    """Prefix reuse (one prefill per distinct prompt, cache copied to its rows) must not change
    what the model writes: greedy output is identical to the plain path, padding included.
    In float32: the int8 layers take another kernel for short inputs, so their last bits differ."""
    monkeypatch.setenv("TTS_VIZ_CPU_QUANT", "none")
    backend = TransformersBackend.from_loaded(models.load_embedded("smollm2-135m", dtype="float32"))
    policy = StepPolicy(backend, max_step_tokens=20)
    short = policy.prompt(QUESTION)
    long = policy.prompt(QUESTION, ["Tom starts with 3 apples.", "He buys 4 more apples at the shop."])
    prompts = [short, long, short, long, long]
    outs = {}
    for share in (False, True):
        backend.share_prompts = share
        gens = backend.generate(prompts, max_new_tokens=20, temperature=0.0, stop=["\n\n"])
        outs[share] = [(g.text, g.tokens, g.finish_reason) for g in gens]
    assert outs[True] == outs[False]
    assert outs[True][0] == outs[True][2] and outs[True][1] == outs[True][3] == outs[True][4]


def test_self_judge_shared_prefix_scores_match_full_prompts(monkeypatch):
    """Scoring with a shared, cached prefix gives the same P(Yes) as a plain prefill of each prompt."""
    monkeypatch.setenv("TTS_VIZ_CPU_QUANT", "none")
    backend = TransformersBackend.from_loaded(models.load_embedded("smollm2-135m", dtype="float32"))
    judge = SelfJudgeVerifier(backend)
    solutions = [["Tom has 3 apples.", "3 + 4 = 7."], ["Tom has 3 apples.", "3 + 4 = 9, a longer wrong step."], ["7"]]
    shared = judge.score_last(QUESTION, solutions)
    plain_logp = backend.next_token_logprobs([judge.judge_prompt(QUESTION, s) for s in solutions])
    import torch

    yes = torch.logsumexp(plain_logp[:, judge.yes_ids], -1)
    no = torch.logsumexp(plain_logp[:, judge.no_ids], -1)
    assert shared == pytest.approx(torch.sigmoid(yes - no).tolist(), abs=1e-3)
