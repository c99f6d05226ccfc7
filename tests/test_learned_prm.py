"""The learned PRM's features are read at the right positions, and its within-problem ranking loss
learns what the pointwise loss misses."""

from __future__ import annotations

import pytest
import torch

from tests.test_hub_prms import _bytelevel, _small
from tts_viz.backends.transformers_backend import TransformersBackend
from tts_viz.policy import StepPolicy
from tts_viz.verifiers.step_features import CONFIDENCE_FEATURES, FINAL, step_features, step_spans

QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"
SOLUTIONS = [
    ["Tom starts with 3 apples.", "He buys 4 more, so 3 + 4 = 7.", "The answer is \\boxed{7}."],
    ["3 + 4 = 7, so \\boxed{7}."],
    ["Start: 3 apples.\nThen add 4 - 0 = 4.", "Total is \\boxed{7}."],
]


@pytest.fixture(scope="module")
def tiny_policy():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = _bytelevel(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], eos_token="<|im_end|>",
                     pad_token="<|endoftext|>", additional_special_tokens=["<|im_start|>"])
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    model = Qwen2ForCausalLM(_small(Qwen2Config, len(tok))).eval()
    backend = TransformersBackend(model, tok, name="tiny-qwen2")
    return backend, StepPolicy(backend)


def test_step_features_read_each_step_end_as_a_plain_forward_does(tiny_policy):
    """The final-layer state at each step's last token (one pass over the whole solution, batched and
    right-padded) equals the policy's own last hidden state for the prompt that ends after that step;
    the mean part covers the step's tokens only."""
    backend, policy = tiny_policy
    from tts_viz.trace import ModelCompute

    layers = (1, FINAL)
    compute = ModelCompute()
    feats = step_features(backend, policy.prompt, QUESTION, SOLUTIONS, layers, batch_size=2, compute=compute)
    # the prompt ran once per batch of 2 and the solutions on its cache (what the comparisons below check)
    prompt_tokens = len(backend.tokenizer(policy.prompt(QUESTION, ()), add_special_tokens=False)["input_ids"])
    assert compute.reused_tokens == prompt_tokens  # batches of 2 and 1: one copy reused
    d = backend.model.config.hidden_size
    assert [f.shape for f in feats] == [(len(s), 4 * d + CONFIDENCE_FEATURES) for s in SOLUTIONS]
    for steps, f in zip(SOLUTIONS, feats):
        for k in range(len(steps)):
            plain = backend.last_hidden_states([policy.prompt(QUESTION, steps[: k + 1])])[0]
            assert torch.allclose(f[k, 2 * d: 3 * d], plain, atol=1e-4), (steps, k)
            if k:
                prev = backend.last_hidden_states([policy.prompt(QUESTION, steps[:k])])[0]
                assert not torch.allclose(f[k, 2 * d: 3 * d], prev, atol=1e-3)  # not one step off
    # one solution alone gives the same rows as in a batch
    alone = step_features(backend, policy.prompt, QUESTION, [SOLUTIONS[0]], layers)[0]
    assert torch.allclose(alone, feats[0], atol=1e-4)
    # the mean over the step differs from the state at its end (it is another reading)
    assert not torch.allclose(feats[0][1, 3 * d: 4 * d], feats[0][1, 2 * d: 3 * d], atol=1e-3)


def test_confidence_features_are_the_step_tokens_log_probabilities_of_a_plain_forward(tiny_policy):
    """The last columns: each step's mean and lowest token log-probability and the solution's running mean,
    from log softmax at the position BEFORE each token, over the step's tokens (its blank line included)."""
    backend, policy = tiny_policy
    steps = SOLUTIONS[0]
    feats = step_features(backend, policy.prompt, QUESTION, [steps, SOLUTIONS[1]], (FINAL,))[0]
    text = policy.prompt(QUESTION, steps)
    ids, spans = step_spans(backend.tokenizer, text, len(policy.prompt(QUESTION, ())), steps)
    with torch.inference_mode():
        lp = torch.log_softmax(backend.model(torch.tensor([ids])).logits[0].float(), -1)
    tok_lp = torch.tensor([lp[j - 1, ids[j]].item() for j in range(len(ids))])
    first = spans[0][1]
    for k, (_, a, b) in enumerate(spans):
        conf = feats[k, -CONFIDENCE_FEATURES:]
        assert conf[0].item() == pytest.approx(tok_lp[a: b + 1].mean().item(), abs=1e-3)
        assert conf[1].item() == pytest.approx(tok_lp[a: b + 1].min().item(), abs=1e-3)
        assert conf[2].item() == pytest.approx(tok_lp[first: b + 1].mean().item(), abs=1e-3)
        assert conf[1] <= conf[0] and conf[3] <= conf[2] + 1e-6  # the weakest window is below the mean
    # not the token's own position (one off): the plain forward read one position later differs
    shifted = torch.tensor([lp[j, ids[j]].item() for j in range(len(ids))])
    assert abs(shifted[spans[0][1]: spans[0][2] + 1].mean().item() - feats[0, -CONFIDENCE_FEATURES].item()) > 1e-3


def _simpson_pool(n_problems=30, samples=8, seed=0):
    """Rows and features where length misleads a pointwise head: hard problems have long solutions
    (across problems, long = wrong), but within a problem the right samples are the longer ones."""
    g = torch.Generator().manual_seed(seed)
    rows, feats = [], {}
    for p in range(n_problems):
        right = 1 + p % (samples - 1)  # 1..7 right samples: every problem is mixed
        base = 10.0 * (1 - right / samples)
        xs, samples_ = [], []
        for i in range(samples):
            ok = i < right
            length = base + (1.0 if ok else 0.0) + 0.1 * torch.randn(1, generator=g).item()
            xs.append([length] + torch.randn(3, generator=g).tolist())
            samples_.append({"steps": ["s"], "labels": [None], "answer": "1" if ok else str(i + 2), "correct": ok})
        rows.append({"id": f"p{p}", "samples": samples_})
        feats[f"p{p}"] = torch.tensor(xs)
    return rows, feats


def test_pairwise_loss_ranks_within_a_problem_where_pointwise_is_misled():
    from tts_viz.study.train_prm import Candidate, best_candidate, cross_validate, fit, problem_data

    rows, feats = _simpson_pool()
    cands = [Candidate(loss="pointwise", labels="outcome", epochs=150),
             Candidate(loss="pairwise", labels="outcome", point_weight=0.0, epochs=150),
             Candidate(loss="listwise", labels="outcome", point_weight=0.0, epochs=150)]
    res = cross_validate(rows, feats, cands, folds=3)
    within = {k: v["cv"]["within_auroc"] for k, v in res.items()}
    assert within[cands[0].key] < 0.3, within  # pointwise learned "long = wrong" from the problem mix
    assert within[cands[1].key] > 0.9 and within[cands[2].key] > 0.9, within
    assert best_candidate(res) in (cands[1].key, cands[2].key)
    assert all("scores" not in s for r in rows for s in r["samples"])  # out-of-fold scores not kept
    # a new problem: one planted right sample among wrong ones of the same (hard) problem
    head = fit([problem_data(r, feats[r["id"]], "outcome") for r in rows], cands[1])
    planted = torch.tensor([[9.0, 0, 0, 0]] * 7 + [[10.0, 0, 0, 0]])
    scores = head(planted)
    assert int(scores.argmax()) == 7


def test_learned_prm_scores_each_step_from_its_own_end_state(tiny_policy):
    """A head that looks only at the final layer's end-of-step state: the verifier's score of every
    step equals that head applied to the policy's plain last hidden state after the step."""
    from tts_viz.verifiers.learned_prm import LearnedPRM
    from tts_viz.verifiers.probe import ProbeHead

    backend, policy = tiny_policy
    d = backend.model.config.hidden_size
    head = ProbeHead(2 * d, 0)
    torch.manual_seed(1)
    with torch.no_grad():
        head.net.weight.normal_()
        head.net.weight[:, d:] = 0.0  # the mean-over-step half is ignored
    prm = LearnedPRM(backend, head, (FINAL,), policy.prompt, "states")  # the head reads the states only
    scores = prm.score(QUESTION, SOLUTIONS)
    for steps, got in zip(SOLUTIONS, scores):
        for k, s in enumerate(got):
            plain = backend.last_hidden_states([policy.prompt(QUESTION, steps[: k + 1])])
            want = torch.sigmoid(head(torch.cat([plain, torch.zeros_like(plain)], 1))).item()
            assert abs(s - want) < 1e-4
    assert prm.score_last(QUESTION, [SOLUTIONS[0][:2]]) == pytest.approx([scores[0][1]], abs=1e-5)
    assert prm.compute.prompt_tokens > 0
    assert (prm.step_threshold, prm.answer_threshold) == (0.5, 0.5)  # a card without thresholds
    # the shipped card's thresholds (train_prm.card_thresholds): a pairwise head leaves right
    # answers' last-step scores low, so a finished solution is read against a far lower cut
    import json
    from pathlib import Path

    card = json.loads((Path(__file__).resolve().parent.parent / "assets" / "prm-qwen2.5-coder-0.5b.json").read_text())
    shipped = LearnedPRM(backend, head, (FINAL,), policy.prompt, "states", card["thresholds"])
    assert shipped.answer_threshold == card["thresholds"]["answer"] < 0.2 < shipped.step_threshold


def test_learned_prm_card_refuses_other_policy_weights(tmp_path):
    from tts_viz.verifiers.learned_prm import load_prm, save_prm
    from tts_viz.verifiers.probe import ProbeHead

    save_prm(ProbeHead(8, 0), {"policy_sha256": "a" * 64, "layers": ["final"]}, "pol", tmp_path)
    head, card = load_prm("pol", "a" * 64, tmp_path)
    assert card["layers"] == ["final"] and head.dim == 8
    with pytest.raises(ValueError, match="trained on policy weights"):
        load_prm("pol", "b" * 64, tmp_path)
    with pytest.raises(ValueError, match="train-prm"):
        load_prm("other", None, tmp_path)


def test_confidence_verifier_scores_the_weakest_window_of_the_tokens_so_far(tiny_policy):
    """Each step's score is exp(lowest mean log-probability of any 16 consecutive solution tokens up to the
    step's end), the tokens' log-probabilities taken from a plain forward pass."""
    import math

    from tts_viz.verifiers import make_verifier
    from tts_viz.token_confidence import WINDOW

    backend, policy = tiny_policy
    v = make_verifier("confidence", None, backend)
    steps = SOLUTIONS[0]
    got = v.score(QUESTION, [steps])[0]
    ids, spans = step_spans(backend.tokenizer, policy.prompt(QUESTION, steps), len(policy.prompt(QUESTION, ())), steps)
    with torch.inference_mode():
        lp = torch.log_softmax(backend.model(torch.tensor([ids])).logits[0].float(), -1)
    first = spans[0][1]
    tok = [lp[j - 1, ids[j]].item() for j in range(first, len(ids))]
    for k, (_, _, b) in enumerate(spans):
        upto = tok[: b + 1 - first]
        windows = [sum(upto[i: i + WINDOW]) / WINDOW for i in range(len(upto) - WINDOW + 1)] or [sum(upto) / len(upto)]
        assert got[k] == pytest.approx(math.exp(min(windows)), rel=1e-3)
    assert len(got) == len(steps) and all(0 < s <= 1 for s in got)


def test_probe_and_prm_read_one_cached_feature_pass_as_their_own_scoring_does(tiny_policy, tmp_path, monkeypatch):
    """prm-eval scores the probe and the trained PRM off one step-feature pass per problem: the probe's
    scores equal its own level-by-level scoring, the PRM's its own pass; the second reader runs no pass;
    a file cut short by a kill is computed again."""
    import tts_viz.verifiers.step_features as sf
    from tts_viz.study.prm_eval import StepFeatureCache, score_pool_from_features
    from tts_viz.verifiers.learned_prm import LearnedPRM
    from tts_viz.verifiers.probe import ProbeHead, ProbeVerifier

    backend, policy = tiny_policy
    d = backend.model.config.hidden_size
    layers = (1, FINAL)
    torch.manual_seed(3)
    probe_head, prm_head = ProbeHead(d, 0), ProbeHead(4 * d + CONFIDENCE_FEATURES, 8)
    for h in (probe_head, prm_head):
        for p in h.net.parameters():
            torch.nn.init.normal_(p, std=0.5)
    probe = ProbeVerifier(backend, probe_head, policy.prompt)
    prm = LearnedPRM(backend, prm_head, layers, policy.prompt)
    row = {"id": "q1", "question": QUESTION, "samples": [{"steps": s} for s in SOLUTIONS]}
    passes = []
    real = sf.step_features
    monkeypatch.setattr(sf, "step_features", lambda *a, **k: passes.append(1) or real(*a, **k))
    cache = StepFeatureCache(backend, policy.prompt, tmp_path, "key", layers)
    score_pool_from_features([row], "probe", probe, cache)
    score_pool_from_features([row], "prm", prm, cache)
    assert len(passes) == 1  # the PRM read the probe's pass from disk
    for got, want in zip([s["scores"]["probe"] for s in row["samples"]], probe.score(QUESTION, SOLUTIONS)):
        assert got == pytest.approx(want, abs=1e-4)
    for got, want in zip([s["scores"]["prm"] for s in row["samples"]], prm.score(QUESTION, SOLUTIONS)):
        assert got == pytest.approx(want, abs=1e-4)
    cache.path("q1").write_bytes(b"cut")
    passes.clear()
    assert [len(x) for x in cache.get(row)[0]] == [3, 1, 2] and len(passes) == 1
    with pytest.raises(ValueError, match="reads layers"):
        LearnedPRM(backend, prm_head, (FINAL,), policy.prompt).score_from_features([], layers, [])


def test_arith_columns_mark_the_wrong_step_and_a_prm_on_them_reads_them_per_step(tiny_policy):
    import math

    from tts_viz.verifiers.learned_prm import LearnedPRM
    from tts_viz.verifiers.probe import ProbeHead
    from tts_viz.verifiers.step_features import ARITH_FEATURES, arith_columns, head_input

    sols = [["Tom has 3 + 4 = 7 apples.", "Twice that is 7 * 2 = 15.", "So \\boxed{15}."], ["No sums here."]]
    cols = arith_columns(sols)
    assert cols.tolist() == [[1.0, 0.0, pytest.approx(math.log(2))], [0.0, 1.0, pytest.approx(math.log(2))],
                             [0.0, 0.0, 0.0], [0.5, 0.0, 0.0]]
    # a head that reads only the "wrong equation in this step" column scores exactly that step low
    backend, policy = tiny_policy
    d = backend.model.config.hidden_size
    head = ProbeHead(2 * d + ARITH_FEATURES, 0)
    with torch.no_grad():
        head.net.weight.zero_()
        head.net.weight[0, 2 * d + 1] = -10.0
        head.net.bias.fill_(5.0)
    prm = LearnedPRM(backend, head, (FINAL,), policy.prompt, "states+arith")
    scores = prm.score(QUESTION, sols)
    assert [round(x) for x in scores[0]] == [1, 0, 1] and round(scores[1][0]) == 1
    with pytest.raises(ValueError, match="add only"):
        head_input(torch.zeros((1, 4 * d + CONFIDENCE_FEATURES)), "all+judge", [["x"]])


def test_reusing_features_equal_a_whole_pass_and_run_only_the_new_step(tiny_policy):
    """In a search the PRM scores a path again each round with one step more: the rows of the steps
    scored before come from the memo and the path's tokens from the prefix store, and every column
    (states at both layers, step means, the four confidence numbers) equals a whole fresh pass."""
    from tts_viz.backends.prefix_cache import PrefixKVStore
    from tts_viz.trace import ModelCompute
    from tts_viz.verifiers.step_features import StepFeatureMemo, step_features_reusing

    backend, policy = tiny_policy
    layers = (1, FINAL)
    backend.prefix_store = PrefixKVStore()
    memo = StepFeatureMemo()
    whole = step_features(backend, policy.prompt, QUESTION, SOLUTIONS, layers)
    grown = {}
    first_round = ModelCompute()
    # round 1: the first step of every solution; round 2..: one more step each
    for depth in range(1, max(len(s) for s in SOLUTIONS) + 1):
        paths = [s[:depth] for s in SOLUTIONS if len(s) >= depth]
        compute = first_round if depth == 1 else ModelCompute()
        got = step_features_reusing(backend, policy.prompt, QUESTION, paths, layers, memo, batch_size=2, compute=compute)
        for p, f in zip(paths, got):
            grown[tuple(p)] = f
        if depth == 2:
            # only the new step's tokens (and the one before them) ran: far fewer than the paths hold
            path_tokens = sum(len(backend.tokenizer(policy.prompt(QUESTION, p), add_special_tokens=False)["input_ids"])
                              for p in paths)
            assert compute.reused_tokens > 0 and compute.prompt_tokens < path_tokens / 2, (compute, path_tokens)
    for steps, f in zip(SOLUTIONS, whole):
        assert torch.allclose(grown[tuple(steps)], f, atol=1e-4), steps
    # scoring a path again runs nothing
    again = ModelCompute()
    step_features_reusing(backend, policy.prompt, QUESTION, SOLUTIONS, layers, memo, compute=again)
    assert again.prompt_tokens == 0
    assert len(memo) == sum(len(s) for s in SOLUTIONS)
