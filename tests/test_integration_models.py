"""The real embedded tiny model, loaded from its PyPI package: one beam round, one self-judge pass."""

from __future__ import annotations

import pytest

from tts_viz import models
from tts_viz.backends.prefix_cache import PrefixKVStore
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
    # A run starts with an empty prefix store (a new backend per run), so a rerun is the same
    # computation; in a warm store int8 kernels for short inputs differ in the last bits.
    policy.backend.prefix_store.clear()
    b = policy.next_steps(QUESTION, [[], ["3 + 4 = 7."]], temperature=0.0, seed=5)
    assert [r.text for r in a] == [r.text for r in b]


def _fp32_tiny(monkeypatch):
    # float32: the int8 layers take another kernel for short inputs, so their last bits differ.
    monkeypatch.setenv("TTS_VIZ_CPU_QUANT", "none")
    return TransformersBackend.from_loaded(models.load_embedded("smollm2-135m", dtype="float32"))


def test_prefix_reuse_gives_the_same_tokens_as_prefilling_every_prompt(monkeypatch):
    """The prefix store (KV of earlier prompts and generated steps, reused by common token prefix,
    rows right-aligned in one pass) must not change what the model writes: two rounds of greedy
    steps are identical with and without it, and the second round really reuses the first."""
    backend = _fp32_tiny(monkeypatch)
    policy = StepPolicy(backend, max_step_tokens=20)
    partials = [[], ["Tom starts with 3 apples.", "He buys 4 more apples at the shop."], [], ["Tom has 3."]]
    outs = {}
    for reuse in (False, True):
        backend.prefix_store = PrefixKVStore() if reuse else None
        first = policy.next_steps(QUESTION, partials, temperature=0.0, seed=0)
        # round 2 extends every row by its own step: the store holds prompt + step from round 1
        second = policy.next_steps(QUESTION, [p + [r.text] for p, r in zip(partials, first)], temperature=0.0, seed=0)
        outs[reuse] = [(r.text, r.tokens, r.finish_reason) for r in first + second]
        if reuse:
            assert backend.prefix_store.reused_tokens > 0
    assert outs[True] == outs[False]
    assert outs[True][0] == outs[True][2]


def test_decode_loop_writes_what_transformers_generate_writes(monkeypatch):
    """Our decode loop (finished rows leave the batch) against model.generate, greedy, float32."""
    backend = _fp32_tiny(monkeypatch)
    backend.prefix_store = None
    policy = StepPolicy(backend)
    prompts = [policy.prompt(QUESTION), policy.prompt(QUESTION, ["Tom starts with 3 apples."])]
    ours = backend.generate(prompts, max_new_tokens=24, temperature=0.0)
    enc = backend.encode(prompts)
    ref = backend.model.generate(**enc, max_new_tokens=24, do_sample=False, pad_token_id=backend.pad_id,
                                 eos_token_id=backend.eos_ids)[:, enc["input_ids"].shape[1]:]
    for g, row in zip(ours, ref.tolist()):
        assert g.text == backend.tokenizer.decode(row[: g.tokens], skip_special_tokens=True)


def test_prefix_reuse_counts_only_the_tokens_it_runs(monkeypatch):
    backend = _fp32_tiny(monkeypatch)
    policy = StepPolicy(backend, max_step_tokens=12)
    prompt_ids = len(backend._ids([policy.prompt(QUESTION)])[0])
    policy.next_steps(QUESTION, [[], [], []], temperature=0.0, seed=0)  # three rows, one prompt
    # the shared prompt runs once, its cache is copied to the three rows
    assert policy.compute.prompt_tokens == prompt_ids
    assert policy.compute.reused_tokens == 0
    before = policy.compute.prompt_tokens
    policy.next_steps(QUESTION, [["Tom has 3 apples."]], temperature=0.0, seed=0)
    assert policy.compute.reused_tokens >= prompt_ids - 2  # the question came from the store
    assert policy.compute.prompt_tokens - before < 16  # only the new step's tokens ran


def test_self_judge_with_prefix_reuse_matches_plain_prefill(monkeypatch):
    """P(Yes) from prompts that start from stored prefixes equals a plain prefill of each prompt."""
    backend = _fp32_tiny(monkeypatch)
    judge = SelfJudgeVerifier(backend)
    solutions = [["Tom has 3 apples.", "3 + 4 = 7."], ["Tom has 3 apples.", "3 + 4 = 9, a longer wrong step."], ["7"]]
    reused = judge.score(QUESTION, solutions) + [judge.score_last(QUESTION, solutions)]
    assert backend.prefix_store.reused_tokens > 0
    backend.prefix_store = None
    plain = judge.score(QUESTION, solutions) + [judge.score_last(QUESTION, solutions)]
    for a, b in zip(reused, plain):
        assert a == pytest.approx(b, abs=1e-3)


def test_int8_warm_cache_loads_the_same_model_as_quantising(tmp_path, monkeypatch):
    """The int8 warm start (quantised weights saved once, loaded as they are) gives the same
    logits, bit for bit, as loading float weights and quantising them."""
    import torch

    monkeypatch.setenv("TTS_VIZ_CACHE", str(tmp_path))
    monkeypatch.setenv("TTS_VIZ_CPU_QUANT", "int8")
    first = models.load_embedded("smollm2-135m", dtype="float32")
    assert first.source == "gguf" and first.meta["cpu_quant"] == "int8"
    assert list(tmp_path.glob(f"*/*/{models.INT8_CACHE_FILE}"))
    warm = models.load_embedded("smollm2-135m", dtype="float32")
    assert warm.source == "cache"
    ids = first.tokenizer(QUESTION, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        a, b = first.model(ids).logits, warm.model(ids).logits
    assert torch.equal(a, b)
    assert warm.model.generation_config.eos_token_id == first.model.generation_config.eos_token_id


@pytest.mark.parametrize("reuse", [True, False])
def test_trace_token_accounting_matches_the_tokens_the_model_ran(tiny, reuse):
    """prompt + generated tokens in the trace = input positions counted by a forward hook, plus
    one per generated row (its last sampled token is never run)."""
    from tts_viz.study.bench import ForwardTokenCounter

    backend = TransformersBackend.from_loaded(tiny)
    backend.prefix_store = PrefixKVStore() if reuse else None
    policy = StepPolicy(backend, max_step_tokens=16, max_steps=2)
    cfg = RunConfig(question=QUESTION, gold="7", policy="smollm2-135m", verifier="self-judge", strategy="beam",
                    search=SearchConfig(n=4, width=2, max_rounds=2, seed=3), max_step_tokens=16)
    counter = ForwardTokenCounter(backend.model)
    try:
        trace = run_search(cfg, policy=policy, verifier=SelfJudgeVerifier(backend))
    finally:
        counter.close()
    assert trace.status == DONE, trace.error
    p, v = trace.compute["policy"], trace.compute["verifier"]
    rows = len(trace.nodes) - 1
    assert p.prompt_tokens + p.generated_tokens + v.prompt_tokens - rows == counter.tokens
    assert (p.reused_tokens > 0) == reuse


def test_probe_reads_the_policy_state_after_each_step_and_refuses_another_policy(monkeypatch, tmp_path):
    import torch

    from tts_viz.verifiers.probe import ProbeHead, ProbeVerifier, load_probe, save_probe

    backend = _fp32_tiny(monkeypatch)
    policy = StepPolicy(backend)
    torch.manual_seed(0)
    head = ProbeHead(backend.model.config.hidden_size, hidden=8)
    probe = ProbeVerifier(backend, head, policy.prompt)
    solutions = [["Tom has 3 apples.", "3 + 4 = 7."], ["3 + 4 = 9."]]
    scores = probe.score(QUESTION, solutions)
    # reference: a plain forward over the policy prompt ending right after step k's blank line
    backend.prefix_store = None
    for steps, row in zip(solutions, scores):
        for k, got in enumerate(row):
            enc = backend.encode([policy.prompt(QUESTION, steps[: k + 1])])
            assert backend.tokenizer.decode(enc["input_ids"][0, -1:]).endswith("\n")  # the state after the step
            with torch.inference_mode():
                h = backend.model.get_decoder()(**enc).last_hidden_state[:, -1]
                assert got == pytest.approx(torch.sigmoid(head(h)).item(), abs=1e-4)
    assert probe.score_last(QUESTION, solutions) == pytest.approx([r[-1] for r in scores], abs=1e-4)
    save_probe(head, {"policy_sha256": "a" * 64, "labels": "outcome"}, "smollm2-135m", tmp_path)
    again, card = load_probe("smollm2-135m", "a" * 64, tmp_path)
    assert torch.equal(again.net[0].weight, head.net[0].weight) and card["labels"] == "outcome"
    with pytest.raises(ValueError, match="trained on policy weights"):
        load_probe("smollm2-135m", "b" * 64, tmp_path)
    with pytest.raises(ValueError, match="train-probe"):
        load_probe("qwen2.5-coder-0.5b", None, tmp_path)


def test_bench_replay_rebuilds_the_sampled_steps_on_the_re_prefill_path(tiny):
    from tts_viz.study.bench import ReplayBackend

    backend = TransformersBackend.from_loaded(tiny)
    policy = StepPolicy(backend, max_step_tokens=16)
    partials = [[], ["Tom has 3 apples."], []]
    with ReplayBackend(backend) as rec:
        first = policy.next_steps(QUESTION, partials, temperature=1.0, seed=4)
    backend.prefix_store = None
    with ReplayBackend(backend, rec.recorded):
        again = policy.next_steps(QUESTION, partials, temperature=1.0, seed=99)  # another seed: replay decides
    assert [(r.text, r.tokens) for r in again] == [(r.text, r.tokens) for r in first]
    assert "_decode" not in vars(backend)  # the wrapper is gone after the block


def test_bench_beam_replayed_without_the_prefix_store_builds_the_same_tree(tiny):
    """The bench's prefix-reuse comparison: the re-prefill run replays the reuse run's tokens and
    builds the same tree, and the forward hook sees it run far more prompt tokens."""
    from tts_viz.runner import RunConfig
    from tts_viz.strategies.base import SearchConfig
    from tts_viz.study.bench import _replayed_beam

    backend = TransformersBackend.from_loaded(tiny)
    cfg = RunConfig(question=QUESTION, gold="7", policy="smollm2-135m", verifier="arith", strategy="beam",
                    search=SearchConfig(n=4, width=2, seed=0, max_rounds=2), max_step_tokens=16)
    reuse, script, hook_reuse = _replayed_beam(backend, cfg, None, "reuse", count_tokens=True)
    again, _, hook_again = _replayed_beam(backend, cfg, script, "re-prefill", store=False, count_tokens=True)
    assert [n.text for n in again.nodes] == [n.text for n in reuse.nodes] and len(reuse.nodes) > 4
    assert hook_again.tokens > hook_reuse.tokens
    assert backend.prefix_store is None and "_decode" not in vars(backend)


def test_prm_features_reused_after_a_real_generate_round_equal_a_whole_pass(monkeypatch):
    """The trained PRM's features inside a search: after the policy writes a round of steps (its
    generate call leaves their KV in the prefix store, under the ids it sampled), the reusing path runs
    only what the store lacks, and the new step's row equals a whole fresh pass over the same texts
    (as a search scores it: the step the round added, at the end of its path)."""
    import torch

    from tts_viz.trace import ModelCompute
    from tts_viz.verifiers.step_features import FINAL, StepFeatureMemo, step_features, step_features_reusing

    backend = _fp32_tiny(monkeypatch)
    policy = StepPolicy(backend, max_step_tokens=20)
    memo, layers = StepFeatureMemo(), (10, FINAL)
    paths = [[], [], ["Tom has 3 apples."]]
    for _ in range(2):  # two rounds: each path grows by the step the policy just wrote
        steps = policy.next_steps(QUESTION, paths, temperature=1.0, seed=3)
        paths = [p + [s.text.strip() or "..."] for p, s in zip(paths, steps)]
        compute = ModelCompute()
        got = step_features_reusing(backend, policy.prompt, QUESTION, paths, layers, memo, compute=compute)
        assert compute.reused_tokens > 0  # the question and the path so far came from the store
        store, backend.prefix_store = backend.prefix_store, None
        whole = step_features(backend, policy.prompt, QUESTION, paths, layers)
        backend.prefix_store = store
        for p, a, b in zip(paths, got, whole):
            assert a.shape == b.shape == (len(p), b.shape[1])
            assert torch.allclose(a[-1], b[-1], atol=2e-3, rtol=1e-3), (p, (a[-1] - b[-1]).abs().max())
