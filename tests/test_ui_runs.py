"""The app's run stream (ui/runs.py) as a person sees it: the status line, the progress text, and a
second run of the same model waiting for the first and stopping when asked. A fake search stands in
for the model (the browser tests run the real one)."""

from __future__ import annotations

import threading

import pytest

from tts_viz.runner import RunConfig
from tts_viz.trace import Trace
from tts_viz.ui import runs


class FakePool:
    def __init__(self):
        self.locks: dict[str, threading.Lock] = {}

    def run_lock(self, policy):
        return self.locks.setdefault(policy, threading.Lock())

    def loaded(self):
        return ["tiny"]


def _snapshots(rounds_of):
    """A stand-in for runner.iter_searches: each search yields one snapshot per round."""
    def fake(cfgs, pool, cancel=None, merge=True):
        assert merge is False  # the app's sides are the runs the Search tab gives
        for r in range(1, max(rounds_of) + 1):
            for side, n in enumerate(rounds_of):
                if r <= n:
                    t = Trace(question=cfgs[side].question, strategy=cfgs[side].strategy)
                    t.rounds = r
                    yield side, t, r == n
    return fake


@pytest.fixture
def fake_pool(monkeypatch):
    p = FakePool()
    monkeypatch.setattr(runs, "pool", p)
    return p


def _cfg(strategy="beam"):
    return RunConfig(question="Tom has 3 apples and buys 4. How many?", policy="tiny", strategy=strategy)


def test_one_run_says_running_then_counts_its_rounds(fake_pool, monkeypatch):
    monkeypatch.setattr(runs, "iter_searches", _snapshots([2]))
    descs: list[str] = []
    got = list(runs.stream(_cfg(), threading.Event(), lambda f, desc="": descs.append(desc), label="A: "))
    assert got[0] == (None, "A: running")
    assert [t.rounds for t, msg in got[1:]] == [1, 2] and all(msg == "" for _, msg in got[1:])
    total = runs.expected_rounds(_cfg())
    assert descs == ["A: starting …", f"A: round 1 of ≤{total}", f"A: round 2 of ≤{total}"]
    assert not fake_pool.run_lock("tiny").locked()  # released at the end


def test_two_runs_side_by_side_report_each_sides_round(fake_pool, monkeypatch):
    monkeypatch.setattr(runs, "iter_searches", _snapshots([1, 2]))
    descs: list[str] = []
    got = list(runs.stream_together([_cfg(), _cfg("dvts")], threading.Event(),
                                    lambda f, desc="": descs.append(desc), ["A ", "B "]))
    assert got[0] == (None, "running side by side")
    assert [side for side, _ in got[1:]] == [0, 1, 1]
    assert descs[-1] == "A round 1 · B round 2"


def test_a_second_run_of_the_same_model_waits_and_stops_when_asked(fake_pool, monkeypatch):
    monkeypatch.setattr(runs, "iter_searches", _snapshots([1]))
    lock = fake_pool.run_lock("tiny")
    lock.acquire()  # another browser's run holds the model
    cancel = threading.Event()
    gen = runs.stream(_cfg(), cancel, lambda f, desc="": None)
    assert next(gen) == (None, "waiting: another run is using tiny…")
    cancel.set()
    assert list(gen) == [(None, "stopped before it started.")]
    lock.release()
