"""Compute-optimal allocation: difficulty estimates, difficulty bins, the strategy table, the decision.

Difficulty, two ways (Snell et al. 2024):
- *oracle* difficulty = the base policy's pass@1 on the question, estimated from sampled answers
  against the gold answer (`oracle_difficulty`). Needs the gold answer: for fitting only.
- *predicted* difficulty = the mean aggregated verifier score of a few probe samples
  (`predicted_difficulty`). Needs no gold answer: what the `auto` strategy uses at test time.
For both, a HIGHER value means an EASIER question.

Binning, two ways:
- `QuantileBins.fit(values, k=5)` (Snell): k quantile bins fitted on a validation split;
  bin 1 = easiest (highest values), bin k = hardest.
- `absolute_bin(p)` / `AbsoluteBins` (Liu et al. 2025): easy if p > 0.5, medium if 0.1 <= p <= 0.5,
  hard if p < 0.1.

The strategy table (`fit_table`) holds, for every difficulty bin x budget, every candidate
(strategy + hyper-parameters) with its validation accuracy and cost, and the chosen one (best
accuracy; ties go to fewer mean FLOPs, then fewer tokens). `decide` turns a difficulty estimate and a
budget into a `Decision`: the record that goes into `Trace.decision` and that the app's allocator
panel shows.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .grading import is_correct
from .trace import _json_safe

TABLE_FORMAT = "tts-viz-strategy-table"
TABLE_VERSION = 1
# Bump when decide() changes how it chooses from the same table: a sweep's auto rows record it
# with the table's fingerprint (`decider_id`), so rows decided the old way are rerun, not reused.
DECISION_RULE = 2

EASY_THRESHOLD = 0.5  # absolute bins: easy if p > 0.5
HARD_THRESHOLD = 0.1  # absolute bins: hard if p < 0.1
ABSOLUTE_LABELS = ("easy", "medium", "hard")  # easiest first

# Strategies that select among whole samples: probe samples are reusable members of their pool.
POOL_STRATEGIES = ("majority", "best-of-n", "weighted-best-of-n")
# Result rows with these strategy names are never candidates for the table.
NOT_CANDIDATES = ("auto", "pool")

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"


# ------------------------------------------------------------------------------------------------
# Difficulty estimates
# ------------------------------------------------------------------------------------------------


def oracle_difficulty(answers: Sequence[str | None], gold: str) -> float | None:
    """pass@1 estimated from sampled answers: the fraction equivalent to the gold answer.

    Higher = easier. None when there are no samples.
    """
    if not answers:
        return None
    return sum(bool(is_correct(a, gold)) for a in answers) / len(answers)


def predicted_difficulty(scores: Iterable[float | None]) -> float | None:
    """Mean aggregated verifier score of the probe samples (scores that are None/NaN are ignored).

    Higher = easier (the verifier likes the model's attempts). None when nothing was scored.
    """
    vals = [float(s) for s in scores if s is not None and not (isinstance(s, float) and math.isnan(s))]
    return sum(vals) / len(vals) if vals else None


# ------------------------------------------------------------------------------------------------
# Binning
# ------------------------------------------------------------------------------------------------


def _quantile(sorted_vals: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default, 'inclusive')."""
    pos = (len(sorted_vals) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


@dataclass
class QuantileBins:
    """k quantile bins of a difficulty value (pass@1 or mean verifier score).

    `edges` are the k-1 cut points, ascending. Bin 1 = EASIEST (values at or above the top edge),
    bin k = HARDEST (values below the lowest edge). A value equal to an edge goes to the easier bin.
    """

    edges: list[float]
    kind: str = "quantile"

    @property
    def k(self) -> int:
        return len(self.edges) + 1

    @classmethod
    def fit(cls, values: Iterable[float | None], k: int = 5) -> "QuantileBins":
        vals = sorted(float(v) for v in values if v is not None)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        if not vals:
            raise ValueError("Cannot fit quantile bins: no difficulty values (did the sweep record any?).")
        return cls(edges=[_quantile(vals, i / k) for i in range(1, k)])

    def bin(self, value: float) -> int:
        """1 (easiest, highest value) .. k (hardest, lowest value)."""
        if value is None:
            raise ValueError("No difficulty value to bin.")
        return self.k - bisect.bisect_right(self.edges, float(value))

    def label(self, value: float) -> str:
        return str(self.bin(value))

    @property
    def labels(self) -> list[str]:
        return [str(i) for i in range(1, self.k + 1)]

    def describe(self, label: str) -> str:
        return f"bin {label} of {self.k} (1 = easiest)"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "quantile", "k": self.k, "edges": list(self.edges), "labels": self.labels,
                "direction": "bin 1 = easiest = highest value"}


def absolute_bin(p: float) -> str:
    """Liu et al.'s absolute pass@1 thresholds: 'easy' if p > 0.5, 'medium' if 0.1 <= p <= 0.5,
    'hard' if p < 0.1. Higher p = easier."""
    if p is None:
        raise ValueError("No difficulty value to bin.")
    if p > EASY_THRESHOLD:
        return "easy"
    if p < HARD_THRESHOLD:
        return "hard"
    return "medium"


@dataclass
class AbsoluteBins:
    """The absolute thresholds as a binning object (labels easy, medium, hard; easiest first)."""

    easy_above: float = EASY_THRESHOLD
    hard_below: float = HARD_THRESHOLD
    kind: str = "absolute"

    def bin(self, value: float) -> str:
        if value is None:
            raise ValueError("No difficulty value to bin.")
        if value > self.easy_above:
            return "easy"
        if value < self.hard_below:
            return "hard"
        return "medium"

    label = bin

    @property
    def labels(self) -> list[str]:
        return list(ABSOLUTE_LABELS)

    def describe(self, label: str) -> str:
        return {"easy": f"easy (> {self.easy_above:g})", "medium": f"medium ({self.hard_below:g}-{self.easy_above:g})",
                "hard": f"hard (< {self.hard_below:g})"}.get(label, label)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "absolute", "easy_above": self.easy_above, "hard_below": self.hard_below,
                "labels": self.labels, "direction": "easy = highest value"}


def binning_from_dict(d: Mapping[str, Any]):
    kind = d.get("kind") if isinstance(d, Mapping) else None
    if kind == "quantile":
        edges = d.get("edges")
        if not isinstance(edges, list) or not all(isinstance(e, (int, float)) for e in edges):
            raise ValueError("Strategy table: binning.edges must be a list of numbers.")
        if sorted(edges) != list(edges):
            raise ValueError("Strategy table: binning.edges must be ascending.")
        return QuantileBins(edges=[float(e) for e in edges])
    if kind == "absolute":
        return AbsoluteBins(easy_above=float(d.get("easy_above", EASY_THRESHOLD)),
                            hard_below=float(d.get("hard_below", HARD_THRESHOLD)))
    raise ValueError(f"Strategy table: binning.kind must be 'quantile' or 'absolute', got {kind!r}.")


# ------------------------------------------------------------------------------------------------
# The strategy table
# ------------------------------------------------------------------------------------------------


def params_key(params: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(params or {}), sort_keys=True)


def run_key(row: Mapping[str, Any]) -> tuple:
    """What a row measures: problem, strategy, params, budget, seed, policy, verifier."""
    return (row.get("problem_id"), row.get("strategy"), params_key(row.get("params")), row.get("budget"),
            row.get("seed"), row.get("policy"), row.get("verifier"))


def row_key(row: Mapping[str, Any]) -> tuple:
    """run_key plus, for `auto`, the strategy table that decided (its fingerprint): a refitted table
    makes auto's earlier rows stale, so the sweep runs auto again instead of skipping it."""
    return run_key(row) + (row.get("table"),)


def current_rows(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One row per run_key, the last one written (a finished row beats a failed one): after a refit,
    auto's rows from the older table are superseded by the rerun. File order is kept."""
    best: dict[tuple, int] = {}
    rows = list(rows)
    for i, r in enumerate(rows):
        k = run_key(r)
        j = best.get(k)
        if j is None or r.get("status") != "error" or rows[j].get("status") == "error":
            best[k] = i
    keep = set(best.values())
    return [r for i, r in enumerate(rows) if i in keep]


def describe_choice(strategy: str, params: Mapping[str, Any] | None) -> str:
    if not params:
        return strategy
    parts = [k.replace("_", " ") + f" {v}" for k, v in sorted(params.items())]
    return f"{strategy} ({', '.join(parts)})"


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", s).strip("-").lower() or "none"


def default_table_path(policy: str, verifier: str, assets: str | Path | None = None) -> Path:
    """assets/strategy_table_<policy>_<verifier>.json (names slugged: 'self-judge (x)' -> 'self-judge-x')."""
    return Path(assets or ASSETS_DIR) / f"strategy_table_{_slug(policy)}_{_slug(verifier)}.json"


def _rank_key(c: Mapping[str, Any]):
    """Complete candidates before `partial` ones (run on fewer of the cell's problems: 1.0 on the two
    problems it reached says nothing against 0.4 on forty); then best accuracy; ties to fewer mean
    FLOPs, then fewer tokens; then to the better accuracy over all bins at that budget (pool-based
    rules cost the same, and a bin of one or two problems ties often: the pooled validation result
    breaks it, not the alphabet); then a stable name order."""
    acc = c.get("accuracy")
    pooled = c.get("pooled_accuracy")
    return (bool(c.get("partial")), -(round(acc, 9) if acc is not None else -1.0), c.get("mean_flops") or 0.0, c.get("mean_tokens") or 0.0,
            -(round(pooled, 9) if pooled is not None else -1.0), c["strategy"], params_key(c.get("params")))


def _candidates(rows: Sequence[Mapping[str, Any]], pooled: Mapping[tuple[str, str], float] | None = None
                ) -> list[dict[str, Any]]:
    """One candidate per (strategy, params) of these rows, best first (`_rank_key`). pooled:
    (strategy, params_key) -> accuracy over all bins at the same budget, the tie-breaker. A candidate
    that ran on fewer of the cell's problems than another is `partial`."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["strategy"], params_key(r.get("params"))), []).append(r)
    out = []
    for (strategy, pk), rs in groups.items():
        n = len(rs)
        out.append({
            "strategy": strategy,
            "params": json.loads(pk),
            "accuracy": sum(bool(r["correct"]) for r in rs) / n,
            "n_problems": len({r["problem_id"] for r in rs}),
            "mean_flops": sum(float(r.get("flops") or 0.0) for r in rs) / n,
            "mean_tokens": sum(float(r.get("tokens") or 0.0) for r in rs) / n,
            "mean_seconds": sum(float(r.get("seconds") or 0.0) for r in rs) / n,
        })
        if pooled is not None:
            out[-1]["pooled_accuracy"] = pooled.get((strategy, pk))
    most = max((c["n_problems"] for c in out), default=0)
    for c in out:
        c["partial"] = c["n_problems"] < most
    return sorted(out, key=_rank_key)


def _cell(bin_label: str | None, budget: int, cands: list[dict[str, Any]], fallback=None) -> dict[str, Any]:
    best = cands[0] if cands else None
    return {
        "bin": bin_label,
        "budget": budget,
        "choice": {"strategy": best["strategy"], "params": best["params"]} if best else None,
        "expected_accuracy": best["accuracy"] if best else None,
        "candidates": cands,
        "fallback": fallback,
    }


@dataclass
class StrategyTable:
    """Per difficulty bin x budget: the candidates' validation accuracies and the chosen one.

    JSON shape (see `to_dict`): format/version, policy, verifier, problem_set, difficulty
    ("predicted" or "oracle"), binning (QuantileBins/AbsoluteBins.to_dict()), fitted_on (split),
    created (ISO date), budgets, bins (easiest first), n_problems, n_rows, cells (one per bin x
    budget: bin, budget, choice {strategy, params}, expected_accuracy, candidates [...], fallback),
    global_cells (one per budget, all bins pooled; bin null), notes.
    """

    policy: str
    verifier: str
    problem_set: str
    binning: dict[str, Any]
    budgets: list[int]
    cells: list[dict[str, Any]]
    global_cells: list[dict[str, Any]] = field(default_factory=list)
    difficulty: str = "predicted"
    fitted_on: str = "val"
    created: str = ""
    n_problems: int = 0
    n_rows: int = 0
    notes: list[str] = field(default_factory=list)
    format: str = TABLE_FORMAT
    version: int = TABLE_VERSION

    # ----- lookups ----------------------------------------------------------------------------
    @property
    def binner(self):
        return binning_from_dict(self.binning)

    @property
    def bins(self) -> list[str]:
        return self.binner.labels

    def bin_of(self, value: float) -> str:
        return self.binner.label(value)

    def cell(self, bin_label: str | None, budget: int) -> dict[str, Any] | None:
        pool = self.cells if bin_label is not None else self.global_cells
        for c in pool:
            if c["budget"] == budget and (bin_label is None or c["bin"] == str(bin_label)):
                return c
        return None

    def table_budget(self, budget: int) -> int | None:
        """The largest fitted budget <= budget (the smallest fitted one if none is <= budget)."""
        if not self.budgets:
            return None
        below = [b for b in self.budgets if b <= budget]
        return max(below) if below else min(self.budgets)

    @property
    def fingerprint(self) -> str:
        """Identity of this fitted table (12 hex of the sha256 of its JSON). Sweep rows of `auto` carry it,
        so a sweep reruns auto after a refit and the report counts only one table's decisions."""
        blob = json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]

    # ----- JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bins"] = self.bins
        return d

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False), encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, d: Any, where: str = "strategy table") -> "StrategyTable":
        def bad(msg: str) -> ValueError:
            return ValueError(f"{where}: {msg}")

        if not isinstance(d, dict):
            raise bad(f"must be a JSON object, got {type(d).__name__}.")
        if d.get("format") != TABLE_FORMAT:
            raise bad(f"not a tts-viz strategy table (format is {d.get('format')!r}, expected {TABLE_FORMAT!r}).")
        if d.get("version") != TABLE_VERSION:
            raise bad(f"unsupported version {d.get('version')!r}; this tts-viz reads version {TABLE_VERSION}.")
        for key, typ in (("policy", str), ("verifier", str), ("problem_set", str), ("binning", dict),
                         ("budgets", list), ("cells", list)):
            if key not in d:
                raise bad(f"the field '{key}' is missing.")
            if not isinstance(d[key], typ):
                raise bad(f"the field '{key}' must be a {typ.__name__}.")
        try:
            binner = binning_from_dict(d["binning"])
        except ValueError as e:
            raise bad(str(e).replace("Strategy table: ", "")) from None
        if not all(isinstance(b, int) and b >= 1 for b in d["budgets"]):
            raise bad("budgets must be positive integers.")
        labels = set(binner.labels)
        for i, c in enumerate(list(d["cells"]) + list(d.get("global_cells") or [])):
            if not isinstance(c, dict):
                raise bad(f"cell {i} is not an object.")
            for key in ("bin", "budget", "choice", "candidates"):
                if key not in c:
                    raise bad(f"cell {i} lacks '{key}'.")
            if c["bin"] is not None and str(c["bin"]) not in labels:
                raise bad(f"cell {i} has bin {c['bin']!r}, not one of {sorted(labels)}.")
            if c["budget"] not in d["budgets"]:
                raise bad(f"cell {i} has budget {c['budget']!r}, not one of the table's budgets.")
            ch = c["choice"]
            if ch is not None and not (isinstance(ch, dict) and isinstance(ch.get("strategy"), str)
                                       and isinstance(ch.get("params", {}), dict)):
                raise bad(f"cell {i}: choice must be {{strategy, params}}.")
            if not isinstance(c["candidates"], list):
                raise bad(f"cell {i}: candidates must be a list.")
            for cand in c["candidates"]:
                if not (isinstance(cand, dict) and isinstance(cand.get("strategy"), str)
                        and isinstance(cand.get("accuracy"), (int, float))):
                    raise bad(f"cell {i}: every candidate needs a strategy and a numeric accuracy.")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def load(cls, path: str | Path) -> "StrategyTable":
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"No strategy table at {path}; fit one with `python -m tts_viz fit-table`.") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e}).") from None
        return cls.from_dict(d, where=str(path))


def _unique(rows: Sequence[Mapping[str, Any]], key: str, given: str | None) -> str:
    if given is not None:
        return given
    vals = sorted({str(r[key]) for r in rows if r.get(key) is not None})
    if len(vals) > 1:
        raise ValueError(f"The results mix several {key} values ({', '.join(vals)}); choose one with --{key.replace('_', '-')}.")
    return vals[0] if vals else "unknown"


def fit_table(
    results: Iterable[Mapping[str, Any]],
    binning: Any = "quantile",
    *,
    k: int = 5,
    difficulty_key: str = "difficulty",
    difficulty: str | None = None,
    split: str | None = None,
    policy: str | None = None,
    verifier: str | None = None,
    problem_set: str | None = None,
    fitted_on: str | None = None,
) -> StrategyTable:
    """Fit the strategy table from per-problem result rows.

    Rows: {problem_id, level, <difficulty_key>, strategy, params, budget, correct, tokens, flops,
    seconds, [split, policy, verifier, problem_set, status]}. A problem's difficulty is the first non-null
    `difficulty_key` value among its rows; problems with none are left out (counted in notes).
    `binning`: "quantile" (fit k bins on these problems' difficulties), "absolute", or a prefit
    QuantileBins / AbsoluteBins. `split` keeps only rows of that split. Rows of "auto"/"pool", rows
    with status "error" and rows without a known `correct` are not candidates.

    For every bin x budget the choice is the candidate with the best accuracy; ties go to fewer mean
    FLOPs, then fewer mean tokens, then to the better accuracy over all bins at that budget. A cell
    with no rows falls back to the nearest budget of the same bin that has rows (the smaller one on a
    tie), else to the all-bins cell of that budget; the cell's `fallback` records which.
    """
    rows = [r for r in results if split is None or r.get("split") == split]
    notes: list[str] = []
    policy = _unique(rows, "policy", policy)
    verifier = _unique(rows, "verifier", verifier)
    problem_set = _unique(rows, "problem_set", problem_set)
    if difficulty is None:
        difficulty = {"difficulty": "predicted", "predicted_difficulty": "predicted",
                      "oracle_difficulty": "oracle"}.get(difficulty_key, difficulty_key)

    diff: dict[str, float] = {}
    for r in rows:
        v = r.get(difficulty_key)
        if v is not None and r["problem_id"] not in diff:
            diff[r["problem_id"]] = float(v)
    missing = {r["problem_id"] for r in rows} - set(diff)
    if missing:
        notes.append(f"{len(missing)} problem(s) had no '{difficulty_key}' value and were left out.")

    if isinstance(binning, str):
        if binning == "quantile":
            binner = QuantileBins.fit(diff.values(), k=k)
        elif binning == "absolute":
            binner = AbsoluteBins()
        else:
            raise ValueError(f"binning must be 'quantile' or 'absolute', got {binning!r}.")
    else:
        binner = binning

    usable = [r for r in rows if r["problem_id"] in diff and r.get("strategy") not in NOT_CANDIDATES
              and r.get("correct") is not None and r.get("status", "done") != "error" and r.get("budget") is not None]
    if not usable:
        raise ValueError("No usable result rows to fit a table from (need strategy, budget, correct and a difficulty).")
    budgets = sorted({int(r["budget"]) for r in usable})
    labels = binner.labels
    by_cell: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for r in usable:
        by_cell.setdefault((str(binner.label(diff[r["problem_id"]])), int(r["budget"])), []).append(r)

    global_cells = [_cell(None, b, _candidates([r for r in usable if int(r["budget"]) == b])) for b in budgets]
    pooled = {b: {(c["strategy"], params_key(c["params"])): c["accuracy"] for c in g["candidates"]}
              for b, g in zip(budgets, global_cells)}
    cells = []
    for lab in labels:
        have = [b for b in budgets if (lab, b) in by_cell]
        for b in budgets:
            if (lab, b) in by_cell:
                cells.append(_cell(lab, b, _candidates(by_cell[(lab, b)], pooled[b])))
            elif have:
                src = min(have, key=lambda x: (abs(x - b), x))
                fb = {"kind": "nearest_budget", "from_bin": lab, "from_budget": src,
                      "reason": f"no validation results for bin {lab} at budget {b}; "
                                f"using budget {src} of the same bin"}
                cells.append(_cell(lab, b, _candidates(by_cell[(lab, src)], pooled[src]), fb))
            else:
                fb = {"kind": "global", "from_bin": None, "from_budget": b,
                      "reason": f"no validation results in bin {lab} at all; using all bins together at budget {b}"}
                cells.append(_cell(lab, b, list(global_cells[budgets.index(b)]["candidates"]), fb))
    n_fallback = sum(c["fallback"] is not None for c in cells)
    if n_fallback:
        notes.append(f"{n_fallback} of {len(cells)} cells had no results of their own and fall back.")
    splits = sorted({str(r.get("split")) for r in rows if r.get("split") is not None})
    return StrategyTable(
        policy=policy,
        verifier=verifier,
        problem_set=problem_set,
        binning=binner.to_dict(),
        budgets=budgets,
        cells=cells,
        global_cells=global_cells,
        difficulty=difficulty,
        fitted_on=fitted_on or split or ("+".join(splits) if splits else "unknown"),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        n_problems=len(diff),
        n_rows=len(usable),
        notes=notes,
    )


# ------------------------------------------------------------------------------------------------
# The decision
# ------------------------------------------------------------------------------------------------


@dataclass
class Decision:
    """What the allocator decided for one question, and why. `to_dict()` goes into Trace.decision.

    candidates: one dict per candidate: strategy, params, expected_accuracy (validation accuracy in
    this bin, None for the built-in rule), budget (the table budget it was looked up at),
    reuses_probes, available, chosen.
    fallback: None, or {"pair": {...}} when the table was fitted for another policy/verifier pair,
    and/or {"cell": {...}} when the bin x budget cell had no results of its own.
    """

    estimate: float | None
    bin: str | None
    budget: int
    choice: dict[str, Any]
    reason: str
    candidates: list[dict[str, Any]] = field(default_factory=list)
    expected_accuracy: float | None = None
    estimate_kind: str = "predicted"
    bin_label: str = ""
    binning: str = ""
    table_budget: int | None = None
    run_budget: int | None = None  # N given to the chosen strategy
    probes: int = 0
    probe_ids: list[int] = field(default_factory=list)
    probe_use: str = ""
    source: str = "table"  # "table" or "built-in rule"
    table: dict[str, Any] | None = None  # the table's metadata (policy, verifier, problem set, ...)
    fallback: dict[str, Any] | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))


def _tie_words(best: Mapping[str, Any], others: Sequence[Mapping[str, Any]]) -> str:
    """' It tied with X and Y and won on ...' where complete others match the choice's accuracy, else ''."""
    acc = round(best["expected_accuracy"], 9)
    tied = sorted((c for c in others if c.get("expected_accuracy") is not None and not c.get("partial")
                   and round(c["expected_accuracy"], 9) == acc),
                  key=lambda c: _rank_key({**c, "accuracy": c["expected_accuracy"]}))
    if not tied:
        return ""
    runner = tied[0]
    if (best.get("mean_flops") or 0.0) < (runner.get("mean_flops") or 0.0):
        why = "fewer FLOPs"
    elif (best.get("mean_tokens") or 0.0) < (runner.get("mean_tokens") or 0.0):
        why = "fewer tokens"
    elif (best.get("pooled_accuracy") or 0.0) > (runner.get("pooled_accuracy") or 0.0):
        why = f"its accuracy over all bins at that budget ({best['pooled_accuracy']:.0%} against {runner['pooled_accuracy'] or 0:.0%})"
    else:
        why = "name order (same accuracy and cost)"
    names = [describe_choice(c["strategy"], c["params"]) for c in tied]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f" It tied with {listed} and won on {why}."


def _add_note(dec: Decision, text: str) -> None:
    dec.note = f"{dec.note} {text}" if dec.note else text


def decider_id(table: StrategyTable | None) -> str:
    """What decided an auto run: the table's fingerprint and the decision rule, or 'built-in'."""
    return f"{table.fingerprint}/rule{DECISION_RULE}" if table is not None else "built-in"


def table_meta(table: StrategyTable, path: str | Path | None = None) -> dict[str, Any]:
    return {"policy": table.policy, "verifier": table.verifier, "problem_set": table.problem_set,
            "binning": table.binning.get("kind"), "difficulty": table.difficulty, "fitted_on": table.fitted_on,
            "created": table.created, "n_problems": table.n_problems, "fingerprint": table.fingerprint,
            "decided_by": decider_id(table),
            "path": str(path) if path is not None else None}


def decide(
    table: StrategyTable,
    estimate: float | None,
    budget: int,
    policy: str,
    verifier: str,
    *,
    strict: bool = True,
    probes: int = 0,
    reuses: Sequence[str] = POOL_STRATEGIES,
    table_path: str | Path | None = None,
) -> Decision:
    """Choose strategy + params for one question from its difficulty estimate and budget N.

    strict=True: a table fitted for another policy/verifier pair raises ValueError naming both;
    strict=False: choose anyway, with `fallback["pair"]` and a `note` that says so.
    probes: samples already spent on the estimate. Strategies in `reuses` keep them in their pool
    (looked up at budget N); the others run on N - probes and are looked up at the largest budget
    <= N - probes at which they were measured (a sweep runs beam, DVTS and revisions at fewer budgets
    than the pool rules; 12 left after 4 probes reads beam's accuracy at 4). That is what is left or
    less, so their expected accuracy errs low, never high.
    """
    fallback: dict[str, Any] = {}
    note = None
    if (table.policy, table.verifier) != (policy, verifier):
        msg = (f"the strategy table was fitted for policy '{table.policy}' with verifier '{table.verifier}', "
               f"but this run uses policy '{policy}' with verifier '{verifier}'")
        if strict:
            raise ValueError(f"Refusing to allocate: {msg}. Fit a table for this pair "
                             "(python -m tts_viz sweep, then fit-table) or allow the fallback.")
        fallback["pair"] = {"table_policy": table.policy, "table_verifier": table.verifier,
                            "run_policy": policy, "run_verifier": verifier}
        note = f"Falling back: {msg}; its choices may not suit this pair."

    binner = table.binner
    if estimate is None:
        bin_label = None
        bin_words = "unknown difficulty (no probe was scored), so all bins together"
    else:
        bin_label = str(binner.label(estimate))
        bin_words = binner.describe(bin_label)
    tb = table.table_budget(budget)
    left = budget - probes
    tb_left = table.table_budget(left) if left >= 1 else None
    if tb_left is not None and tb_left > left:
        tb_left = None  # even the smallest fitted budget needs more than what is left

    def cell_at(b):
        return table.cell(bin_label, b) if b is not None else None

    main_cell = cell_at(tb)
    if main_cell is not None and main_cell.get("fallback"):
        fallback["cell"] = main_cell["fallback"]
    cands: dict[tuple[str, str], dict[str, Any]] = {}
    for where, b in ((main_cell, tb), (cell_at(tb_left) if probes else None, tb_left)):
        for c in (where or {}).get("candidates", []):
            cands.setdefault((c["strategy"], params_key(c.get("params"))), c)

    def measured(strategy: str, pk: str, b: int | None):
        for c in (cell_at(b) or {}).get("candidates", []):
            if c["strategy"] == strategy and params_key(c.get("params")) == pk:
                return c
        return None

    below_left = sorted((b for b in table.budgets if b <= left), reverse=True)
    out = []
    for (strategy, pk), _ in cands.items():
        reuse = strategy in reuses or probes == 0
        if reuse:
            b, found = tb, measured(strategy, pk, tb)
        else:  # below_left starts at tb_left
            b, found = next(((x, c) for x in below_left if (c := measured(strategy, pk, x)) is not None),
                            (tb_left, None))
        # cost as it will run: one measured at a smaller budget spends `left` generations, not b
        scale = left / b if found is not None and not reuse and b and left > b else 1.0
        out.append({
            "strategy": strategy,
            "params": json.loads(pk),
            "expected_accuracy": found["accuracy"] if found else None,
            "budget": b,
            "n_problems": found.get("n_problems") if found else None,
            "mean_flops": found["mean_flops"] * scale if found and found.get("mean_flops") is not None else None,
            "mean_tokens": found["mean_tokens"] * scale if found and found.get("mean_tokens") is not None else None,
            "pooled_accuracy": found.get("pooled_accuracy") if found else None,  # the fit's tie-breaker
            "partial": bool(found.get("partial")) if found else False,  # ran on fewer of the cell's problems
            "reuses_probes": bool(probes) and strategy in reuses,
            "available": found is not None,
            "chosen": False,
        })
    avail = [c for c in out if c["available"]]
    if not avail:
        raise ValueError(f"The strategy table has no candidate for bin {bin_label} at budget {budget}.")
    best = min(avail, key=lambda c: _rank_key({**c, "accuracy": c["expected_accuracy"]}))
    best["chosen"] = True
    out.sort(key=lambda c: (not c["available"], _rank_key({**c, "accuracy": c["expected_accuracy"] or -1.0})))

    est_words = "unknown" if estimate is None else f"{estimate:.2f}"
    what = "predicted difficulty (mean verifier score of the probes)" if table.difficulty == "predicted" else \
        "difficulty estimate"
    at = f"budget {budget}" if best["reuses_probes"] or probes == 0 else \
        f"budget {budget} ({left} left after {probes} probe{'s' if probes != 1 else ''})"
    reason = (
        f"The {what} {est_words} puts this question in {bin_words}; at {at} "
        f"{describe_choice(best['strategy'], best['params'])} had the best validation accuracy there "
        f"({best['expected_accuracy']:.0%} over {best['n_problems']} problems"
        + (f", measured at budget {best['budget']}" if not best["reuses_probes"] and probes and best["budget"] != left
           else "")
        + f") of {len(avail)} candidates." + _tie_words(best, [c for c in avail if c is not best])
    )
    dec = Decision(
        estimate=estimate, bin=bin_label, budget=budget,
        choice={"strategy": best["strategy"], "params": best["params"]},
        reason=reason, candidates=out, expected_accuracy=best["expected_accuracy"],
        estimate_kind=table.difficulty, bin_label=bin_words, binning=binner.kind, table_budget=tb,
        run_budget=budget if best["reuses_probes"] or probes == 0 else left, probes=probes,
        source="table", table=table_meta(table, table_path), fallback=fallback or None, note=note,
    )
    if table.difficulty == "oracle" and estimate is not None:
        _add_note(dec, "The table's bins were fitted on oracle pass@1; the verifier-score estimate stands in for it.")
    if tb != budget:
        _add_note(dec, f"No table column for budget {budget}; used the column for budget {tb}.")
    if "cell" in fallback:
        _add_note(dec, f"This cell had no validation results of its own: {fallback['cell']['reason']}.")
    return dec


# The built-in rule, used when no strategy table exists for the policy/verifier pair. It bins the
# predicted difficulty with the absolute thresholds (easy > 0.5, hard < 0.1; the mean verifier score
# standing in for pass@1) and follows the papers' qualitative findings:
#   easy:   sequential revisions (chains of 4) when at least 4 generations remain after the probes
#           (Snell: easy questions gain most from revisions; beam search over-optimises them),
#           otherwise weighted best-of-N over the probes plus new samples (a majority-style vote).
#   medium: beam search (width <= 4) below N = 16 (Snell: beam beats best-of-N at low budgets),
#           weighted best-of-N from N = 16 on (best-of-N catches up at high budgets).
#   hard:   beam search (width <= 4) on what remains (Liu: small policies gain most from search on
#           hard questions).
#   Beam search needs at least one generation after the probes; with none left the probes are
#   the pool (weighted best-of-N).
BUILTIN_RULE = (
    "built-in rule (no strategy table for this policy/verifier): easy (score > 0.5) -> revisions, or "
    "weighted best-of-N when fewer than 4 generations remain; medium -> beam search below N=16, weighted "
    "best-of-N from 16; hard (< 0.1) -> beam search"
)


def builtin_decision(estimate: float | None, budget: int, probes: int = 0) -> Decision:
    """The decision of the documented built-in rule (see BUILTIN_RULE); source 'built-in rule'."""
    left = budget - probes
    label = absolute_bin(estimate) if estimate is not None else "medium"
    wbon = ("weighted-best-of-n", {})
    beam = ("beam", {"width": max(1, min(4, left))})
    revisions = ("revisions", {"revision_length": 4})
    if label == "easy":
        choice, why = (revisions, "easy questions gain most from sequential revisions") if left >= 4 else \
            (wbon, "easy questions do well with a vote and fewer than 4 generations remain for revisions")
    elif label == "medium":
        choice, why = (beam, "beam search beats best-of-N at low budgets") if budget < 16 and left >= 1 else \
            (wbon, "best-of-N catches up with search at high budgets")
    else:
        choice, why = (beam, "search pays most on hard questions for a small policy") if left >= 1 else \
            (wbon, "no generation is left after the probes, so the probes are the pool")
    options = [wbon, beam, revisions]
    cands = [{"strategy": s, "params": p, "expected_accuracy": None, "budget": None, "n_problems": None,
              "mean_flops": None, "mean_tokens": None, "reuses_probes": bool(probes) and s in POOL_STRATEGIES,
              "available": s in POOL_STRATEGIES or left >= (4 if s == "revisions" else 1),
              "chosen": (s, p) == choice} for s, p in options]
    est = "unknown (no probe was scored)" if estimate is None else f"{estimate:.2f}"
    reason = (f"No strategy table for this policy/verifier, so the built-in rule applies: the predicted difficulty "
              f"{est} is {label}, and {why}, so it runs {describe_choice(*choice)}.")
    strategy = choice[0]
    return Decision(
        estimate=estimate, bin=label, budget=budget, choice={"strategy": strategy, "params": choice[1]},
        reason=reason, candidates=cands, expected_accuracy=None, estimate_kind="predicted",
        bin_label=AbsoluteBins().describe(label), binning="absolute", table_budget=None,
        run_budget=budget if strategy in POOL_STRATEGIES or probes == 0 else left, probes=probes,
        source="built-in rule", table=None, fallback=None, note=BUILTIN_RULE,
    )
