"""Several threads' generate calls decoded in one batch (backends/merged_decode.py): each call
writes what it writes alone, its finished rows go to its own prefix store, and a failing member
does not leave the others waiting."""

from __future__ import annotations

import threading
import time

import pytest
from transformers import Qwen2Config, Qwen2ForCausalLM

from tests.tiny_models import chatml_tokenizer, small_config
from tts_viz.backends.merged_decode import DecodeMerger, current_merger
from tts_viz.backends.transformers_backend import TransformersBackend


@pytest.fixture(scope="module")
def tiny():
    tok = chatml_tokenizer()
    model = Qwen2ForCausalLM(small_config(Qwen2Config, len(tok), init=0.05)).eval()  # float32
    return model, tok


# (prompts, generate kwargs) of three callers: different prompt lengths, limits, seeds, temperatures
CALLS = [
    (["Tom has 3 apples", "Tom has 3 apples and buys 4 more. How many?"], dict(max_new_tokens=9, seed=1)),
    (["3 + 4 = 7, so"], dict(max_new_tokens=14, seed=2, temperature=1.0, logprobs=True)),
    (["He buys 4 more, so", "Start: 3 apples.", "Total is"], dict(max_new_tokens=6, seed=3, stop=["."])),
]


def _texts(gens):
    return [(g.text, g.tokens, g.finish_reason) for g in gens]


def _run_members(model, tok, merger, calls, fail: int | None = None):
    """Each call in its own thread and backend, all members of `merger`; returns their results."""
    results: dict[int, object] = {}

    def work(i, prompts, kw):
        backend = TransformersBackend(model, tok, name="tiny")
        try:
            with merger.member():
                if i == fail:
                    raise RuntimeError("this member's search failed")
                results[i] = (backend.generate(prompts, temperature=kw.pop("temperature", 0.9), **kw), backend)
        except RuntimeError as e:
            results[i] = e

    threads = [threading.Thread(target=work, args=(i, p, dict(kw))) for i, (p, kw) in enumerate(calls)]
    with merger._cond:  # hold the turn until every thread has joined, as a sweep's workers soon have
        for t in threads:
            t.start()
        while len(merger._members) < len(calls):
            time.sleep(0.01)
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a member was left waiting"
    return results


def test_merged_calls_write_what_each_writes_alone(tiny):
    model, tok = tiny
    alone = []
    for prompts, kw in CALLS:
        kw = dict(kw)
        alone.append(TransformersBackend(model, tok).generate(prompts, temperature=kw.pop("temperature", 0.9), **kw))
    merger = DecodeMerger()
    results = _run_members(model, tok, merger, CALLS)
    assert merger.batches == 1 and merger.requests == 3  # really decoded in one batch
    for i, gens in enumerate(alone):
        merged, _ = results[i]
        assert _texts(merged) == _texts(gens)
        assert any(g.tokens > 1 for g in gens)
    lp_alone, lp_merged = alone[1][0].logprobs, results[1][0][0].logprobs
    assert lp_merged is not None and max(abs(a - b) for a, b in zip(lp_alone, lp_merged)) < 1e-4
    assert results[0][0][0].logprobs is None  # only the call that asked gets them
    # each backend's prefix store holds its own finished rows (prompt + tokens), not the others'
    for i, (prompts, _) in enumerate(CALLS):
        store = results[i][1].prefix_store
        ids = results[i][1]._ids(prompts)
        assert all(store.match(r)[0] == len(r) for r in ids)
        others = [r for j, (p, _) in enumerate(CALLS) if j != i for r in results[i][1]._ids(p)]
        assert all(store.match(r)[0] < len(r) for r in others)


def test_a_different_seed_changes_the_sample(tiny):
    """The merged rows do draw from each call's own stream: another seed, another text."""
    model, tok = tiny
    calls = [(["Tom has 3 apples"], dict(max_new_tokens=12, seed=s)) for s in (1, 2)]
    results = _run_members(model, tok, DecodeMerger(), calls)
    assert _texts(results[0][0]) != _texts(results[1][0])


def test_a_failing_member_does_not_leave_the_others_waiting(tiny):
    model, tok = tiny
    merger = DecodeMerger()
    results = _run_members(model, tok, merger, CALLS, fail=0)
    assert isinstance(results[0], RuntimeError)
    assert all(len(results[i][0]) == len(CALLS[i][0]) for i in (1, 2))


def test_a_member_leaving_last_decodes_the_others_without_building_a_graph(tiny):
    """A member that leaves without decoding (its problem done) while the others wait decodes their
    rows in its own thread, outside any generate call. There, too, no autograd graph may be built:
    one was, in the prm study with 4 problems at once, and it kept every decode step's activations
    and KV copies alive (16 GB resident in a minute)."""
    model, tok = tiny
    merger = DecodeMerger()
    grad_seen: list[bool] = []
    hook = model.register_forward_hook(lambda m, a, out: grad_seen.append(out.logits.requires_grad))
    results: dict[int, object] = {}

    def waiter(i, prompts, kw):
        with merger.member():
            results[i] = TransformersBackend(model, tok).generate(prompts, temperature=kw.pop("temperature", 0.9), **kw)

    def leaver():
        with merger.member():  # holds the turn but lets the waiters prefill, then leaves once both wait
            deadline = time.time() + 60
            while len(merger._waiting) < 2 and time.time() < deadline:
                merger._cond.wait(0.01)
            grad_seen.clear()  # the prefills ran inside generate; what follows is this thread's decode

    threads = [threading.Thread(target=leaver)] + [
        threading.Thread(target=waiter, args=(i, p, dict(kw))) for i, (p, kw) in enumerate(CALLS[:2])]
    try:
        with merger._cond:
            for t in threads:
                t.start()
            while len(merger._members) < 3:
                time.sleep(0.01)
        for t in threads:
            t.join(timeout=120)
    finally:
        hook.remove()
    assert len(results) == 2 and merger.batches == 1 and merger.requests == 2
    assert grad_seen and not any(grad_seen)


def test_rows_over_the_batch_limit_are_decoded_in_several_batches(tiny):
    model, tok = tiny
    merger = DecodeMerger(max_rows=3)
    results = _run_members(model, tok, merger, CALLS)  # 2 + 1 rows, then 3
    assert merger.batches == 2 and merger.requests == 3
    assert all(len(results[i][0]) == len(CALLS[i][0]) for i in range(3))


def test_a_thread_outside_the_merger_decodes_alone(tiny):
    model, tok = tiny
    merger = DecodeMerger()
    with merger.member():
        assert current_merger() is merger and merger.joined()
    gens = TransformersBackend(model, tok).generate(["Tom has 3 apples"], max_new_tokens=5, seed=1)
    assert merger.batches == 0 and len(gens) == 1 and current_merger() is None and not merger.joined()


def test_a_sweep_running_problems_at_once_decodes_them_together(tiny, tmp_path):
    """--problem-concurrency on a model in process: six problems, a pool and a beam search each. Their
    decode steps share batches, and every run still finishes and writes its row."""
    from tts_viz.policy import StepPolicy
    from tts_viz.runner import run_search
    from tts_viz.study.sweep import SweepConfig, parse_strategies, run_sweep
    from tts_viz.verifiers.arith import ArithVerifier

    model, tok = tiny
    calls = []

    def run_fn(cfg):
        backend = TransformersBackend(model, tok, name="tiny")
        generate = backend.generate

        def counted(*a, **kw):
            calls.append(1)
            return generate(*a, **kw)

        backend.generate = counted
        return run_search(cfg, policy=StepPolicy(backend, max_step_tokens=6, max_steps=2), verifier=ArithVerifier())

    cfg = SweepConfig(results=str(tmp_path / "sweep.jsonl"), levels=(1, 2), per_level=3, split="all",
                      strategies=parse_strategies("beam:width=2"), budgets=(2,), verifier="arith", max_rounds=2,
                      max_step_tokens=6, max_solution_tokens=24, concurrency=3)
    summary = run_sweep(cfg, run_fn=run_fn, progress=False)
    assert summary["runs"] == 12 and summary["merged_requests"] == len(calls) > 0
    assert summary["merged_decodes"] < len(calls)  # calls of different problems shared a batch
    from tts_viz.results import load_results

    rows = load_results(cfg.results)
    assert len(rows) == 12 and all(r["status"] == "done" and r["concurrency"] == 3 for r in rows)


@pytest.mark.parametrize("merge", [True, False])
def test_searches_run_at_once_build_the_trees_each_builds_alone(tiny, monkeypatch, merge):
    """runner.iter_searches: beam and DVTS at once stream both trees and end with the trees each
    builds alone; merged, their rows share decode batches (float32 here: the same tokens); unmerged
    (the Compare tab), each call decodes alone, which keeps that equality in bf16 too."""
    import tts_viz.backends.merged_decode as md
    from tts_viz.policy import StepPolicy
    from tts_viz.runner import RunConfig, iter_searches, run_search
    from tts_viz.strategies.base import SearchConfig
    from tts_viz.verifiers.arith import ArithVerifier

    model, tok = tiny
    cfgs = [RunConfig(question="Tom has 3 apples and buys 4 more. How many?", gold="7", verifier="arith",
                      strategy=s, search=SearchConfig(n=4, width=2, seed=1, max_rounds=3), max_step_tokens=8)
            for s in ("beam", "dvts")]

    def kwargs():
        return {"policy": StepPolicy(TransformersBackend(model, tok), max_step_tokens=8, max_steps=3),
                "verifier": ArithVerifier()}

    alone = [run_search(c, **kwargs()) for c in cfgs]
    sizes = []
    together = md.decode_together
    monkeypatch.setattr(md, "decode_together", lambda reqs: (sizes.append(len(reqs)), together(reqs))[1])
    events = list(iter_searches(cfgs, run_kwargs=[kwargs(), kwargs()], merge=merge))
    finals = {i: t for i, t, final in events if final}
    assert sorted(finals) == [0, 1] and {i for i, _, final in events if not final} == {0, 1}
    assert max(sizes) == (2 if merge else 1)  # rows of both searches decoded in one batch, or never
    for i, trace in finals.items():
        assert trace.status == "done" and len(trace.nodes) > 4
        assert [(n.parent, n.text) for n in trace.nodes] == [(n.parent, n.text) for n in alone[i].nodes]
