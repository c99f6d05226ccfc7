"""Compute-optimal `auto` strategy (Snell et al. 2024; Liu et al. 2025).

1. Probe: a few whole samples (`probe_count(N)`: 1 for N <= 3, then min(4, N // 2)), scored by the
   verifier. They count toward the budget N.
2. Estimate: predicted difficulty = mean aggregated verifier score of the probes (higher = easier).
3. Decide: look up the strategy table for this policy/verifier (`allocate.decide`); with no table,
   the documented built-in rule (`allocate.BUILTIN_RULE`). The decision, with the probe node ids,
   goes into `trace.decision` before the chosen strategy starts (the app shows it at once).
4. Run the chosen strategy in the same trace:
   - majority / best-of-n / weighted-best-of-n: the probes are part of the pool; N - probes new
     samples are drawn and the final selection runs over probes + new samples (N in all).
   - beam / dvts / revisions / lookahead: cannot start from whole samples; they run with the
     remaining budget N - probes, and the probes were spent on the estimate only (the decision
     says so). The table is read for them at the largest budget <= N - probes where they were
     measured (a sweep runs them at 1, 4, 16 only). Their final selection is the strategy's own,
     over its own nodes.

Which table: `AutoStrategy(table=..., table_path=...)`, else a `strategy_table` / `table_path`
attribute set on the SearchContext, else the module-level `TABLE_PATH`, else
`allocate.default_table_path(policy, verifier)` (assets/strategy_table_<policy>_<verifier>.json).
A table fitted for another policy/verifier pair is used with a clear note (STRICT = False) or
refused with a ValueError (STRICT = True).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..allocate import (
    POOL_STRATEGIES,
    StrategyTable,
    builtin_decision,
    decide,
    default_table_path,
    describe_choice,
    predicted_difficulty,
)
from .base import SearchContext
from .parallel import sample_and_score

TABLE_PATH: str | Path | None = None  # module-level override of the table location
STRICT = False  # True: refuse a table fitted for another policy/verifier pair
MAX_PROBES = 4
# the selection rule (strategies/select.py) of each pool strategy; the sweep replays auto with it too
SELECTION_METHOD = {"majority": "majority", "best-of-n": "best", "weighted-best-of-n": "weighted"}
_TUNABLE = {"width", "lookahead", "revision_length", "aggregation", "temperature", "max_rounds"}


def probe_count(n: int) -> int:
    """Probe samples for budget N: 1 for N <= 3, else min(4, N // 2). Always <= N."""
    return max(1, min(MAX_PROBES, n // 2)) if n >= 1 else 0


def run_params(params: dict) -> dict:
    """The chosen strategy's parameters that a run takes (a table may carry others)."""
    return {k: v for k, v in (params or {}).items() if k in _TUNABLE}


def plan_run(dec, n: int, p: int) -> None:
    """Fill in what the chosen strategy runs with after p probes of budget n: `run_budget` (N for a
    pool rule, which keeps the probes; N - p for a strategy that cannot start from whole samples;
    0 when nothing is left, and the probes are the pool) and the sentence `probe_use`.
    Shared by the live run below and the sweep's evaluation of auto on the sample pool."""
    strategy = dec.choice["strategy"]
    left = n - p
    if strategy in POOL_STRATEGIES:
        dec.run_budget = n
        dec.probe_use = (f"The {p} probe sample(s) are part of the {strategy} pool: {max(0, left)} more "
                         f"sample(s) were drawn, {n} in all.")
    elif left >= 1:
        dec.run_budget = left
        dec.probe_use = (f"{describe_choice(strategy, dec.choice['params'])} cannot start from whole samples, "
                         f"so the {p} probe sample(s) were spent on the estimate only; it runs with the "
                         f"remaining budget {left} of {n}.")
    else:
        dec.run_budget = 0
        dec.probe_use = (f"No budget is left after {p} probe(s) for {strategy}; the answer is a weighted vote "
                         "over the probes.")
        dec.note = (dec.note + " " if dec.note else "") + dec.probe_use


def _verifier_name(ctx: SearchContext) -> str:
    return ctx.trace.verifier or getattr(ctx.verifier, "name", "") or "none"


class AutoStrategy:
    name = "auto"
    needs_verifier = True

    def __init__(self, table: StrategyTable | None = None, table_path: str | Path | None = None,
                 strict: bool | None = None) -> None:
        self.table = table
        self.table_path = table_path
        self.strict = strict

    def _table(self, ctx: SearchContext) -> tuple[StrategyTable | None, Path | None]:
        table = self.table or getattr(ctx, "strategy_table", None)
        if table is not None:
            return table, None
        path = self.table_path or getattr(ctx, "table_path", None) or TABLE_PATH
        if path is None:
            path = default_table_path(ctx.trace.policy, _verifier_name(ctx))
            if not Path(path).is_file():
                return None, None  # no table for this pair: the built-in rule
        return StrategyTable.load(path), Path(path)

    def run(self, ctx: SearchContext) -> None:
        cfg = ctx.config
        n = cfg.n
        p = probe_count(n)
        ctx.check_cancel()
        probes = sample_and_score(ctx, p, round_no=0)
        probe_ids = []
        for leaf in probes:
            for node in ctx.trace.path(leaf.id):
                node.extra["probe"] = True
            leaf.reason = "probe sample for the difficulty estimate; " + leaf.reason
            probe_ids.append(leaf.id)
        estimate = predicted_difficulty([leaf.agg_score for leaf in probes])

        table, path = self._table(ctx)
        strict = STRICT if self.strict is None else self.strict
        policy, verifier = ctx.trace.policy, _verifier_name(ctx)
        if table is None:
            dec = builtin_decision(estimate, n, probes=p)
        else:
            dec = decide(table, estimate, n, policy, verifier, strict=strict, probes=p, table_path=path)
        dec.probe_ids = probe_ids
        plan_run(dec, n, p)
        strategy = dec.choice["strategy"]
        left = n - p
        ctx.trace.decision = dec.to_dict()
        ctx.report()

        if strategy in POOL_STRATEGIES or left < 1:
            method = SELECTION_METHOD.get(strategy, "weighted")
            leaves = list(probes)
            if left >= 1 and strategy in POOL_STRATEGIES:
                ctx.check_cancel()
                leaves += sample_and_score(ctx, left, round_no=1)
                ctx.report()
            ctx.select(leaves, method)
            return

        from . import get_strategy  # late import: the registry imports this module

        sub = dataclasses.replace(cfg, **run_params(dec.choice["params"]))
        sub = dataclasses.replace(sub, n=left, width=max(1, min(sub.width, left)))
        ctx.config = sub
        try:
            get_strategy(strategy).run(ctx)
        finally:
            ctx.config = cfg
