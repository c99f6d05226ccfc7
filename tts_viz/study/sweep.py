"""The calibration sweep: every strategy at every budget on a problem split, one JSONL row per result.

    python -m tts_viz sweep --problem-set arith --levels 1-5 --per-level 30 --split val \
        --strategies majority,best-of-n,weighted-best-of-n,beam,dvts,revisions --budgets 1,2,4,8,16 \
        --policy qwen2.5-coder-0.5b --verifier self-judge --results runs/sweep.jsonl
    python -m tts_viz fit-table --results runs/sweep.jsonl --split val --binning quantile

Split rule (seeded, disjoint, balanced, stable when --per-level grows): problems are paired by their
index within their level (indices 2j and 2j+1; GSM8K counts as one level); for each pair a hash of
(split seed, level, j) decides which member is validation ("val") and which is held-out ("test").
So every level is split exactly in half, and a problem's split never depends on how many were
generated.

Work reuse: per problem, ONE pool of max(budgets) whole solutions is sampled and scored (one
best-of-n run at N = max(budgets)); majority / best-of-n / weighted-best-of-n at every N come from
its first N samples (the selection rule applied to them), with pass@N recorded for reference;
early-stop-vote is replayed on the pool in its order (batches of M, stopping where the live rule
would), and a rule added to an existing results file is read off the stored pool row. The
pool also gives the problem's difficulty: oracle = pass@1 over the whole pool, predicted = mean
aggregated verifier score of its first 4 samples (what `auto` probes). Tokens, FLOPs and seconds of
a subsample are the pool's totals scaled by the subsample's share of generated tokens. Beam and
lookahead run once per budget. DVTS and revisions nest: a run at budget N holds runs at smaller budgets
(DVTS's first k/M subtrees at the same width; revisions' first k/L chains, or chain 0's first k
attempts), so each runs once at its largest pending budget and the smaller ones are read off that
run (`Strategy.part_of`), the selection rule applied to the part. Such a row records `derived_from`
(the budget it came from) and costs the part's share of generated tokens. A budget that is no part
(DVTS@1 has width 1) runs on its own.

`auto` is evaluated on the same pool (common random numbers, as Snell et al. evaluate compute-optimal
scaling): its probes are the pool's first probe_count(N) samples, the decision is the live one
(`allocate.decide`, or the built-in rule), and a pool rule chosen at N answers from the pool's first N
samples, so auto and the rule it picked see the very same samples. A strategy that cannot start from
whole samples (beam, DVTS, revisions) runs live on N - probes; that run is kept in the row
(`sub_run`) and reused when a refitted table picks it again. Its row records `evaluated` =
"pool-probes" and costs the probes (their share of the pool) plus the sub-run.

Results file: append-only JSONL, one row per (problem, strategy, params, budget), flushed and
fsynced as each finishes; plus one "pool" row per problem (difficulties, the pool's answers and
scores). Rerunning the same command skips rows already present (an interrupted sweep resumes where it
stopped); rows with status "error" are retried. A truncated last line (a kill mid-write) is ignored.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..allocate import (POOL_STRATEGIES, StrategyTable, current_rows, decider_id, default_table_path, fit_table,
                       params_key, predicted_difficulty, row_key)
from ..grading import is_correct
from ..problems import Problem, arith_problem_set
from ..strategies.auto import SELECTION_METHOD
from ..strategies.select import pick
from ..runner import RunConfig
from ..strategies import STRATEGIES
from ..strategies.base import METHOD_KNOBS, TEXT_KNOBS, SearchConfig
from ..trace import FINISHED, SELECTED, Trace, TraceFormatError
from ..results import load_results  # noqa: F401 - re-exported: the study's readers use it from here
from ..verifiers import default_verifier

DEFAULT_BUDGETS = (1, 2, 4, 8, 16)
DEFAULT_STRATEGIES = "majority,best-of-n,weighted-best-of-n,beam,dvts,revisions"
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "beam": {"width": 4},
    "dvts": {"width": 4},
    "lookahead": {"width": 4, "lookahead": 1},
    "revisions": {"revision_length": 4},
}
PROBES = 4  # pool samples averaged for the predicted difficulty (auto's probe count at N >= 8)
# read off each problem's pool: the selection rules and early-stop-vote (replayed on the pool's order)
POOL_RULES = (*POOL_STRATEGIES, "early-stop-vote")
REPLAYED_PARAMS = {"width", "vote_confidence"}  # early-stop-vote's knobs the replay follows (its batch and rule)
AUTO_EVAL = "pool-probes"  # how the sweep evaluates auto (part of its rows' `table` key: a change reruns auto)

RunFn = Callable[[Any], Any]  # RunConfig -> Trace


# ------------------------------------------------------------------------------------------------
# Parsing helpers
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StrategySpec:
    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def label(self) -> str:
        return self.name + "".join(f":{k}={v}" for k, v in self.params)


TEXT_PARAMS = ("aggregation", *TEXT_KNOBS)
FLOAT_PARAMS = ("temperature", *(k for k in METHOD_KNOBS if k not in TEXT_PARAMS))


def parse_strategies(text: str) -> list[StrategySpec]:
    """'majority,beam:width=2,beam:width=4,revisions:revision_length=2' -> specs.

    A strategy named without parameters gets DEFAULT_PARAMS (beam/dvts width 4, revisions length 4).
    """
    out = []
    for item in [t.strip() for t in text.split(",") if t.strip()]:
        name, *kvs = item.split(":")
        if name not in STRATEGIES:
            raise ValueError(f"Unknown strategy '{name}' in --strategies. Choose from: {', '.join(STRATEGIES)}.")
        params = dict(DEFAULT_PARAMS.get(name, {})) if not kvs else {}
        for kv in kvs:
            if "=" not in kv:
                raise ValueError(f"Strategy parameter '{kv}' in '{item}' must look like key=value.")
            k, v = kv.split("=", 1)
            k = k.strip().replace("-", "_")
            if k not in ("width", "lookahead", "revision_length") + TEXT_PARAMS + FLOAT_PARAMS:
                raise ValueError(f"Unknown strategy parameter '{k}' in '{item}' (width, lookahead, revision_length, "
                                 f"{', '.join(TEXT_PARAMS + FLOAT_PARAMS)}).")
            try:
                params[k] = v if k in TEXT_PARAMS else float(v) if k in FLOAT_PARAMS else int(v)
            except ValueError:
                raise ValueError(f"Strategy parameter '{kv}' in '{item}' needs a number.") from None
        if name in POOL_STRATEGIES and set(params) - {"temperature"}:
            raise ValueError(f"'{name}' takes no parameters but temperature: it is a selection rule over the sample pool.")
        out.append(StrategySpec(name, tuple(sorted(params.items()))))
    if not out:
        raise ValueError("--strategies is empty.")
    return out


def parse_int_list(text: str, what: str) -> list[int]:
    """'1-5' -> [1..5]; '1,2,4' -> [1, 2, 4]."""
    out: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part:
                a, b = part.split("-", 1)
                out += list(range(int(a), int(b) + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise ValueError(f"{what} must look like '1-5' or '1,2,4', got {text!r}.") from None
    if not out or min(out) < 1:
        raise ValueError(f"{what} must be positive integers, got {text!r}.")
    return sorted(set(out))


# ------------------------------------------------------------------------------------------------
# Problems and the split
# ------------------------------------------------------------------------------------------------


def split_of(problem_index: int, group: Any, seed: int = 0) -> str:
    """'val' or 'test' for the problem at `problem_index` within `group` (its level).

    Indices 2j and 2j+1 form a pair; a hash of (seed, group, j) picks which one is validation.
    """
    j = problem_index // 2
    h = hashlib.sha256(f"tts-viz-split:{seed}:{group}:{j}".encode()).digest()
    return "val" if problem_index % 2 == h[0] % 2 else "test"


def load_problems(problem_set: str = "arith", levels: Sequence[int] = (1, 2, 3, 4, 5), per_level: int = 30,
                  problem_seed: int = 0, data: str | None = None) -> list[tuple[Problem, int, Any]]:
    """(problem, index within its level, level group) for the sweep's problem set."""
    if problem_set == "arith":
        return [(p, p.meta["index"], p.level) for p in arith_problem_set(tuple(levels), per_level, problem_seed)]
    if problem_set == "word":
        from ..word_problems import word_problem_set

        return [(p, p.meta["index"], p.level) for p in word_problem_set(tuple(levels), per_level, problem_seed)]
    from ..problems import load_dataset_problems

    rows = load_dataset_problems(problem_set, path=data)
    out = []
    if problem_set == "math500":
        for lv in levels:
            mine = [p for p in rows if p.level == lv][:per_level]
            out += [(p, i, lv) for i, p in enumerate(mine)]
    else:
        out = [(p, i, "all") for i, p in enumerate(rows[:per_level])]
    return out


# ------------------------------------------------------------------------------------------------
# Results file
# ------------------------------------------------------------------------------------------------


def auto_table(cfg: "SweepConfig") -> tuple[StrategyTable | None, Path | None]:
    """The table that decides `auto` in this sweep: the one at the default path for the
    policy/verifier (as AutoStrategy finds it), or (None, None) for the built-in rule."""
    path = default_table_path(cfg.policy, cfg.verifier_label)
    return (StrategyTable.load(path), path) if path.is_file() else (None, None)


def auto_decider(table: StrategyTable | None) -> str:
    """What decides `auto` in a sweep, as its rows record it (`table`, part of their key): the table's
    fingerprint with the decision rule (or 'built-in'), and how auto is evaluated."""
    return f"{decider_id(table)}/{AUTO_EVAL}"


class ResultsWriter:
    """Append-only JSONL; every row is flushed and fsynced before the next run starts.

    The file is opened per row, not held: a sweep runs for hours, and anything that replaces the
    file meanwhile (a `git stash`, `git checkout`, an editor) must not leave later rows going to a
    deleted inode."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.written = 0

    def write(self, row: dict[str, Any]) -> None:
        line = json.dumps(row, ensure_ascii=False, default=str) + "\n"
        with open(self.path, "a+b") as f:
            if f.tell():  # append mode: at the end; a line cut short by a kill is ended first
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        self.written += 1


# ------------------------------------------------------------------------------------------------
# The sweep
# ------------------------------------------------------------------------------------------------


@dataclass
class SweepConfig:
    results: str = "runs/sweep.jsonl"
    problem_set: str = "arith"
    levels: tuple[int, ...] = (1, 2, 3, 4, 5)
    per_level: int = 30
    problem_seed: int = 0
    data: str | None = None
    split: str = "val"  # val / test / all
    split_seed: int = 0
    strategies: list[StrategySpec] = field(default_factory=lambda: parse_strategies(DEFAULT_STRATEGIES))
    budgets: tuple[int, ...] = DEFAULT_BUDGETS
    # budgets of the strategies that run once per budget (beam, dvts, revisions, auto); None = budgets.
    # Pool-based budgets are nearly free (subsamples), these are not.
    run_budgets: tuple[int, ...] | None = None
    policy: str = "qwen2.5-coder-0.5b"
    verifier: str | None = None  # None = default_verifier(policy), as a single run
    judge: str | None = None
    quant: str | None = None  # precision of the models loaded here (RunConfig.quant)
    # a folder of pool traces: a problem's pool is sampled once and re-scored for every other verifier
    # (its samples do not depend on the verifier), e.g. the oracle study's four qualities
    pool_traces: str | None = None
    seed: int = 0
    temperature: float = 0.8
    aggregation: str = "last"
    # same defaults as a single run (RunConfig / SearchConfig)
    max_rounds: int = SearchConfig.max_rounds
    max_step_tokens: int = RunConfig.max_step_tokens
    max_solution_tokens: int = RunConfig.max_solution_tokens
    limit: int | None = None  # at most this many problems (after the split), for quick checks
    # problems in flight at once: >1 only pays on a model server (--policy openai:...), which batches them
    concurrency: int = 1

    def __post_init__(self) -> None:
        if self.verifier is None:
            self.verifier = default_verifier(self.policy)

    @property
    def verifier_label(self) -> str:
        """The verifier as a Trace records it (self-judge with another judge model says which)."""
        return self.verifier + (f" ({self.judge})" if self.judge and self.verifier == "self-judge" else "")


def _run_config(cfg: SweepConfig, question: str, gold: str, strategy: str, n: int, params: dict[str, Any],
                intermediates: Sequence[dict] = ()):
    width = max(1, min(int(params.get("width", 4)), n))
    search = SearchConfig(
        n=n, width=width, lookahead=int(params.get("lookahead", 1)),
        revision_length=int(params.get("revision_length", 4)),
        temperature=float(params.get("temperature", cfg.temperature)), seed=cfg.seed,
        aggregation=params.get("aggregation", cfg.aggregation), max_rounds=cfg.max_rounds,
        # the newer methods' knobs, as a strategy spec's params (e.g. mcts:exploration=2)
        **{k: (str(params[k]) if k in TEXT_KNOBS else float(params[k])) for k in METHOD_KNOBS if k in params},
    )
    return RunConfig(question=question, gold=gold, policy=cfg.policy, verifier=cfg.verifier, judge=cfg.judge,
                     quant=cfg.quant, strategy=strategy, search=search, max_step_tokens=cfg.max_step_tokens,
                     max_solution_tokens=cfg.max_solution_tokens, intermediates=list(intermediates))


def _problem_run_config(cfg: SweepConfig, problem: Problem, strategy: str, n: int, params: dict[str, Any]):
    return _run_config(cfg, problem.question, problem.gold, strategy, n, params, problem.intermediates)


def pool_trace_path(cfg: SweepConfig, problem: Problem, run_cfg) -> Path:
    """Where a problem's pool trace is kept: named by everything that shapes its samples, not the verifier."""
    s = run_cfg.search
    shape = json.dumps([cfg.policy, problem.id, problem.question, s.n, s.temperature, s.seed,
                        run_cfg.max_step_tokens, run_cfg.max_solution_tokens, s.max_rounds])
    return Path(cfg.pool_traces) / f"pool-{problem.id}-{hashlib.sha256(shape.encode()).hexdigest()[:12]}.json"


def sample_pool(cfg: SweepConfig, problem: Problem, strategy: str, size: int, run_fn: RunFn,
                make_verifier_fn: Callable[[Any], Any] | None = None):
    """(the problem's pool trace, whether it was re-scored): re-scored from `pool_traces` when sampled
    before (under any verifier), else sampled by run_fn and kept there."""
    run_cfg = _problem_run_config(cfg, problem, strategy, size, {})
    if not cfg.pool_traces:
        return run_fn(run_cfg), False
    path = pool_trace_path(cfg, problem, run_cfg)
    if path.is_file():
        try:
            old = Trace.load(path)
        except (OSError, TraceFormatError):
            old = None
        if old is not None and old.status == "done":
            from ..rescore import rescore_trace
            from ..strategies.auto import SELECTION_METHOD

            if make_verifier_fn is None:
                from ..runner import build_verifier as make_verifier_fn  # the policy's backend for prm / probe
            verifier = make_verifier_fn(run_cfg) if cfg.verifier != "none" else None
            if verifier is None:
                return old, True
            return rescore_trace(old, verifier, cfg.aggregation, SELECTION_METHOD.get(strategy, "best"),
                                 cfg.verifier_label), True
    trace = run_fn(run_cfg)
    if trace.status == "done":
        path.parent.mkdir(parents=True, exist_ok=True)
        trace.save(path)
    return trace, False


def default_run_fn(cfg: SweepConfig) -> RunFn:
    """run_search with the shared model pool: the models load once and stay loaded."""
    from ..runner import run_search

    return lambda run_cfg: run_search(run_cfg)


def _path_tokens(trace, leaf_id: int) -> int:
    return sum(n.tokens for n in trace.path(leaf_id))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _base_row(cfg: SweepConfig, problem: Problem, split: str) -> dict[str, Any]:
    return {"problem_id": problem.id, "problem_set": cfg.problem_set, "level": problem.level, "split": split,
            "policy": cfg.policy, "verifier": cfg.verifier_label, "seed": cfg.seed, "gold": problem.gold}


def pool_rows(cfg: SweepConfig, problem: Problem, split: str, trace, pool_specs: Sequence[StrategySpec],
              budgets: Sequence[int]) -> list[dict[str, Any]]:
    """The 'pool' row and one row per pool-based strategy x budget, all from one pool trace."""
    leaves = sorted([n for n in trace.nodes if n.status in ("finished", "selected")], key=lambda n: n.id)
    size = len(leaves)
    totals = trace.totals()
    corr = [bool(is_correct(n.answer, problem.gold)) for n in leaves]
    oracle = sum(corr) / size if size else None
    predicted = predicted_difficulty([n.agg_score for n in leaves[:PROBES]])
    pool = {
        **_base_row(cfg, problem, split), "strategy": "pool", "params": {}, "budget": max(budgets),
        "difficulty": predicted, "predicted_difficulty": predicted, "oracle_difficulty": oracle,
        "answer": None, "correct": None, "pass_at_n": any(corr), "samples": size,
        "answers": [n.answer for n in leaves], "scores": [n.agg_score for n in leaves], "sample_correct": corr,
        "sample_tokens": [_path_tokens(trace, n.id) for n in leaves],
        "tokens": totals.prompt_tokens + totals.generated_tokens, "generated_tokens": totals.generated_tokens,
        "flops": totals.flops, "seconds": round(trace.seconds, 3),
        "status": "done" if trace.status == "done" and size else "error", "error": trace.error, "time": _now(),
        **_precision(trace),
    }
    return [pool] + rows_from_pool(pool, pool_specs, budgets)


def _prefix_share(k: int, size: int, known: dict[int, float], total: float) -> float:
    """The share of the pool's generated tokens its first k samples hold, from the shares known at some
    prefixes (a stored rule's row at budget k), linear between them (0 at 0, 1 at the whole pool)."""
    points = sorted({0: 0.0, size: 1.0, **{n: t / total for n, t in known.items() if 0 < n < size and total}}.items())
    for (a, sa), (b, sb) in zip(points, points[1:]):
        if a <= k <= b:
            return sa if b == a else sa + (sb - sa) * (k - a) / (b - a)
    return k / max(1, size)


def rows_from_pool(pool: dict[str, Any], pool_specs: Sequence[StrategySpec], budgets: Sequence[int],
                   known_tokens: dict[int, float] | None = None) -> list[dict[str, Any]]:
    """One row per pool rule x budget read off a problem's pool row: the selection rules applied to its
    first N samples, early-stop-vote replayed on them in their order (it may stop before N). Costs are
    the pool's totals times the share of its generated tokens those samples hold. An older pool row has
    no per-sample tokens: then the shares come from `known_tokens` (budget -> generated tokens of the
    rules' rows already stored for the problem, exact at those budgets), linear in between."""
    from types import SimpleNamespace

    from ..strategies.early_stop_vote import samples_drawn

    answers, scores = pool.get("answers") or [], pool.get("scores") or []
    corr = pool.get("sample_correct") or []
    size = len(answers)
    sample_tokens = pool.get("sample_tokens")
    by_tokens = isinstance(sample_tokens, list) and len(sample_tokens) == size
    leaves = [SimpleNamespace(id=i, answer=a, agg_score=s) for i, (a, s) in enumerate(zip(answers, scores))]
    base = {k: pool.get(k) for k in ("problem_id", "problem_set", "level", "split", "policy", "verifier", "seed",
                                     "gold", "difficulty", "predicted_difficulty", "oracle_difficulty")}
    rows = []
    for n_budget in budgets:
        for spec in pool_specs:
            k, eff = n_budget, {}
            if spec.name == "early-stop-vote":
                knobs = {"width": SearchConfig.width, "vote_confidence": SearchConfig.vote_confidence, **spec.param_dict}
                eff = {"width": min(int(knobs["width"]), n_budget), "vote_confidence": float(knobs["vote_confidence"])}
                k = samples_drawn(answers[:n_budget], n_budget, eff["width"], eff["vote_confidence"])
            first = leaves[:k]
            share = ((sum(sample_tokens[:k]) / (sum(sample_tokens) or 1)) if by_tokens else
                     _prefix_share(k, size, known_tokens or {}, float(pool.get("generated_tokens") or 0)))
            answer = pick(first, SELECTION_METHOD.get(spec.name, "majority"))[0].answer if first else None
            short = size < n_budget
            rows.append({
                **base, "strategy": spec.name, "params": spec.param_dict, "effective_params": eff,
                "budget": n_budget, "answer": answer, "correct": bool(is_correct(answer, pool.get("gold"))),
                "pass_at_n": any(corr[:k]), "samples": len(first),
                "tokens": round(float(pool.get("tokens") or 0) * share),
                "generated_tokens": sum(sample_tokens[:k]) if by_tokens else round(float(pool.get("generated_tokens") or 0) * share),
                "flops": float(pool.get("flops") or 0) * share, "seconds": round(float(pool.get("seconds") or 0) * share, 3),
                "status": "error" if short else pool.get("status", "done"),
                "error": pool.get("error") or (f"the pool has {size} samples, fewer than {n_budget}" if short else None),
                "subsampled_from": size, **({} if by_tokens else {"cost_share": "interpolated"}), "time": _now(),
            })
    return rows


def run_row(cfg: SweepConfig, problem: Problem, split: str, spec: StrategySpec, n: int, trace,
            difficulty: dict[str, Any]) -> dict[str, Any]:
    totals = trace.totals()
    eff = {k: getattr(_run_config(cfg, "q", "g", spec.name, n, spec.param_dict).search, k) for k in spec.param_dict}
    row = {
        **_base_row(cfg, problem, split), "strategy": spec.name, "params": spec.param_dict, "effective_params": eff,
        "budget": n, **difficulty, "answer": trace.final_answer,
        "correct": bool(is_correct(trace.final_answer, problem.gold)),
        "samples": len(trace.finished()),
        "tokens": totals.prompt_tokens + totals.generated_tokens, "generated_tokens": totals.generated_tokens,
        "flops": totals.flops, "seconds": round(trace.seconds, 3),
        "status": "error" if trace.status != "done" else "done", "error": trace.error, "time": _now(),
        **_precision(trace),
    }
    return row


def _precision(trace) -> dict[str, Any]:
    """What the models ran in (the CPU kind decides: bfloat16 or float32 + int8 weights), so seconds from
    sessions on different machines are not mistaken for one speed."""
    return {"precision": dict(trace.precision)} if trace.precision else {}


Nests = dict  # (strategy, params_key) -> (budget, Trace) of its largest live run on the current problem


def nests_budgets(strategy: str) -> bool:
    """Whether a run of this strategy holds its runs at smaller budgets (it names them with part_of)."""
    return hasattr(STRATEGIES[strategy], "part_of")


def nested_row(cfg: SweepConfig, problem: Problem, split: str, spec: StrategySpec, n: int, nests: Nests,
               difficulty: dict[str, Any]) -> dict[str, Any] | None:
    """spec at budget n read off a finished bigger run of it on this problem, or None when n is no part of one."""
    strategy = STRATEGIES[spec.name]
    big_n, big_trace = nests.get((spec.name, params_key(spec.param_dict)), (None, None))
    if big_trace is None or not nests_budgets(spec.name) or big_trace.status != "done":
        return None
    big = _run_config(cfg, "q", "g", spec.name, big_n, spec.param_dict).search
    small = _run_config(cfg, "q", "g", spec.name, n, spec.param_dict).search
    part = strategy.part_of(big_trace, big, small)
    leaves = [x for x in part or () if x.status in (FINISHED, SELECTED)]
    if not leaves:
        return None
    answer = pick(leaves, strategy.selection_method(cfg.verifier != "none"))[0].answer
    generated = sum(x.tokens for x in part)
    share = generated / (sum(x.tokens for x in big_trace.nodes[1:]) or 1)
    row = run_row(cfg, problem, split, spec, n, big_trace, difficulty)
    row.update(answer=answer, correct=bool(is_correct(answer, problem.gold)), samples=len(leaves),
               tokens=round(row["tokens"] * share), generated_tokens=generated, flops=row["flops"] * share,
               seconds=round(row["seconds"] * share, 3), derived_from=big_n,
               spent_seconds=0.0)  # the big run's row carries the seconds spent
    return row


def remember_nest(nests: Nests, spec: StrategySpec, n: int, trace) -> None:
    if nests_budgets(spec.name) and trace.status == "done":
        nests.setdefault((spec.name, params_key(spec.param_dict)), (n, trace))  # the first run is the largest


def _decision_record(d: dict[str, Any]) -> dict[str, Any]:
    return {k: d.get(k) for k in ("source", "estimate", "bin", "choice", "run_budget", "probes", "note", "reason")}


def _pool_pick(pool: dict[str, Any], k: int, method: str) -> str | None:
    """The answer a selection rule picks from the pool's first k samples (what pool_rows recorded)."""
    from types import SimpleNamespace

    leaves = [SimpleNamespace(id=i, answer=a, agg_score=s)
              for i, (a, s) in enumerate(zip(pool["answers"][:k], pool["scores"][:k]))]
    return pick(leaves, method)[0].answer if leaves else None


_COST = ("tokens", "generated_tokens", "flops", "seconds")
_SUB_RUN_FIELDS = ("answer", "samples", *_COST, "status", "error", "derived_from")  # what an auto row keeps of its sub-run


def _pool_cost(pool: dict[str, Any], k: int, subsample: dict[int, dict[str, Any]]) -> dict[str, float]:
    """Tokens, FLOPs and seconds of the pool's first k samples: a pool rule's row at budget k where one
    exists (its share of generated tokens), else the pool's totals pro rata."""
    row = subsample.get(k)
    if row is not None:
        return {c: float(row.get(c) or 0) for c in _COST}
    share = k / max(1, int(pool.get("samples") or len(pool.get("answers") or []) or 1))
    return {c: float(pool.get(c) or 0) * share for c in _COST}


def auto_row_from_pool(cfg: SweepConfig, problem: Problem, split: str, n: int, pool: dict[str, Any],
                       subsample: dict[int, dict[str, Any]], table: StrategyTable | None, table_path: Path | None,
                       sub_runs: dict[tuple, dict[str, Any]], run_fn: RunFn,
                       nests: Nests | None = None) -> dict[str, Any]:
    """auto at budget N evaluated on the problem's sample pool (see the module docstring).

    subsample: {budget: a pool rule's row} for this problem (their costs); sub_runs: earlier live
    sub-runs by (problem, strategy, params, budget), reused and added to; nests: this problem's
    bigger runs that a chosen DVTS / revisions sub-run can be read off (as their own smaller budgets are)."""
    from ..allocate import builtin_decision, decide
    from ..strategies.auto import plan_run, probe_count, run_params

    p = min(probe_count(n), len(pool["scores"]))
    estimate = predicted_difficulty(pool["scores"][:p])
    if table is None:
        dec = builtin_decision(estimate, n, probes=p)
    else:
        dec = decide(table, estimate, n, cfg.policy, cfg.verifier_label, strict=False, probes=p,
                     table_path=table_path)
    plan_run(dec, n, p)
    dec.probe_use += f" (Sweep: the probes are the pool's first {p} sample(s).)"
    strategy, params = dec.choice["strategy"], run_params(dec.choice["params"])
    status, error, sub, part = "done", None, None, None
    if strategy in POOL_STRATEGIES or dec.run_budget == 0:
        k = n if strategy in POOL_STRATEGIES else p
        answer = _pool_pick(pool, k, SELECTION_METHOD.get(strategy, "weighted"))
        cost, samples = _pool_cost(pool, k, subsample), k
    else:
        left = dec.run_budget
        skey = (problem.id, strategy, params_key(params), left)
        sub = sub_runs.get(skey)
        reused = sub is not None
        spec = StrategySpec(strategy, tuple(sorted(params.items())))
        part = None if reused else nested_row(cfg, problem, split, spec, left, nests or {}, {})
        if sub is None:
            # a part of this problem's bigger run of the same search, else a run of its own
            src = part or run_row(cfg, problem, split, spec, left, run_fn(
                _problem_run_config(cfg, problem, strategy, left, params)), {})
            sub = {"strategy": strategy, "params": params, "budget": left,
                   **{k: src[k] for k in _SUB_RUN_FIELDS if k in src}}
            if sub["status"] == "done":
                sub_runs[skey] = sub
        probe_cost = _pool_cost(pool, p, subsample)
        cost = {c: probe_cost[c] + float(sub.get(c) or 0) for c in _COST}
        answer, samples = sub["answer"], p + int(sub.get("samples") or 0)
        status, error = sub["status"], sub["error"]
    row = {
        **_base_row(cfg, problem, split), "strategy": "auto", "params": {}, "effective_params": {}, "budget": n,
        **{k: pool.get(k) for k in ("difficulty", "predicted_difficulty", "oracle_difficulty")},
        "answer": answer, "correct": bool(is_correct(answer, problem.gold)), "samples": samples,
        "tokens": round(cost["tokens"]), "generated_tokens": round(cost["generated_tokens"]), "flops": cost["flops"],
        "seconds": round(cost["seconds"], 3), "status": status, "error": error, "time": _now(),
        "decision": {**_decision_record(dec.to_dict()), "probe_use": dec.probe_use},
        "table": auto_decider(table), "evaluated": AUTO_EVAL,
    }
    # wall seconds this row took in the sweep (its `seconds` are auto's cost as a method; the probes
    # and a chosen pool rule were paid for by the pool row, a reused sub-run by an earlier row)
    # (a sub-run read off a bigger run of this problem was paid for by that run's row)
    row["spent_seconds"] = float(sub["seconds"]) if sub is not None and not reused and part is None else 0.0
    if sub is not None:
        row["sub_run"] = sub
        row["sub_run_reused"] = reused
    return row


def _auto_row(cfg, problem, split, n, pool, subsample, table, table_path, sub_runs, run_fn, diff, nests) -> dict[str, Any]:
    if pool is None or not pool.get("scores"):
        return {**_base_row(cfg, problem, split), "strategy": "auto", "params": {}, "budget": n, **diff,
                "answer": None, "correct": None, "status": "error", "time": _now(),
                "error": "auto is evaluated on the problem's sample pool, and this problem has none (it failed); "
                         "rerun the sweep", "table": auto_decider(table), "evaluated": AUTO_EVAL}
    return auto_row_from_pool(cfg, problem, split, n, pool, subsample, table, table_path, sub_runs, run_fn, nests)


def run_sweep(cfg: SweepConfig, run_fn: RunFn | None = None, progress: bool = True) -> dict[str, Any]:
    """Run every pending (problem, strategy, params, budget) of the split; append rows as they finish.

    run_fn(RunConfig) -> Trace is the injection point (tests pass fakes); default: run_search with the
    shared model pool. Returns a summary (rows written, skipped, problems, seconds).
    """
    from tqdm import tqdm

    run_fn = run_fn or default_run_fn(cfg)
    budgets = sorted(set(cfg.budgets))
    problems = [(p, split_of(i, g, cfg.split_seed)) for p, i, g in
                load_problems(cfg.problem_set, cfg.levels, cfg.per_level, cfg.problem_seed, cfg.data)]
    if cfg.split != "all":
        problems = [(p, s) for p, s in problems if s == cfg.split]
    if cfg.limit is not None:
        problems = problems[: cfg.limit]
    # a pool-based rule at its own temperature (greedy = majority:temperature=0) cannot share the pool
    pool_specs = [s for s in cfg.strategies if s.name in POOL_RULES and (
        not s.params or s.name == "early-stop-vote" and set(s.param_dict) <= REPLAYED_PARAMS)]
    run_specs = [s for s in cfg.strategies if s not in pool_specs]
    pool_size = max(budgets)
    run_budgets = sorted(set(cfg.run_budgets or budgets))

    existing = load_results(cfg.results)
    done = {row_key(r) for r in existing if r.get("status") != "error"}
    pool_diff: dict[str, dict[str, Any]] = {}
    pools: dict[str, dict[str, Any]] = {}  # problem -> its pool row (auto probes it)
    subsample: dict[str, dict[int, dict[str, Any]]] = {}  # problem -> budget -> a pool rule's row (costs)
    sub_runs: dict[tuple, dict[str, Any]] = {}  # auto's live sub-runs, reused after a refit

    def remember(r: dict[str, Any]) -> None:
        if r.get("status") == "error" or r.get("policy") != cfg.policy or r.get("verifier") != cfg.verifier_label \
                or r.get("seed") != cfg.seed:
            return
        pid = r["problem_id"]
        if r.get("strategy") == "pool":
            pools[pid] = r
            pool_diff[pid] = {k: r.get(k) for k in ("difficulty", "predicted_difficulty", "oracle_difficulty")}
        elif r.get("strategy") in POOL_STRATEGIES and not r.get("params") and r.get("subsampled_from"):
            subsample.setdefault(pid, {})[int(r["budget"])] = r
        elif r.get("strategy") == "auto" and (r.get("sub_run") or {}).get("status") == "done":
            sr = r["sub_run"]
            sub_runs[(pid, sr["strategy"], params_key(sr.get("params")), int(sr["budget"]))] = sr

    for r in existing:
        remember(r)

    table, table_path = auto_table(cfg)
    auto_key = auto_decider(table) if any(s.name == "auto" for s in run_specs) else None

    def key(problem: Problem, split: str, strategy: str, params: dict, n: int) -> tuple:
        return row_key({**_base_row(cfg, problem, split), "strategy": strategy, "params": params, "budget": n,
                        "table": auto_key if strategy == "auto" else None})

    # Plan: per problem, does the pool need running, and which per-budget runs are pending.
    plan = []
    skipped = 0
    for p, split in problems:
        pool_keys = [key(p, split, "pool", {}, pool_size)] + [
            key(p, split, s.name, s.param_dict, n) for s in pool_specs for n in budgets]
        # what the pool needs: nothing, sampling (and scoring), or only reading off its stored row (the row
        # is there and a rule was added later: nothing is sampled)
        pool_work = None
        if any(k not in done for k in pool_keys):
            stored = pool_keys[0] in done and len((pools.get(p.id) or {}).get("answers") or []) >= pool_size
            pool_work = "read" if stored else "sample"
        run_keys = [(s, n, key(p, split, s.name, s.param_dict, n)) for s in run_specs for n in run_budgets]
        # nesting strategies largest budget first, so the smaller budgets can be read off that run
        runs = [(s, n) for s, n, k in sorted(run_keys, key=lambda t: (run_specs.index(t[0]),
                -t[1] if nests_budgets(t[0].name) else t[1])) if k not in done]
        skipped += sum(k in done for k in pool_keys) + len(run_keys) - len(runs)
        plan.append((p, split, pool_work, runs))
    total_units = sum(int(work == "sample") + len(runs) for _, _, work, runs in plan)

    writer = ResultsWriter(cfg.results)
    bar = tqdm(total=total_units, desc=f"sweep {cfg.split}", unit="run", file=sys.stderr, disable=not progress,
               dynamic_ncols=True)
    t0 = time.perf_counter()
    runs_done = 0
    merger = None
    lock = threading.Lock()  # problems may run concurrently (a model server): one writer, one count

    def write(row: dict[str, Any]) -> None:
        if cfg.concurrency > 1:  # its seconds overlap other problems' runs (compute counts stay its own)
            row.setdefault("concurrency", cfg.concurrency)
        with lock:
            writer.write(row)
            if row["status"] != "error":
                done.add(row_key(row))

    def one_problem(p: Problem, split: str, pool_work: str | None, runs) -> None:
        nonlocal runs_done
        if pool_work == "read":
            known = {n: float(r.get("generated_tokens") or 0) for n, r in subsample.get(p.id, {}).items()}
            for row in rows_from_pool(pools[p.id], pool_specs, budgets, known):
                if row_key(row) not in done:
                    remember(row)
                    write(row)
        elif pool_work == "sample":
            bar.set_postfix_str(f"{p.id} pool x{pool_size}")
            pool_strategy = "best-of-n" if cfg.verifier != "none" else "majority"
            trace, rescored = sample_pool(cfg, p, pool_strategy, pool_size, run_fn)
            rows = pool_rows(cfg, p, split, trace, pool_specs, budgets)
            if rescored:  # its cost as a method stays; this sweep spent (next to) nothing on it
                rows[0].update(spent_seconds=0.0, rescored=True)
            pool_diff[p.id] = {k: rows[0][k] for k in ("difficulty", "predicted_difficulty", "oracle_difficulty")}
            for row in rows:
                remember(row)
                if row_key(row) not in done:
                    write(row)
            with lock:
                runs_done += 1
                bar.update(1)
        diff = pool_diff.get(p.id, {"difficulty": None, "predicted_difficulty": None, "oracle_difficulty": None})
        nests: Nests = {}
        for spec, n in runs:
            bar.set_postfix_str(f"{p.id} {spec.label} N={n}")
            ran = 1
            if spec.name == "auto":
                row = _auto_row(cfg, p, split, n, pools.get(p.id), subsample.get(p.id, {}), table, table_path,
                                sub_runs, run_fn, diff, nests)
            else:
                row = nested_row(cfg, p, split, spec, n, nests, diff)
                ran = int(row is None)
                if row is None:
                    trace = run_fn(_problem_run_config(cfg, p, spec.name, n, spec.param_dict))
                    row = run_row(cfg, p, split, spec, n, trace, diff)
                    remember_nest(nests, spec, n, trace)
            remember(row)
            write(row)
            with lock:
                runs_done += ran
                bar.update(1)

    try:
        if cfg.concurrency > 1:
            # each problem's runs stay in order (nesting, auto's pool); problems overlap on the server,
            # or, in process, take turns and decode their rows in one batch (merged_decode.py)
            from ..backends.merged_decode import DecodeMerger
            from ..backends.openai_backend import is_server_name

            merger = None if is_server_name(cfg.policy) else DecodeMerger()

            def one_member(*item) -> None:
                if merger is None:
                    return one_problem(*item)
                with merger.member():
                    return one_problem(*item)

            with ThreadPoolExecutor(max_workers=cfg.concurrency, thread_name_prefix="tts-viz-sweep") as ex:
                for f in [ex.submit(one_member, *item) for item in plan]:
                    f.result()
        else:
            for item in plan:
                one_problem(*item)
    finally:
        bar.close()
    merged = {} if merger is None else {"merged_decodes": merger.batches, "merged_requests": merger.requests}
    return {"results": str(cfg.results), "split": cfg.split, "problems": len(problems), "runs": runs_done, **merged,
            "rows_written": writer.written, "rows_skipped": skipped, "seconds": round(time.perf_counter() - t0, 1),
            "peak_resident_mb": peak_resident_mb()}


def peak_resident_mb() -> int | None:
    """This process's peak resident memory so far (installments report it: problems at once cost memory)."""
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return int(kb / 1024) if sys.platform != "darwin" else int(kb / 2**20)


def summarize(rows: Iterable[dict[str, Any]], split: str | None = None) -> list[dict[str, Any]]:
    """Accuracy per (strategy, params, budget) over the rows (of one split): for READMEs and plots."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("strategy") == "pool" or r.get("status") == "error" or r.get("correct") is None:
            continue
        if split is not None and r.get("split") != split:
            continue
        groups.setdefault((r["strategy"], params_key(r.get("params")), r["budget"]), []).append(r)
    out = []
    for (s, pk, n), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        out.append({"strategy": s, "params": json.loads(pk), "budget": n, "n": len(rs),
                    "accuracy": sum(bool(r["correct"]) for r in rs) / len(rs),
                    "mean_flops": sum(float(r.get("flops") or 0) for r in rs) / len(rs)})
    return out


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------


def add_sweep_args(p: argparse.ArgumentParser) -> None:
    from .args import add_generation_args

    p.add_argument("--problem-set", default="arith", choices=["arith", "word", "gsm8k", "math500"])
    p.add_argument("--data", help="local JSONL for gsm8k / math500")
    p.add_argument("--levels", default="1-5", help="e.g. 1-5 or 1,3,5 (arith, math500)")
    p.add_argument("--per-level", type=int, default=30, help="problems per level (gsm8k: in all), before the split")
    p.add_argument("--problem-seed", type=int, default=0, help="seed of the arith generator")
    p.add_argument("--split", default="val", choices=["val", "test", "all"])
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--strategies", default=DEFAULT_STRATEGIES,
                   help="comma-separated; parameters as name:key=value, e.g. beam:width=2,beam:width=4; "
                        "majority:temperature=0 at budget 1 = greedy decoding (run on its own, not from the pool)")
    p.add_argument("--budgets", default=",".join(map(str, DEFAULT_BUDGETS)))
    p.add_argument("--run-budgets", help="budgets of beam / dvts / lookahead / revisions / auto (default: --budgets), "
                                         "e.g. 1,4,16 while the pool-based ones take 1,2,4,8,16")
    add_generation_args(p)
    p.add_argument("--limit", type=int, help="at most this many problems (quick checks)")
    p.add_argument("--results", default="runs/sweep.jsonl")
    p.add_argument("--pool-traces", help="folder of pool traces: sample each problem's pool once and re-score it "
                                         "for every other verifier (e.g. the oracle qualities)")
    p.add_argument("--problem-concurrency", type=int,
                   help="problems run at once (default: 4 on a model server, else 1). In process they take turns "
                        "and their decode steps run as one batch, which a CPU runs faster per row")


def sweep_config_from_args(args) -> SweepConfig:
    from ..backends.openai_backend import is_server_name

    return SweepConfig(
        results=args.results, problem_set=args.problem_set, levels=tuple(parse_int_list(args.levels, "--levels")),
        per_level=args.per_level, problem_seed=args.problem_seed, data=args.data, split=args.split,
        split_seed=args.split_seed, strategies=parse_strategies(args.strategies),
        budgets=tuple(parse_int_list(args.budgets, "--budgets")),
        run_budgets=tuple(parse_int_list(args.run_budgets, "--run-budgets")) if args.run_budgets else None, policy=args.policy, verifier=args.verifier,
        judge=args.judge, seed=args.seed, temperature=args.temperature, aggregation=args.aggregation,
        max_rounds=args.max_rounds, max_step_tokens=args.max_step_tokens,
        max_solution_tokens=args.max_solution_tokens, limit=args.limit, pool_traces=args.pool_traces,
        quant=args.quant,
        concurrency=args.problem_concurrency or (4 if is_server_name(args.policy) else 1),
    )


def cmd_sweep(args, run_fn: RunFn | None = None) -> int:
    cfg = sweep_config_from_args(args)
    summary = run_sweep(cfg, run_fn=run_fn)
    rows = [r for r in current_rows(load_results(cfg.results)) if r.get("policy") == cfg.policy
            and r.get("verifier") == cfg.verifier_label]
    summary["accuracy"] = {f"{s['strategy']}{'' if not s['params'] else ' ' + params_key(s['params'])} @{s['budget']}":
                           round(s["accuracy"], 3) for s in summarize(rows, None if cfg.split == "all" else cfg.split)}
    print(json.dumps(summary))
    return 0


def add_fit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default="runs/sweep.jsonl")
    p.add_argument("--split", default="val", help="fit on this split's rows (default val; 'all' for every row)")
    p.add_argument("--binning", default="quantile", choices=["quantile", "absolute"])
    p.add_argument("--bins", type=int, default=5, help="number of quantile bins")
    p.add_argument("--difficulty", default="predicted", choices=["predicted", "oracle"],
                   help="bin by the predicted (mean probe verifier score) or the oracle (pass@1) difficulty")
    p.add_argument("--policy", help="keep only rows of this policy (needed when the file mixes several)")
    p.add_argument("--verifier", help="keep only rows of this verifier")
    p.add_argument("--out", help="default: assets/strategy_table_<policy>_<verifier>.json")


def cmd_fit_table(args) -> int:
    rows = current_rows(load_results(args.results))
    if not rows:
        raise ValueError(f"No results in {args.results}: run `python -m tts_viz sweep` first.")
    rows = [r for r in rows if r.get("status") != "error"
            and (args.policy is None or r.get("policy") == args.policy)
            and (args.verifier is None or r.get("verifier") == args.verifier)]
    table = fit_table(rows, args.binning, k=args.bins, difficulty_key=f"{args.difficulty}_difficulty",
                      difficulty=args.difficulty, split=None if args.split == "all" else args.split,
                      policy=args.policy, verifier=args.verifier)
    out = Path(args.out) if args.out else default_table_path(table.policy, table.verifier)
    table.save(out)
    StrategyTable.load(out)  # what was written reads back
    print(json.dumps({
        "table": str(out), "policy": table.policy, "verifier": table.verifier, "problems": table.n_problems,
        "rows": table.n_rows, "budgets": table.budgets, "bins": table.bins,
        "choices": {f"{c['bin']}@{c['budget']}": (c["choice"] or {}).get("strategy") for c in table.cells},
        "fallback_cells": sum(c["fallback"] is not None for c in table.cells), "notes": table.notes,
    }))
    return 0


def add_report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default="assets/scaling/results.jsonl")
    p.add_argument("--small", default="qwen2.5-coder-0.5b", help="the policy that searches")
    p.add_argument("--big", default="qwen2.5-coder-1.5b", help="the bigger policy of the FLOPs-matched comparison")
    p.add_argument("--quality", help="instead: the verifier-quality study's tables from this results file "
                                     "(e.g. assets/scaling/verifier-quality.jsonl)")
    p.add_argument("--verifier", help="the small policy's rows under this verifier (default: the one with the most "
                                      "problems; the other policy's rows are kept whatever their verifier)")
    p.add_argument("--against", help="also: accuracy under --verifier and this one, on the problems both ran (e.g. arith)")


def cmd_scaling_report(args) -> int:
    from ..viz.scaling import quality_report, scaling_report

    rows = load_results(args.quality or args.results)
    if not rows:
        raise ValueError(f"No results in {args.quality or args.results}: run `python -m tts_viz sweep` first.")
    if args.quality:
        print(quality_report(rows, args.small))
        return 0
    from ..viz.scaling import rows_for_verifier, study_verifier

    verifier = args.verifier or study_verifier(rows, args.small)
    mine = rows_for_verifier(rows, verifier, args.small)
    if not any(r.get("policy") == args.small for r in mine):
        raise ValueError(f"No rows of {args.small} under the verifier {verifier!r} in {args.results}.")
    print(f"_Verifier of {args.small}: {verifier}._\n")
    print(scaling_report(mine, args.small, args.big))
    if args.against:
        from ..viz.scaling import verifier_pair_markdown

        for split in ("val", "test"):
            if table := verifier_pair_markdown(rows, split, args.small, verifier, args.against):
                print(f"\n### {verifier} / {args.against} on the same problems ({args.small}, {split} split)\n")
                print(f"Each cell: accuracy under {verifier} / under {args.against} (problems both ran).\n")
                print(table)
    return 0
