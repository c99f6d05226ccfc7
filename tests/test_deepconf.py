"""Confidence filtering: the backend reads each sampled token's log-probability from the right logits,
abandons a row when asked, and the strategy drops the planted low-confidence samples from the vote."""

from __future__ import annotations

import math

import pytest
import torch

from tests.fakes import ScriptedPolicy
from tests.test_hub_prms import _bytelevel, _small
from tts_viz.backends.transformers_backend import TransformersBackend
from tts_viz.runner import RunConfig, run_search
from tts_viz.strategies.base import SearchConfig
from tts_viz.strategies.deepconf import keep_threshold
from tts_viz.token_confidence import WINDOW, lowest_window_confidence, window_confidences
from tts_viz.trace import PRUNED, SELECTED


@pytest.fixture(scope="module")
def tiny_backend():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = _bytelevel(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], eos_token="<|im_end|>",
                     pad_token="<|endoftext|>", additional_special_tokens=["<|im_start|>"])
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(_small(Qwen2Config, len(tok))).eval()
    return TransformersBackend(model, tok, name="tiny-qwen2")


def test_token_logprobs_match_a_plain_forward_over_the_generated_text(tiny_backend):
    """Each row's logprobs[t] is log softmax(logits at the position before token t)[token t], as one plain
    forward pass over prompt + continuation gives it, for rows of different lengths batched together."""
    b = tiny_backend
    store, b.prefix_store = b.prefix_store, None  # the plain path; the store's reuse is tested elsewhere
    rows: dict[int, list[int]] = {}
    choose = b._choose_tokens

    def record(logits, active, step, temperature, top_p, **kw):  # the token ids each row drew, in order
        toks = choose(logits, active, step, temperature, top_p, **kw)
        for r, t in zip(active, toks.tolist()):
            rows.setdefault(r, []).append(t)
        return toks

    b._choose_tokens = record
    prompts = ["Tom has 3 apples", "A much longer prompt about 48 apples and 2 friends"]
    try:
        gens = b.generate(prompts, max_new_tokens=12, temperature=0.9, seed=3, logprobs=True)
    finally:
        del b._choose_tokens
        b.prefix_store = store
    for r, (prompt, g) in enumerate(zip(prompts, gens)):
        assert g.logprobs is not None and len(g.logprobs) == g.tokens == len(rows[r]) > 0
        ids = b.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            lp = torch.log_softmax(b.model(torch.tensor([ids + rows[r]])).logits[0].float(), -1)
        plain = [lp[len(ids) - 1 + t, tok].item() for t, tok in enumerate(rows[r])]
        assert max(abs(x - y) for x, y in zip(plain, g.logprobs)) < 1e-3
        assert max(abs(x - y) for x, y in zip(plain[1:], g.logprobs)) > 1e-3  # not one token off
    # asking for logprobs does not change what is sampled
    again = b.generate(prompts, max_new_tokens=12, temperature=0.9, seed=3)
    assert [g.text for g in again] == [g.text for g in gens] and again[0].logprobs is None


def test_stop_row_abandons_only_that_row_at_the_token_it_says(tiny_backend):
    b = tiny_backend
    prompts = ["one", "two", "three"]
    plain = b.generate(prompts, max_new_tokens=10, temperature=0.0, seed=0)
    seen = []
    gens = b.generate(prompts, max_new_tokens=10, temperature=0.0, seed=0,
                      stop_row=lambda i, lps: seen.append((i, len(lps))) or (i == 1 and len(lps) == 4))
    assert gens[1].finish_reason == "abandoned" and gens[1].tokens == 4 and len(gens[1].logprobs) == 4
    assert [g.text for k, g in enumerate(gens) if k != 1] == [g.text for k, g in enumerate(plain) if k != 1]
    assert (1, 5) not in seen  # never asked again once abandoned


def test_window_confidence_is_the_weakest_stretch():
    lps = [math.log(0.9)] * 20 + [math.log(0.2)] * 4 + [math.log(0.9)] * 20
    conf = window_confidences(lps, 16)
    assert len(conf) == len(lps) - 16 + 1 and max(conf) == pytest.approx(0.9)
    assert lowest_window_confidence(lps, 16) == pytest.approx(math.exp((4 * math.log(0.2) + 12 * math.log(0.9)) / 16))
    assert lowest_window_confidence([math.log(0.5)] * 3, 16) == pytest.approx(0.5)  # shorter than a window
    assert keep_threshold([0.5, 0.9, 0.6, 0.95], 0.5) == 0.9 and keep_threshold([0.3], 0.1) == 0.3


def _solution(i, call, prev=()):
    """Warm-up (call 0): '7' at confidence 0.95, then '3' at 0.9, 0.6 and 0.5. Later (call 1): i%3==0 '7'
    at 0.95; i%3==1 starts sure and drops to 0.3 after 10 tokens; i%3==2 '3' at 0.92."""
    if call == 0:
        return ["a step", "\\boxed{7}" if i == 0 else "\\boxed{3}"]
    return ["a step", "\\boxed{3}" if i % 3 == 2 else "\\boxed{7}"]


def _logprobs(i, call):
    if call == 0:
        return [math.log([0.95, 0.9, 0.6, 0.5][i])] * 40
    if i % 3 == 1:
        return [math.log(0.95)] * 10 + [math.log(0.3)] * 30
    return [math.log(0.95 if i % 3 == 0 else 0.92)] * 40


def test_deepconf_filters_the_unsure_and_abandons_a_sample_at_its_first_weak_window():
    policy = ScriptedPolicy(lambda *a: "", solution_fn=_solution, logprob_fn=_logprobs)
    cfg = RunConfig(question="q", gold="7", strategy="deepconf", verifier="none", search=SearchConfig(n=16, confidence_keep=0.5))
    t = run_search(cfg, policy=policy, verifier=None)
    info = t.root.extra["deepconf"]
    assert [c["count"] for c in policy.calls] == [4, 12]  # a quarter of the budget warms up
    assert info["threshold"] == pytest.approx(0.9, abs=1e-4)  # the top half of the warm-up reaches 0.9
    leaves = [n for n in t.nodes if n.extra.get("confidence") is not None]
    warm = leaves[:4]
    # the planted unsure warm-up samples (0.6, 0.5) are filtered out of the vote; 0.9 stays
    assert [n.status == PRUNED for n in warm] == [False, False, True, True]
    assert all("filtered" in n.reason for n in warm[2:])
    # a sample that turns unsure is abandoned at the first full window below the threshold: token 16
    late = leaves[4:]
    quit_ = [n for k, n in enumerate(late) if k % 3 == 1]
    assert all(n.status == PRUNED and n.extra["tokens_written"] == WINDOW and "abandoned" in n.reason for n in quit_)
    assert info["abandoned"] == 4 and info["filtered"] == 2 and info["kept"] == 10
    # plain majority over every written answer would say 3 (7 votes to 5); the confident vote says 7
    assert t.final_answer == "7" and t.correct is True and t.selected().status == SELECTED
    assert info["tokens_spent"] == 4 * 40 + 4 * 40 + 4 * WINDOW + 4 * 40 < info["tokens_full_budget_estimate"] == 640
    from tts_viz.viz import summary_html

    assert f"{info['tokens_spent']} tokens</b> of about 640" in summary_html(t)
