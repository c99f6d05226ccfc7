"""Run one search: validate the request, get models from the pool, run a strategy, finish the Trace.

This is what the CLI and the app call. `run_search` blocks and reports progress through a
callback; `iter_search` runs it in a worker thread and yields a snapshot of the partial Trace
after every round (what the app streams), ending with the final one.
"""

from __future__ import annotations

import contextlib
import copy
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from .backends import policy_backend
from .backends.transformers_backend import Cancelled
from .models import DEFAULT_POLICY, QUANTS, ModelError, ModelPool
from .policy import StepPolicy
from .strategies import STRATEGIES, get_strategy
from .strategies.base import SearchConfig, SearchContext
from .strategies.mcts import EVALUATIONS as MCTS_EVALUATIONS
from .trace import CANCELLED, DONE, FAILED, Trace
from .problems import Problem
from .step_truth import label_trace
from .verifiers import NEEDS_POLICY, base_verifier, check_verifier_name, default_verifier, is_oracle, make_verifier
from .verifiers.base import score_thresholds

MAX_QUESTION_CHARS = 4000
MAX_BUDGET = 64


class RunError(ValueError):
    """A request that cannot run; the message is for the user."""


@dataclass
class RunConfig:
    question: str
    gold: str | None = None
    policy: str = DEFAULT_POLICY
    # None = default_verifier(policy): the trained PRM where one is trained for the policy, else arith
    verifier: str | None = None
    judge: str | None = None  # model that self-judge uses; None = the policy itself
    # the problem's known intermediate values (generated problems): exact step labels for the
    # oracle verifier and the step truth on the tree (problems.label_steps)
    intermediates: list[dict] = field(default_factory=list)
    strategy: str = "beam"
    search: SearchConfig = field(default_factory=SearchConfig)
    max_step_tokens: int = 96  # a longer step is cut and continued next round; the batch waits for its longest row
    max_solution_tokens: int = 512
    # precision of the models loaded here: None = the default (bf16, or int8 weights on an AVX2 CPU;
    # nf4 for hub models on CUDA), "nf4" = bitsandbytes 4-bit, "none" = full precision
    quant: str | None = field(default_factory=lambda: os.environ.get("TTS_VIZ_QUANT") or None)

    def __post_init__(self) -> None:
        if self.verifier is None:
            self.verifier = default_verifier(self.policy)

    def validate(self) -> None:
        q = (self.question or "").strip()
        if not q:
            raise RunError("The question is empty: type a problem or pick one.")
        if len(q) > MAX_QUESTION_CHARS:
            raise RunError(
                f"The question is {len(q):,} characters long; the limit is {MAX_QUESTION_CHARS:,} "
                "(a small model's context fills up fast). Shorten it."
            )
        if self.quant is not None and self.quant not in QUANTS:
            raise RunError(f"Unknown precision {self.quant!r}: use nf4 (bitsandbytes 4-bit) or none.")
        if self.strategy not in STRATEGIES:
            raise RunError(f"Unknown strategy '{self.strategy}'. Choose one of: {', '.join(STRATEGIES)}.")
        try:
            check_verifier_name(self.verifier)
        except ValueError as e:
            raise RunError(str(e)) from None
        if is_oracle(self.verifier) and not (self.gold or "").strip():
            raise RunError("The oracle verifier knows the answer, and this problem has none: give a gold answer "
                           "(or pick a generated, GSM8K or MATH-500 problem), or choose another verifier.")
        s = self.search
        if not 1 <= s.n <= MAX_BUDGET:
            raise RunError(f"Budget N must be between 1 and {MAX_BUDGET}, got {s.n}.")
        if not 1 <= s.width <= s.n:
            raise RunError(f"Beam width M must be between 1 and N={s.n}, got {s.width}.")
        if s.lookahead < 0 or s.revision_length < 1 or s.max_rounds < 1:
            raise RunError("Lookahead must be >= 0, revision length and max rounds >= 1.")
        if not 0 <= s.temperature <= 2:
            raise RunError(f"Temperature must be between 0 and 2, got {s.temperature}.")
        if not 0.01 <= s.particle_temperature <= 10:
            raise RunError(f"Particle weight temperature must be between 0.01 and 10, got {s.particle_temperature}.")
        if not 0 <= s.ess_threshold <= 1:
            raise RunError(f"The resampling threshold (share of the particles) must be between 0 and 1, got {s.ess_threshold}.")
        if not 0 <= s.exploration <= 10:
            raise RunError(f"MCTS exploration c must be between 0 and 10, got {s.exploration}.")
        if s.mcts_evaluation not in MCTS_EVALUATIONS:
            raise RunError(f"MCTS evaluation must be one of {', '.join(MCTS_EVALUATIONS)}, got {s.mcts_evaluation!r}.")
        if not 0 < s.confidence_keep <= 1:
            raise RunError(f"DeepConf's kept share must be above 0 and at most 1, got {s.confidence_keep}.")
        if not 0.5 < s.vote_confidence <= 1:
            raise RunError(f"Early stopping's vote confidence must be above 0.5 and at most 1, got {s.vote_confidence}.")
        if s.aggregation not in ("last", "min", "prod"):
            raise RunError(f"Unknown aggregation '{s.aggregation}': use last, min or prod.")
        if STRATEGIES[self.strategy].needs_verifier and self.verifier == "none":
            raise RunError(f"The strategy '{self.strategy}' selects by verifier scores: pick a verifier.")

    def problem(self) -> Problem | None:
        """The problem as the labeller and the oracle see it; None without a gold answer."""
        gold = (self.gold or "").strip()
        if not gold:
            return None
        return Problem(id="run", question=self.question.strip(), gold=gold,
                       source="arith" if self.intermediates else "custom", intermediates=list(self.intermediates))


def verifier_precision(verifier) -> str | None:
    """What a model-backed verifier's weights run in (None for arith, the oracle)."""
    for attr in ("backend", "policy_backend"):
        b = getattr(verifier, attr, None)
        if b is not None and getattr(b, "precision", None):
            return b.precision
    model = getattr(verifier, "model", None)
    if model is not None and hasattr(model, "modules"):
        from .models import precision_label

        return precision_label(model)
    inner = getattr(verifier, "inner", None)
    return verifier_precision(inner) if inner is not None else None


_default_pool: ModelPool | None = None


def default_pool() -> ModelPool:
    global _default_pool
    if _default_pool is None:
        _default_pool = ModelPool()
    return _default_pool


def build_verifier(cfg: RunConfig, pool: ModelPool | None = None):
    """The verifier run_search would use for cfg (None for "none"), its models from the shared pool:
    what re-scores a stored trace (the sweep's pools) when the verifier reads the policy's states."""
    if cfg.verifier == "none":
        return None
    pool = pool or default_pool()
    # only a verifier that reads the policy loads it (arith and the oracle re-score without a model)
    backend = policy_backend(cfg.policy, pool, quant=cfg.quant) if base_verifier(cfg.verifier) in NEEDS_POLICY else None
    return make_verifier(cfg.verifier, pool, backend, judge=cfg.judge, problem=cfg.problem(),
                         seed=cfg.search.seed, quant=cfg.quant)


def run_search(
    cfg: RunConfig,
    pool: ModelPool | None = None,
    on_progress: Callable[[Trace], None] | None = None,
    cancel: threading.Event | None = None,
    policy: StepPolicy | None = None,
    verifier=None,
) -> Trace:
    """Run and return the Trace; never raises for model or search failures after validation:
    a cancelled run returns the partial tree (status "cancelled"), a failure status "error"."""
    cfg.validate()
    pool = pool or default_pool()
    cancel = cancel or threading.Event()
    trace = Trace(
        question=cfg.question.strip(),
        gold=cfg.gold.strip() if cfg.gold and cfg.gold.strip() else None,
        strategy=cfg.strategy,
        params=cfg.search.to_dict(),
        policy=cfg.policy,
        verifier=cfg.verifier + (f" ({cfg.judge})" if cfg.judge and cfg.verifier == "self-judge" else ""),
    )
    truth_problem = cfg.problem()
    t0, cpu0 = time.perf_counter(), None
    try:
        if policy is None:
            policy = StepPolicy(
                policy_backend(cfg.policy, pool, quant=cfg.quant),
                max_step_tokens=cfg.max_step_tokens,
                max_steps=cfg.search.max_rounds,
                max_solution_tokens=cfg.max_solution_tokens,
            )
        if verifier is None and cfg.verifier != "none":
            verifier = make_verifier(cfg.verifier, pool, policy.backend, judge=cfg.judge, problem=truth_problem,
                                     seed=cfg.search.seed, quant=cfg.quant)
        # Per-run accounting objects, so concurrent runs sharing a model do not mix counts.
        policy.compute = trace.model_compute("policy", policy.backend.params)
        if verifier is not None:
            verifier.compute = trace.model_compute("verifier", verifier.compute.params)
            trace.step_threshold, trace.answer_threshold = score_thresholds(verifier)
        trace.precision = {"policy": getattr(policy.backend, "precision", "?")}
        judged_in = verifier_precision(verifier) if verifier is not None else None
        if judged_in:
            trace.precision["verifier"] = judged_in
        trace.load_seconds = time.perf_counter() - t0
        t0, cpu0 = time.perf_counter(), time.process_time()
        ctx = SearchContext(
            question=trace.question,
            policy=policy,
            verifier=verifier,
            config=cfg.search,
            trace=trace,
            gold=trace.gold,
            on_progress=None if on_progress is None else (lambda t: on_progress(label_trace(t, truth_problem))),
            cancel=cancel,
        )
        if on_progress is not None:  # models are ready: show the root at once, before the first round
            on_progress(trace)
        get_strategy(cfg.strategy).run(ctx)
        trace.status = DONE
    except Cancelled:
        trace.status = CANCELLED
    except ModelError as e:
        trace.status, trace.error = FAILED, str(e)
    except Exception as e:  # keep the partial tree; say what failed
        trace.status, trace.error = FAILED, f"{type(e).__name__}: {e}"
    trace.seconds = time.perf_counter() - t0
    if cpu0 is not None and trace.seconds >= 2.0 and not str(trace.precision.get("policy", "")).startswith("served"):
        # a served policy computes elsewhere: its low share here says nothing about contention
        trace.cpu_share = round((time.process_time() - cpu0) / trace.seconds / max(1, torch.get_num_threads()), 3)
    return label_trace(trace, truth_problem)


def iter_search(
    cfg: RunConfig, pool: ModelPool | None = None, cancel: threading.Event | None = None, **kw
) -> Iterator[Trace]:
    """Yield a snapshot of the Trace after each round, then the final Trace.

    Validation errors raise RunError before the thread starts.
    """
    # closing: a consumer that goes away (Stop pressed, browser closed) closes iter_searches, which stops the search
    with contextlib.closing(iter_searches([cfg], pool, cancel, [kw])) as snapshots:
        for _, trace, _ in snapshots:
            yield trace


def iter_searches(
    cfgs: list[RunConfig], pool: ModelPool | None = None, cancel: threading.Event | None = None,
    run_kwargs: list[dict] | None = None, merge: bool = True,
) -> Iterator[tuple[int, Trace, bool]]:
    """Run several searches at once and yield (index, trace snapshot, final?) as each round lands,
    every search's final Trace last of its own. On a policy in process the searches take turns, and
    with merge their decode steps run as one batch (backends/merged_decode.py: faster, but in bf16
    the shared batch can change a sampled token); merge=False decodes each alone, so each search
    writes exactly what it writes on its own. On a model server they simply overlap. run_kwargs[i]
    goes to run_search (tests pass a policy and verifier). Validation errors raise RunError before
    any thread starts."""
    from .backends.merged_decode import DecodeMerger
    from .backends.openai_backend import is_server_name

    for cfg in cfgs:
        cfg.validate()
    cancel = cancel or threading.Event()
    run_kwargs = run_kwargs or [{} for _ in cfgs]
    # one search alone, or searches on a model server, need no turns
    served = all(is_server_name(c.policy) for c in cfgs)
    merger = None if served or len(cfgs) < 2 else DecodeMerger(merge=merge)
    q: queue.Queue = queue.Queue()

    def work(i: int) -> None:
        try:
            progress = lambda t: q.put(("progress", i, copy.deepcopy(t)))
            if merger is None:
                final = run_search(cfgs[i], pool, on_progress=progress, cancel=cancel, **run_kwargs[i])
            else:
                with merger.member():
                    final = run_search(cfgs[i], pool, on_progress=progress, cancel=cancel, **run_kwargs[i])
            q.put(("done", i, final))
        except BaseException as e:  # pragma: no cover - run_search catches; belt and braces
            q.put(("error", i, e))

    workers = [threading.Thread(target=work, args=(i,), name=f"tts-viz-search-{i}", daemon=True)
               for i in range(len(cfgs))]
    for w in workers:
        w.start()
    left = len(cfgs)
    try:
        while left:
            kind, i, item = q.get()
            if kind == "error":
                raise item
            if kind == "done":
                left -= 1
            yield i, item, kind == "done"
    finally:
        if any(w.is_alive() for w in workers):  # the consumer went away: stop the searches too
            cancel.set()
