"""One default verifier: the trained PRM where it is trained for the policy, arith elsewhere; the app
moves off a verifier that cannot run on a newly chosen policy and says why."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest

from tts_viz.models import DEFAULT_POLICY
from tts_viz.runner import RunConfig
from tts_viz.verifiers import DEFAULT_VERIFIER, default_verifier, trained_for
from tts_viz.verifiers.learned_prm import prm_paths

needs_prm = pytest.mark.skipif(not prm_paths(DEFAULT_POLICY)[0].is_file(), reason="no trained PRM in assets/")


@needs_prm
def test_the_default_policy_gets_the_trained_prm_and_another_policy_arith():
    assert DEFAULT_VERIFIER == "prm" and default_verifier() == "prm" == default_verifier(DEFAULT_POLICY)
    assert default_verifier("smollm2-135m") == "arith"  # no PRM is trained on its states
    assert default_verifier("openai:qwen@http://localhost:8000") == "arith"
    assert RunConfig(question="2+2?").verifier == "prm"
    assert RunConfig(question="2+2?", policy="qwen2.5-coder-1.5b").verifier == "arith"
    assert RunConfig(question="2+2?", policy="qwen2.5-coder-1.5b", verifier="self-judge").verifier == "self-judge"
    assert trained_for("arith+prm", DEFAULT_POLICY) and not trained_for("arith+prm", "qwen2.5-coder-1.5b")
    assert trained_for("self-judge", "anything")  # not trained on a policy: runs anywhere


@needs_prm
def test_sweep_default_resolves_by_policy_too():
    from tts_viz.study.sweep import SweepConfig

    assert SweepConfig().verifier == "prm"
    assert SweepConfig(policy="smollm2-135m").verifier == "arith"


@needs_prm
def test_choosing_a_policy_the_prm_was_not_trained_on_switches_the_verifier_and_says_why():
    from tts_viz.ui.search_tab import VERIFIER, verifier_for_policy

    assert VERIFIER in ("prm", "arith")  # prm, or arith in the tests' tiny-policy mode
    keep, msg = verifier_for_policy(DEFAULT_POLICY, "prm")
    assert "value" not in keep and msg["visible"] is False
    new, msg = verifier_for_policy("qwen2.5-coder-1.5b", "arith+prm")
    assert new["value"] == "arith" and msg["visible"] and "qwen2.5-coder-1.5b" in msg["value"]
    new, msg = verifier_for_policy("openai:m@http://h:1", "prm")
    assert new["value"] == "arith" and "model server" in msg["value"]
    new, msg = verifier_for_policy("openai:m@http://h:1", "self-judge")  # runs through the server: kept
    assert "value" not in new
    _, msg = verifier_for_policy("<img src=x onerror=alert(1)>", "prm")  # a typed policy is untrusted
    assert "<img" not in msg["value"]


def test_scaling_tab_opens_on_the_verifier_with_the_most_problems(monkeypatch):
    from tts_viz.ui import scaling_tab

    rows = [{"policy": DEFAULT_POLICY, "verifier": "arith", "problem_id": f"p{i}", "strategy": "majority"}
            for i in range(6)]
    rows += [{"policy": DEFAULT_POLICY, "verifier": "prm", "problem_id": f"p{i}", "strategy": "majority"}
             for i in range(2)]
    monkeypatch.setattr(scaling_tab, "scaling_rows", lambda: rows)
    assert scaling_tab.study_verifier() == "arith"  # the complete study, not the one still in installments
    labels = dict((v, label) for label, v in scaling_tab.scaling_verifiers())
    assert "(6 problems)" in labels["arith"] and "(2 problems)" in labels["prm"]
    rows += [{"policy": DEFAULT_POLICY, "verifier": "prm", "problem_id": f"p{i}", "strategy": "majority"}
             for i in range(2, 6)]
    assert scaling_tab.study_verifier() == DEFAULT_VERIFIER  # a tie goes to the default


def test_prm_inspector_gives_the_policy_state_verifiers_the_chosen_model(monkeypatch):
    """prm / probe / confidence read the policy's own states: the inspector builds them on the model
    chosen in its model box (they used to come back "unavailable" for want of a backend)."""
    from tts_viz.ui import prm_tab

    seen = {}

    class Recorder:
        def __init__(self, name, backend):
            self.name, self.backend = name, backend

        def score(self, question, solutions):
            return [[0.25 for _ in s] for s in solutions]

    def fake_make_verifier(name, pool, backend, **kw):
        seen[name] = backend
        return Recorder(name, backend)

    lm = SimpleNamespace(model=_tiny_model(), tokenizer=None, name="tiny", params=1, meta={"precision": "fp32"})
    lm.tokenizer = lm.model._tok
    pool = SimpleNamespace(get=lambda name: lm, run_lock=lambda name: contextlib.nullcontext())
    monkeypatch.setattr(prm_tab, "make_verifier", fake_make_verifier)
    html = prm_tab.prm_score_ui(pool, "tiny", "2+2?", "2 + 2 = 4.\n\nSo \\boxed{4}.", ["arith", "prm", "arith+probe"],
                                "", 0.5, progress=lambda *a, **k: None)
    assert seen["arith"] is None
    assert seen["prm"] is not None and seen["prm"].model is lm.model and seen["arith+probe"] is not None
    assert "unavailable" not in html and "prm (tiny)" in html


def test_prm_inspector_marks_each_verifier_against_its_own_thresholds(monkeypatch):
    """The trained PRM scores a right final answer low (0.25; its card's answer threshold is 0.08):
    marked against 0.5 it looks like the first wrong step; against its own thresholds it is not."""
    from types import SimpleNamespace

    from tts_viz.ui import prm_tab

    class CardPRM:
        step_threshold, answer_threshold = 0.57, 0.08

        def score(self, question, solutions):
            return [[0.6, 0.25] for _ in solutions]

    class Plain(CardPRM):
        step_threshold = answer_threshold = 0.5

    made = {"prm": CardPRM(), "arith": Plain()}
    monkeypatch.setattr(prm_tab, "make_verifier", lambda name, pool, backend, **kw: made[name])
    monkeypatch.setattr(prm_tab, "NEEDS_POLICY", set())  # no model here: the fakes need no backend
    solution = "2 + 2 = 4.\n\nSo \\boxed{4}."
    args = (SimpleNamespace(), "tiny", "2+2?", solution, ["arith", "prm"], "", 0.5)
    own = prm_tab.prm_score_ui(*args, True, progress=lambda *a, **k: None)
    assert own.count("⚠ first") == 1  # arith (0.5 for every step) still marks the 0.25
    plain = prm_tab.prm_score_ui(*args, False, progress=lambda *a, **k: None)
    assert plain.count("⚠ first") == 2
    assert prm_tab.own_thresholds(CardPRM(), ["a = 1", "so \\boxed{1}"]) == [0.57, 0.08]
    assert prm_tab.own_thresholds(Plain(), ["a"]) is None


def _tiny_model():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from tests.test_hub_prms import _bytelevel, _small

    tok = _bytelevel(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], eos_token="<|im_end|>",
                     pad_token="<|endoftext|>", additional_special_tokens=["<|im_start|>"])
    model = Qwen2ForCausalLM(_small(Qwen2Config, len(tok))).eval()
    model._tok = tok
    return model
