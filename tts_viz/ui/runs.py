"""What a run from the page needs, shared by the Search and Compare tabs: the page's values checked
into a RunConfig (every browser or API value is untrusted), the method knobs, the per-session cancel
flag and the stream of partial traces under the per-model run lock. No layout here."""

from __future__ import annotations

import os
import threading

import gradio as gr

from ..backends.openai_backend import is_server_name, parse_server_name
from ..models import DEFAULT_POLICY, EMBEDDED, ModelError, has_warm_cache
from ..runner import RunConfig, RunError, default_pool, iter_searches
from ..strategies.base import METHOD_KNOBS, TEXT_KNOBS, SearchConfig
from ..trace import TraceFormatError
from ..verifiers import oracle_name
from .servers import check_server_url

# The app's default policy; TTS_VIZ_TEST_POLICY (the browser tests) runs a tiny one with short searches
TEST_POLICY = os.environ.get("TTS_VIZ_TEST_POLICY", "").strip()
TEST_MODE = bool(TEST_POLICY)
POLICY = TEST_POLICY or DEFAULT_POLICY
ERRORS = (RunError, ModelError, TraceFormatError, ValueError, OSError)

pool = default_pool()
_cancels: dict[str, threading.Event] = {}  # per browser session: the running search's cancel flag
_cancels_guard = threading.Lock()


def session_key(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "local"


def start_cancel(request: gr.Request | None) -> tuple[str, threading.Event]:
    """A fresh cancel flag for this session's new run; an older run of the same session is stopped."""
    key, cancel = session_key(request), threading.Event()
    with _cancels_guard:
        old = _cancels.get(key)
        if old is not None:
            old.set()
        _cancels[key] = cancel
    return key, cancel


def end_cancel(key: str, cancel: threading.Event) -> None:
    with _cancels_guard:
        if _cancels.get(key) is cancel:
            del _cancels[key]


def stop_session(request: gr.Request | None) -> bool:
    """Set this session's cancel flag; False when nothing was running."""
    with _cancels_guard:
        ev = _cancels.get(session_key(request))
    if ev is None:
        return False
    ev.set()
    return True


def intermediates(problem, question) -> list:
    """The loaded problem's known intermediate values, while the question box still holds its text
    (an edited question is another problem: then only the arithmetic can be checked)."""
    if isinstance(problem, dict) and (problem.get("question") or "").strip() == (question or "").strip():
        got = problem.get("intermediates")
        return [dict(x) for x in got if isinstance(x, dict)] if isinstance(got, list) else []
    return []


def verifier_name(verifier, quality) -> str:
    """The Verifier dropdown plus the quality slider: 'oracle' at quality 1, else 'oracle@0.75'."""
    if not isinstance(verifier, str) or not verifier:
        raise RunError("Pick a verifier.")
    if verifier != "oracle":
        return verifier
    try:
        q = float(quality)
    except (TypeError, ValueError):
        raise RunError(f"The verifier quality must be a number between 0.5 and 1, got {quality!r}.") from None
    return oracle_name(q)


def number(value, what: str) -> float:
    """A browser (or API) value as a finite number, or our message."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise RunError(f"{what} must be a number, got {str(value)[:40]!r}.") from None
    if x != x or x in (float("inf"), float("-inf")):
        raise RunError(f"{what} must be a finite number, got {str(value)[:40]!r}.")
    return x


def whole(value, what: str) -> int:
    x = number(value, what)
    if x != int(x):
        raise RunError(f"{what} must be a whole number, got {x:g}.")
    if abs(x) > 2**31:
        raise RunError(f"{what} is out of range ({x:g}).")
    return int(x)


def checked_policy(policy) -> str:
    """The policy name from the page; a model server only where ui/servers.py allows its URL
    (the dropdown takes typed values, so a typed openai:...@URL is checked here too)."""
    if not isinstance(policy, (str, type(None))):
        raise RunError("Pick a policy.")
    name = (policy or POLICY).strip()
    if is_server_name(name):
        try:
            model, url = parse_server_name(name)
            return f"openai:{model}@{check_server_url(url)}"
        except ValueError as e:
            raise RunError(str(e)) from None
    return name


def make_config(question, gold, policy, verifier, strategy, n, width, lookahead, rev_len, temperature, seed,
                aggregation, max_step_tokens, max_rounds, quality=1.0, problem=None, knobs=None) -> RunConfig:
    """knobs: (particle temperature, ESS threshold, MCTS c, MCTS evaluation, DeepConf keep share, early-stop
    vote confidence) from Advanced, METHOD_KNOBS' order; None = defaults."""
    extra = {}
    if knobs is not None:
        words = ("Particle weight temperature", "Resampling threshold", "MCTS exploration c", "MCTS evaluation",
                 "DeepConf kept share", "Early-stop vote confidence")
        extra = {k: (v if k in TEXT_KNOBS and isinstance(v, str) else number(v, w))
                 for k, v, w in zip(METHOD_KNOBS, knobs, words)}
    search = SearchConfig(
        n=whole(n, "Budget N"), width=whole(width, "Beam width M"), lookahead=whole(lookahead, "Lookahead k"),
        revision_length=whole(rev_len, "Revision chain length L"), temperature=number(temperature, "Temperature"),
        seed=whole(seed, "Seed"), aggregation=str(aggregation), max_rounds=whole(max_rounds, "Max rounds"), **extra,
    )
    step = whole(max_step_tokens, "Max tokens per step")
    if not isinstance(strategy, str):
        raise RunError("Pick a strategy.")
    if not isinstance(question, (str, type(None))) or not isinstance(gold, (str, type(None))):
        raise RunError("The question and the gold answer must be text.")
    policy = checked_policy(policy)
    cfg = RunConfig(question=question or "", gold=(gold or "").strip() or None, policy=policy,
                    verifier=verifier_name(verifier, quality), strategy=strategy, search=search,
                    max_step_tokens=step, max_solution_tokens=max(step, step * int(max_rounds)),
                    intermediates=intermediates(problem, question))
    cfg.validate()
    return cfg


def method_knobs(*strategies):
    """Visibility of the method sliders (METHOD_KNOBS' order): each shows when a strategy on the
    Search or Compare tab uses it."""
    chosen = {s for s in strategies if isinstance(s, str)}
    return tuple(gr.update(visible=bool(chosen & set(users))) for users in METHOD_KNOBS.values())


def expected_rounds(cfg: RunConfig) -> int:
    if cfg.strategy in ("majority", "best-of-n", "weighted-best-of-n"):
        return 1
    if cfg.strategy == "revisions":
        return max(1, min(cfg.search.revision_length, cfg.search.n))
    if cfg.strategy == "deepconf":  # the warm-up, then the rest of the budget
        return 1 if cfg.search.n < 4 else 2
    if cfg.strategy == "early-stop-vote":  # at most one round per batch of M samples
        return -(-cfg.search.n // max(1, cfg.search.width))
    return cfg.search.max_rounds


def load_hint(name: str) -> str:
    """How long a first load takes: converting the GGUF (cold) or reading the warm cache."""
    if name in EMBEDDED:
        return "a few seconds from the cache" if has_warm_cache(name) else "converting its GGUF, about 30-60 s"
    return "loading its weights"


def _wait_for(lock: threading.Lock, cancel: threading.Event, policy: str, label: str, shape):
    """Take the model's run lock, yielding shape(status line) meanwhile; False when stopped first."""
    if lock.acquire(blocking=False):
        return True
    yield shape(f"{label}waiting: another run is using {policy}…")
    while not lock.acquire(timeout=0.5):
        if cancel.is_set():
            yield shape(f"{label}stopped before it started.")
            return False
    return True


def stream(cfg: RunConfig, cancel: threading.Event, progress, label: str = ""):
    """Yield (partial trace, "") of one run, or (None, status line): stream_together with one side."""
    for side, item in stream_together([cfg], cancel, progress, [label]):
        yield (None, item) if side is None else (item, "")


def stream_together(cfgs: list[RunConfig], cancel: threading.Event, progress, labels: list[str]):
    """Yield (side, partial trace) of one run or several runs of one policy at once, holding its run
    lock (one search per model at a time); (None, line) for a status line. Several take turns on the
    model, each decoding alone (runner.iter_searches, merge=False): a merged batch would be faster,
    but in bf16 it can change a sampled token, and a side should be the very run the Search tab gives
    for the same settings."""
    policy = cfgs[0].policy
    alone = len(cfgs) == 1
    lead = labels[0] if alone else ""
    lock = pool.run_lock(policy)
    if not (yield from _wait_for(lock, cancel, policy, lead, lambda m: (None, m))):
        return
    try:
        total = sum(expected_rounds(c) for c in cfgs)
        loaded = policy in pool.loaded() or is_server_name(policy)
        if loaded:
            progress(0.0, desc=f"{lead}starting …")
        # a load has no steps to count: no progress bar stuck at 0%, the status line says what happens
        yield None, (f"{lead}running" + ("" if alone else " side by side") if loaded else
                     f"{lead}loading {policy} (first run only: {load_hint(policy)}) …")
        rounds = [0] * len(cfgs)
        for side, tr, _final in iter_searches(cfgs, pool, cancel=cancel, merge=False):
            rounds[side] = tr.rounds
            if alone:
                desc = f"{lead}round {tr.rounds} of ≤{total}" if tr.rounds else f"{lead}first search round running"
            else:
                desc = " · ".join(f"{lab}round {r}" for lab, r in zip(labels, rounds))
            progress(min(1.0, sum(rounds) / max(1, total)), desc=desc)
            yield side, tr
    finally:
        lock.release()
