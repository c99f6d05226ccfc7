"""Problem sets: generated arithmetic word problems (levels 1-5), GSM8K, MATH-500, built-in examples.

The generated problems exist so that the app works with no dataset at all and so that every step of
a solution can be labelled right or wrong exactly: each problem records the gold value of every
intermediate quantity (`Problem.intermediates`), and `label_steps` checks a solution against them.
"""

from __future__ import annotations

import functools
import json
import random
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from .grading import gold_from_gsm8k

__all__ = [
    "Problem",
    "SOURCES",
    "generate_arith",
    "arith_problem_set",
    "find_equations",
    "label_steps",
    "load_jsonl",
    "load_dataset_problems",
    "EXAMPLES",
    "get_problem",
]

SOURCES = ("arith", "gsm8k", "math500", "custom")


@dataclass
class Problem:
    id: str
    question: str
    gold: str
    source: str  # one of SOURCES
    level: int | None = None  # 1-5 for arith and MATH-500; None for GSM8K
    # For arith: one dict per computed quantity, in solution order:
    # {"name": "apples in the bags", "expr": "3 * 6", "value": "18"} (value is str(Fraction)).
    intermediates: list[dict] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "question": self.question, "gold": self.gold, "source": self.source,
            "level": self.level, "intermediates": list(self.intermediates), "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Problem":
        return cls(id=d["id"], question=d["question"], gold=d["gold"], source=d.get("source", "custom"),
                   level=d.get("level"), intermediates=list(d.get("intermediates") or []),
                   meta=dict(d.get("meta") or {}))


# ----------------------------------------------------------------------------------------------
# Generated arithmetic word problems
# ----------------------------------------------------------------------------------------------

# Story themes. Each op kind has sentences; "{a}" is the running total before the op.
# add/sub/mul/div change the running total by {k}; add_group/sub_group first compute {k} x {m}
# (a separate intermediate quantity, named by `group`) and then add or remove it.
_THEMES: list[dict[str, Any]] = [
    {
        "key": "apples", "unit": "apples",
        "start": "{name} has {a} apples.",
        "add": ["{name} picks {k} more apples.", "A neighbour gives {name} {k} apples."],
        "sub": ["{name} eats {k} of the apples.", "{name} gives {k} apples to a friend."],
        "add_group": [("{name} buys {k} bags with {m} apples in each bag.", "apples in the new bags")],
        "sub_group": [("{name} fills {k} boxes with {m} apples each and sends them away.", "apples sent away")],
        "mul": ["{name}'s grandmother adds enough apples to make the pile {k} times as big."],
        "div": ["{name} splits the apples equally into {k} baskets and keeps just one basket."],
        "question": "How many apples does {name} have now?",
    },
    {
        "key": "money", "unit": "dollars",
        "start": "{name} has ${a} in a piggy bank.",
        "add": ["{name} earns ${k} for mowing a lawn.", "{name} gets ${k} as a birthday present."],
        "sub": ["{name} spends ${k} on a book.", "{name} pays ${k} for a concert ticket."],
        "add_group": [("{name} walks {k} dogs and earns ${m} for each dog.", "dollars earned walking dogs")],
        "sub_group": [("{name} buys {k} games that cost ${m} each.", "dollars spent on games")],
        "mul": ["An uncle makes {name}'s savings {k} times as large."],
        "div": ["{name} splits the money into {k} equal parts and keeps only one part."],
        "question": "How many dollars does {name} have now?",
    },
    {
        "key": "train", "unit": "passengers",
        "start": "A train leaves the first station with {a} passengers.",
        "add": ["At the next stop, {k} passengers get on.", "At a small village, {k} people board."],
        "sub": ["At the next stop, {k} passengers get off.", "At the museum stop, {k} people leave."],
        "add_group": [("{k} school classes of {m} children each get on.", "children who got on")],
        "sub_group": [("{k} families of {m} people each get off.", "people in the families")],
        "mul": ["At the big city station, the number of passengers becomes {k} times as large."],
        "div": ["The train splits into {k} parts with equally many passengers, and only one part goes on."],
        "question": "How many passengers are on the train at the end?",
    },
    {
        "key": "boxes", "unit": "boxes",
        "start": "A warehouse holds {a} boxes.",
        "add": ["A truck delivers {k} more boxes.", "The night shift unloads {k} boxes."],
        "sub": ["Workers ship out {k} boxes.", "{k} boxes are sold to a shop."],
        "add_group": [("{k} pallets arrive, each carrying {m} boxes.", "boxes on the pallets")],
        "sub_group": [("{k} vans leave, each loaded with {m} boxes.", "boxes in the vans")],
        "mul": ["A big order arrives and the stock becomes {k} times as large."],
        "div": ["The boxes are shared equally among {k} stores, and the warehouse keeps one store's share."],
        "question": "How many boxes are in the warehouse now?",
    },
    {
        "key": "cookies", "unit": "cookies",
        "start": "{name} bakes {a} cookies.",
        "add": ["{name} bakes {k} more cookies.", "A friend brings {k} cookies."],
        "sub": ["{name}'s brothers eat {k} cookies.", "{name} gives {k} cookies to the teacher."],
        "add_group": [("{name} bakes {k} more trays with {m} cookies on each tray.", "cookies on the new trays")],
        "sub_group": [("{name} sells {k} packs of {m} cookies.", "cookies sold in packs")],
        "mul": ["For a party, {name} makes the batch {k} times as big."],
        "div": ["{name} puts the cookies equally into {k} jars and keeps only one jar."],
        "question": "How many cookies does {name} have now?",
    },
]
_NAMES = ["Maya", "Liam", "Sofia", "Noah", "Aisha", "Ben", "Chen", "Elena", "Omar", "Priya", "Jonas", "Zara"]

# Per level: number of operations, number ranges, op kinds. Groups count as two operations
# (k x m, then add/remove). Levels 3+ always contain a multiplication or division; level 5 both.
_LEVELS: dict[int, dict[str, Any]] = {
    1: dict(ops=(1, 2), start=(5, 20), k=(1, 10), gk=(2, 3), gm=(2, 5), mul=(2, 2), div=(2, 2),
            kinds=("add", "sub"), cap=100),
    2: dict(ops=(2, 3), start=(10, 50), k=(2, 20), gk=(2, 5), gm=(2, 10), mul=(2, 2), div=(2, 2),
            kinds=("add", "sub", "add_group"), cap=300),
    3: dict(ops=(3, 4), start=(20, 100), k=(5, 50), gk=(2, 9), gm=(3, 12), mul=(2, 3), div=(2, 5),
            kinds=("add", "sub", "add_group", "sub_group", "mul", "div"), cap=1000),
    4: dict(ops=(4, 5), start=(50, 200), k=(10, 99), gk=(3, 12), gm=(5, 25), mul=(2, 4), div=(2, 6),
            kinds=("add", "sub", "add_group", "sub_group", "mul", "div"), cap=5000),
    5: dict(ops=(5, 6), start=(100, 500), k=(20, 250), gk=(4, 15), gm=(12, 60), mul=(2, 5), div=(2, 9),
            kinds=("add", "sub", "add_group", "sub_group", "mul", "div"), cap=20000),
}
_COST = {"add": 1, "sub": 1, "mul": 1, "div": 1, "add_group": 2, "sub_group": 2}
_SYMBOL = {"add": "+", "sub": "-", "mul": "*", "div": "/", "add_group": "+", "sub_group": "-"}


def _pick_op(rng: random.Random, cfg: dict, total: int, budget: int) -> tuple[str, int, int] | None:
    """A feasible (kind, k, m) for the current total, or None. m is 0 for one-number ops."""
    kinds = [k for k in cfg["kinds"] if _COST[k] <= budget]
    rng.shuffle(kinds)
    for kind in kinds:
        if kind == "add":
            return kind, rng.randint(*cfg["k"]), 0
        lo, hi = cfg["k"]
        if kind == "sub" and total - lo >= lo:
            # keep at least `lo` left so that later numbers stay in the level's range
            return kind, rng.randint(lo, min(hi, total - lo)), 0
        if kind == "mul":
            ks = [k for k in range(cfg["mul"][0], cfg["mul"][1] + 1) if total * k <= cfg["cap"]]
            if ks:
                return kind, rng.choice(ks), 0
        if kind == "div":
            # exact division only: pick among the divisors of the current total
            ks = [k for k in range(cfg["div"][0], cfg["div"][1] + 1) if total % k == 0 and total // k > 1]
            if ks:
                return kind, rng.choice(ks), 0
        if kind == "add_group":
            k, m = rng.randint(*cfg["gk"]), rng.randint(*cfg["gm"])
            if total + k * m <= cfg["cap"]:
                return kind, k, m
        if kind == "sub_group":
            for _ in range(5):
                k, m = rng.randint(*cfg["gk"]), rng.randint(*cfg["gm"])
                if total - k * m >= lo:
                    return kind, k, m
    return None


def _plan(rng: random.Random, level: int) -> tuple[int, list[tuple[str, int, int]]]:
    cfg = _LEVELS[level]
    for _attempt in range(200):
        total = start = rng.randint(*cfg["start"])
        budget = rng.randint(*cfg["ops"])
        ops: list[tuple[str, int, int]] = []
        while budget > 0:
            op = _pick_op(rng, cfg, total, budget)
            if op is None:
                break
            kind, k, m = op
            total = _apply(kind, total, k, m)
            ops.append(op)
            budget -= _COST[kind]
        kinds = {o[0] for o in ops}
        multiplicative = bool(kinds & {"mul", "div", "add_group", "sub_group"})
        if budget > 0 or (level >= 3 and not multiplicative):
            continue
        if level == 5 and not ("div" in kinds and kinds & {"mul", "add_group", "sub_group"}):
            continue
        return start, ops
    raise RuntimeError(f"could not generate a level-{level} problem")  # not reached in practice


def _apply(kind: str, total: int, k: int, m: int) -> int:
    if kind == "add":
        return total + k
    if kind == "sub":
        return total - k
    if kind == "mul":
        return total * k
    if kind == "div":
        return total // k  # exact: k was chosen among the divisors
    if kind == "add_group":
        return total + k * m
    return total - k * m  # sub_group


def _fresh(rng: random.Random, variants: list, used: set):
    """A sentence variant not used yet in this problem if there is one (repeats read badly)."""
    choice = rng.choice([v for v in variants if v not in used] or variants)
    used.add(choice)
    return choice


def generate_arith(level: int, index: int, seed: int = 0) -> Problem:
    """A multi-step arithmetic word problem, fully determined by (level, index, seed).

    Level 1: 1-2 additions/subtractions with small numbers ... level 5: 5-6 operations with larger
    numbers, at least one exact division and one multiplication. All intermediate results are
    positive integers. `intermediates` lists every computed quantity with its expression and value;
    `meta["reference_steps"]` is a correct step-by-step solution (steps separated like a model's, one
    string each) that ends with "The answer is \\boxed{N}.".
    """
    if level not in _LEVELS:
        raise ValueError(f"level must be 1-5, got {level!r}")
    # A string seed is hashed deterministically by random.Random (unlike hash(), not salted per run).
    rng = random.Random(f"tts-viz-arith:{seed}:{level}:{index}")
    theme = rng.choice(_THEMES)
    name = rng.choice(_NAMES)
    unit = theme["unit"]
    start, ops = _plan(rng, level)

    sentences = [theme["start"].format(name=name, a=start)]
    steps = [f"At the start there are {start} {unit}."]
    inters: list[dict] = []
    givens = [start]
    used: set = set()
    total = start
    for j, (kind, k, m) in enumerate(ops, start=1):
        new = _apply(kind, total, k, m)
        sym = _SYMBOL[kind]
        if kind in ("add_group", "sub_group"):
            text, group_name = _fresh(rng, theme[kind], used)
            sentences.append(text.format(name=name, k=k, m=m))
            givens += [k, m]
            p = k * m
            inters.append({"name": group_name, "expr": f"{k} * {m}", "value": str(p)})
            inters.append({"name": f"{unit} after step {j}", "expr": f"{total} {sym} {p}", "value": str(new)})
            steps.append(f"That is {k} * {m} = {p} {unit}, so now there are {total} {sym} {p} = {new} {unit}.")
        else:
            sentences.append(_fresh(rng, theme[kind], used).format(name=name, k=k))
            givens.append(k)
            inters.append({"name": f"{unit} after step {j}", "expr": f"{total} {sym} {k}", "value": str(new)})
            steps.append(f"Now there are {total} {sym} {k} = {new} {unit}.")
        total = new
    inters[-1]["name"] = f"{unit} at the end"
    sentences.append(theme["question"].format(name=name))
    steps.append(f"The answer is \\boxed{{{total}}}.")
    return Problem(
        id=f"arith-L{level}-s{seed}-{index}",
        question=" ".join(sentences),
        gold=str(total),
        source="arith",
        level=level,
        intermediates=inters,
        meta={"seed": seed, "index": index, "theme": theme["key"], "ops": [o[0] for o in ops],
              "givens": [str(g) for g in givens], "reference_steps": steps},
    )


def arith_problem_set(levels: tuple[int, ...] = (1, 2, 3, 4, 5), per_level: int = 20, seed: int = 0) -> list[Problem]:
    """per_level generated problems for each level, ordered by level then index."""
    return [generate_arith(lv, i, seed) for lv in levels for i in range(per_level)]


# ----------------------------------------------------------------------------------------------
# Step labelling by exact arithmetic
# ----------------------------------------------------------------------------------------------

# No optional space inside _NUM except after "$": a space that two parts of the pattern could
# both take makes the regex backtrack exponentially on long "1 + 1 + ..." lines.
_NUM = r"(?:\$\s?)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_OP = r"(?:\\times|\\cdot|\\div|[-+*/x×÷·−])"
_EQ_RE = re.compile(
    rf"(?<![\w.,$])(?P<lhs>{_NUM}(?:\s*{_OP}\s*{_NUM}){{1,12}})\s*=\s*(?P<rhs>{_NUM}(?:/\d+(?![\d.,]))?)"
)
_TOKEN_RE = re.compile(rf"{_NUM}|{_OP}")
_NUM_ONLY_RE = re.compile(_NUM)


def _num(tok: str) -> Fraction:
    return Fraction(tok.replace("$", "").replace(",", "").replace(" ", ""))


def _evaluate(expr: str) -> Fraction | None:
    """Value of 'a op b op c ...' with * and / before + and -; None on division by zero."""
    toks = _TOKEN_RE.findall(expr)
    nums = [_num(t) for t in toks[0::2]]
    ops = ["*" if o in ("x", "×", "·", "\\times", "\\cdot") else "/" if o in ("÷", "\\div") else
           "-" if o == "−" else o for o in toks[1::2]]
    try:
        terms, signs = [nums[0]], []
        for op, n in zip(ops, nums[1:]):
            if op == "*":
                terms[-1] *= n
            elif op == "/":
                terms[-1] /= n
            else:
                signs.append(op)
                terms.append(n)
    except ZeroDivisionError:
        return None
    value = terms[0]
    for sign, t in zip(signs, terms[1:]):
        value = value + t if sign == "+" else value - t
    return value


def _stated(rhs: str) -> Fraction | None:
    if "/" in rhs:  # "= 3/4"
        a, b = rhs.split("/")
        return _num(a) / _num(b) if _num(b) != 0 else None
    return _num(rhs)


def _close_enough(value: Fraction | None, stated: Fraction | None, rhs: str) -> bool:
    """Exact, except that a result written with d decimals may be rounded to d decimals."""
    if value is None or stated is None:
        return False
    m = re.search(r"\.(\d+)\s*$", rhs)
    if m is None:
        return value == stated
    return abs(value - stated) <= Fraction(1, 2 * 10 ** len(m.group(1)))


def find_equations(text: str) -> list[dict[str, Any]]:
    """Every 'a op b (op c ...) = z' in `text`, recomputed exactly.

    Returns dicts {"text", "value" (exact left side, None if it divides by zero), "stated" (z,
    None for "x/0"), "ok"}. Numbers may carry $ and thousands commas; operators + - * x × · / ÷ \\times \\cdot \\div.
    A result written "3/4" (no spaces) is a fraction; "= 42 / 6 = 7" is a chain. Chains such as
    "3 * 6 = 18 + 2 = 20" are read as two equations. An expression glued to a letter
    or a preceding operator ("y - 3 + 4 = 1", "-3 + 5 = 2") is skipped, not judged.
    """
    out: list[dict[str, Any]] = []
    pos = 0
    while True:
        m = _EQ_RE.search(text, pos)
        if m is None:
            return out
        pos = m.start("rhs")  # the result may start the next equation of a chain
        before = text[: m.start()].rstrip()
        opens_math = before.endswith("\\(")  # LaTeX inline maths, \(4 \times 3 = 12\): not a bracket
        if before and not opens_math and (before[-1] in "+-*/×÷−^(" or before.endswith(("\\times", "\\cdot", "\\div"))):
            continue
        lhs, rhs = m.group("lhs"), m.group("rhs")
        value = _evaluate(lhs)
        stated = _stated(rhs)
        out.append({"text": m.group(0), "value": value, "stated": stated,
                    "ok": _close_enough(value, stated, rhs)})


def _known_values(problem: Problem) -> set[Fraction]:
    known = set()
    for it in problem.intermediates:
        try:
            known.add(Fraction(str(it["value"])))
        except (KeyError, ValueError, ZeroDivisionError):
            pass
    if known:  # the given numbers count too ("2 * 3 = 6" where 6 is in the question)
        for tok in _NUM_ONLY_RE.findall(problem.question):
            known.add(_num(tok))
    return known


def label_steps(problem: Problem, steps: list[str]) -> list[bool | None]:
    """Label each solution step right (True), wrong (False) or uncheckable (None).

    Rules (exact arithmetic, see `find_equations`):
      * False if any "x op y = z" in the step is arithmetically wrong, or if the problem records
        intermediate values (arith problems) and some stated result z is neither an intermediate
        value nor a number given in the question (a correct sum of the wrong things is still wrong);
      * True if the step has at least one equation and none of the above applies;
      * None if the step has no equation to check (e.g. "Let's think." or the final "\\boxed{}").
    After the first False step every later step is False too (the ProcessBench convention: the
    first error is what matters; what follows builds on it).
    For problems without intermediates (GSM8K, MATH-500) only the arithmetic is checked.
    """
    known = _known_values(problem)
    labels: list[bool | None] = []
    failed = False
    for step in steps:
        if failed:
            labels.append(False)
            continue
        eqs = find_equations(step or "")
        if not eqs:
            labels.append(None)
            continue
        bad = any(not e["ok"] for e in eqs) or bool(known and any(e["stated"] not in known for e in eqs))
        labels.append(not bad)
        failed = bad
    return labels


# ----------------------------------------------------------------------------------------------
# Public datasets (GSM8K, MATH-500) from JSONL or the hub
# ----------------------------------------------------------------------------------------------

_SHAPES = ("GSM8K rows {question, answer with '#### N'}, MATH-500 rows {problem, answer, ...}, "
           "or custom rows {question, gold}")


def _detect_kind(row: dict) -> str | None:
    if isinstance(row.get("question"), str) and isinstance(row.get("answer"), str) and "####" in row["answer"]:
        return "gsm8k"
    if isinstance(row.get("problem"), str) and row.get("answer") is not None:
        return "math500"
    if isinstance(row.get("question"), str) and row.get("gold") is not None:
        return "custom"
    return None


def _row_to_problem(row: Any, kind: str | None, index: int, where: str) -> Problem:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    detected = _detect_kind(row)
    if detected is None or (kind is not None and detected != kind):
        want = f"a {kind} row" if kind else "a known row shape"
        raise ValueError(f"{where}: not {want}; keys {sorted(row)}. Expected {_SHAPES}.")
    if detected == "gsm8k":
        sol = row["answer"].split("####")[0].strip()
        return Problem(id=f"gsm8k-{index}", question=row["question"], gold=gold_from_gsm8k(row["answer"]),
                       source="gsm8k", level=None, meta={"solution": sol, "where": where})
    if detected == "math500":
        level = row.get("level")
        try:
            level = int(level) if level is not None else None
        except (TypeError, ValueError):
            level = None
        return Problem(id=str(row.get("unique_id") or f"math500-{index}"), question=row["problem"],
                       gold=str(row["answer"]), source="math500", level=level,
                       meta={"solution": row.get("solution", ""), "subject": row.get("subject"),
                             "unique_id": row.get("unique_id"), "where": where})
    return Problem(id=str(row.get("id") or f"custom-{index}"), question=row["question"], gold=str(row["gold"]),
                   source="custom", level=row.get("level"), intermediates=list(row.get("intermediates") or []),
                   meta=dict(row.get("meta") or {}, where=where))


def load_jsonl(path: str | Path, kind: str | None = None) -> list[Problem]:
    """Problems from a JSONL file of GSM8K, MATH-500 or custom rows (shape detected per row).

    `kind` ("gsm8k", "math500", "custom") makes a row of another shape an error. Errors are
    ValueErrors naming the file and the 1-based line: missing file, bad JSON, unknown row shape.
    Blank lines are skipped.
    """
    if kind is not None and kind not in ("gsm8k", "math500", "custom"):
        raise ValueError(f"kind must be 'gsm8k', 'math500', 'custom' or None, got {kind!r}")
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: file not found")
    problems: list[Problem] = []
    with p.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{p}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
            problems.append(_row_to_problem(row, kind, len(problems), where))
    return problems


_HUB = {"gsm8k": ("openai/gsm8k", "main"), "math500": ("HuggingFaceH4/MATH-500", None)}


def _hub_rows(name: str, split: str) -> list[dict]:
    """Rows from the Hugging Face hub via `datasets` (imported here: it is slow to import)."""
    import datasets

    repo, config = _HUB[name]
    ds = datasets.load_dataset(repo, config, split=split) if config else datasets.load_dataset(repo, split=split)
    return [dict(r) for r in ds]


def load_dataset_problems(name: str, split: str = "test", path: str | Path | None = None) -> list[Problem]:
    """GSM8K or MATH-500 problems: from `path` (JSONL) if given, else from the hub through `datasets`.

    With no hub reachable the error says so and asks for a local JSONL path.
    """
    if name not in _HUB:
        raise ValueError(f"unknown dataset {name!r}; choose 'gsm8k' or 'math500'")
    if path is not None:
        return load_jsonl(path, kind=name)
    try:
        rows = _hub_rows(name, split)
    except Exception as e:  # noqa: BLE001 - offline, missing package, bad split: all mean "use a file"
        raise ValueError(
            f"could not load {name} ({_HUB[name][0]}, split {split!r}) from the Hugging Face hub: no hub "
            f"reachable or the dataset is unavailable ({type(e).__name__}: {e}). Pass a local JSONL path "
            f"instead (a JSONL file of {name} rows)."
        ) from e
    return [_row_to_problem(r, name, i, f"{_HUB[name][0]}[{split}][{i}]") for i, r in enumerate(rows)]


# ----------------------------------------------------------------------------------------------
# Built-in examples and a single entry point
# ----------------------------------------------------------------------------------------------


def _inter(name: str, expr: str, value: int) -> dict:
    return {"name": name, "expr": expr, "value": str(value)}


EXAMPLES: list[Problem] = [
    Problem(
        id="example-bakery",
        question=("A bakery makes 24 muffins in the morning and 18 muffins in the afternoon. It packs all "
                  "the muffins into boxes of 6. Each box sells for $5. How many dollars does the bakery "
                  "make if it sells every box?"),
        gold="35",
        source="custom",
        intermediates=[_inter("muffins made", "24 + 18", 42), _inter("boxes", "42 / 6", 7),
                       _inter("dollars", "7 * 5", 35)],
        meta={"style": "gsm8k-like"},
    ),
    Problem(
        id="example-garden",
        question=("Tom plants 3 rows of tomato plants with 8 plants in each row. Each plant gives 4 tomatoes. "
                  "Tom's family eats 30 tomatoes and he gives the rest equally to 6 neighbours. How many "
                  "tomatoes does each neighbour get?"),
        gold="11",
        source="custom",
        intermediates=[_inter("plants", "3 * 8", 24), _inter("tomatoes", "24 * 4", 96),
                       _inter("tomatoes left", "96 - 30", 66), _inter("tomatoes per neighbour", "66 / 6", 11)],
        meta={"style": "gsm8k-like"},
    ),
    Problem(
        id="example-fraction",
        question="What is $\\frac{1}{2} + \\frac{1}{3}$? Give the answer as a fraction in lowest terms.",
        gold="\\frac{5}{6}",
        source="custom",
        meta={"style": "math-like"},
    ),
]
EXAMPLES += [generate_arith(2, 0, seed=0), generate_arith(4, 0, seed=0)]


@functools.lru_cache(maxsize=8)
def _cached_dataset(name: str, split: str, path: str | None) -> tuple[Problem, ...]:
    return tuple(load_dataset_problems(name, split=split, path=path))


def get_problem(source: str, index: int, level: int | None = None, path: str | Path | None = None,
                seed: int = 0) -> Problem:
    """One problem by source and index.

    - "arith": generate_arith(level, index, seed); level None means level (index % 5) + 1.
    - "word": word_problems.generate_word(level, index, seed) (GSM8K-like stories), levels likewise.
    - "example" / "custom": EXAMPLES[index].
    - "gsm8k" / "math500": the index-th row of the dataset (path or hub; loaded once and cached);
      for MATH-500 a level picks the index-th problem of that level.
    """
    if source == "arith":
        return generate_arith(level if level is not None else index % 5 + 1, index, seed)
    if source == "word":
        from .word_problems import generate_word

        return generate_word(level if level is not None else index % 5 + 1, index, seed)
    if source in ("example", "custom"):
        pool: list[Problem] | tuple[Problem, ...] = EXAMPLES
    elif source in ("gsm8k", "math500"):
        pool = _cached_dataset(source, "test", str(path) if path is not None else None)
        if level is not None:
            pool = [p for p in pool if p.level == level]
    else:
        raise ValueError(f"unknown source {source!r}; choose arith, word, example, gsm8k or math500")
    if not 0 <= index < len(pool):
        raise IndexError(f"{source}: index {index} out of range (0..{len(pool) - 1})")
    return pool[index]
