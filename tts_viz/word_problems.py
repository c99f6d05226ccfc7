"""Generated grade-school word problems closer to GSM8K: shopping and change, percentages, rates,
unit conversions, "how many more", savings. Levels 1-5 add steps and larger numbers.

Like the arithmetic stories in problems.py, every problem records the gold value of each
intermediate quantity, so `problems.label_steps` labels every step of a solution exactly: that is
what a process reward model needs as training data, and what the oracle verifier reads. Every
problem is fully determined by (level, index, seed); all intermediate results are positive integers.
"""

from __future__ import annotations

import math
import random
from typing import Callable

_NAMES = ["Maya", "Liam", "Sofia", "Noah", "Aisha", "Ben", "Chen", "Elena", "Omar", "Priya", "Jonas", "Zara",
          "Lucas", "Mei", "Tariq", "Hana"]
_ITEMS = [("notebook", "notebooks"), ("pen", "pens"), ("sandwich", "sandwiches"), ("toy car", "toy cars"),
          ("book", "books"), ("plant", "plants"), ("ticket", "tickets"), ("cupcake", "cupcakes")]


class _Story:
    """Sentences of the question, the intermediate quantities, and a reference solution, built together."""

    def __init__(self) -> None:
        self.sentences: list[str] = []
        self.inters: list[dict] = []
        self.steps: list[str] = []
        self.givens: list[int] = []

    def say(self, text: str, *givens: int) -> None:
        self.sentences.append(text)
        self.givens += list(givens)

    def calc(self, name: str, expr: str, value: int, step: str) -> int:
        if value <= 0 or value != int(value):
            raise _Retry
        self.inters.append({"name": name, "expr": expr, "value": str(int(value))})
        self.steps.append(step.format(expr=expr, v=int(value)))
        return int(value)


class _Retry(Exception):
    """The drawn numbers do not give positive whole results: draw again."""


def _divisor(rng: random.Random, total: int, lo: int, hi: int) -> int:
    """A divisor of total in lo..hi that leaves more than one per share (exact division only)."""
    ds = [d for d in range(lo, hi + 1) if total % d == 0 and total // d > 1]
    if not ds:
        raise _Retry
    return rng.choice(ds)


def _shopping(rng: random.Random, level: int, s: _Story) -> str:
    name = rng.choice(_NAMES)
    (one, many), (one2, many2) = rng.sample(_ITEMS, 2)
    k1, p1 = rng.randint(2, 3 + level), rng.randint(2, 3 + 3 * level)
    s.say(f"{name} buys {k1} {many} that cost ${p1} each.", k1, p1)
    total = s.calc(f"dollars for the {many}", f"{k1} * {p1}", k1 * p1, f"The {many} cost {{expr}} = ${{v}}.")
    if level >= 3:
        k2, p2 = rng.randint(2, 2 + level), rng.randint(3, 4 + 4 * level)
        s.say(f"{name} also buys {k2} {many2} for ${p2} each.", k2, p2)
        second = s.calc(f"dollars for the {many2}", f"{k2} * {p2}", k2 * p2, f"The {many2} cost {{expr}} = ${{v}}.")
        total = s.calc("dollars spent", f"{total} + {second}", total + second, "Altogether that is {expr} = ${v}.")
    if level >= 5:
        coupon = rng.randint(2, max(3, total // 4))
        s.say(f"A coupon takes ${coupon} off the total.", coupon)
        total = s.calc("dollars after the coupon", f"{total} - {coupon}", total - coupon,
                       "With the coupon the total is {expr} = ${v}.")
    if level == 1:
        return f"How many dollars does {name} spend?"
    bill = next(b for b in (10, 20, 50, 100, 200, 500) if b > total)
    s.say(f"{name} pays with a ${bill} bill.", bill)
    s.calc("dollars of change", f"{bill} - {total}", bill - total, "The change is {expr} = ${v}.")
    return f"How many dollars of change does {name} get?"


def _percent(rng: random.Random, level: int, s: _Story) -> str:
    name = rng.choice(_NAMES)
    one, many = rng.choice(_ITEMS)
    pct = rng.choice([10, 20, 25, 50] if level <= 2 else [10, 15, 20, 25, 30, 40, 60, 75])
    step = 100 // math.gcd(pct, 100)  # the price is a multiple of this, so the discount is whole dollars
    price = step * rng.randint(2, 4 + 4 * level)
    s.say(f"A {one} normally costs ${price}. This week it is {pct}% off.", price, pct)
    off = s.calc("dollars off", f"{price} * {pct} / 100", price * pct // 100, "The discount is {expr} = ${v}.")
    sale = s.calc("sale price", f"{price} - {off}", price - off, "So one costs {expr} = ${v} on sale.")
    if level == 1:
        return f"How many dollars does one {one} cost this week?"
    n = rng.randint(2, 2 + level)
    s.say(f"{name} buys {n} {many} on sale.", n)
    total = s.calc("dollars for the sale items", f"{n} * {sale}", n * sale, f"{n} {many} cost {{expr}} = ${{v}}.")
    if level >= 4:
        full = s.calc("dollars at the normal price", f"{n} * {price}", n * price,
                      f"At the normal price they would cost {{expr}} = ${{v}}.")
        s.calc("dollars saved", f"{full} - {total}", full - total, "The sale saves {expr} = ${v}.")
        return f"How many dollars does {name} save by buying the {many} on sale?"
    return f"How many dollars does {name} pay?"


def _rate(rng: random.Random, level: int, s: _Story) -> str:
    thing, unit = rng.choice([("machine", "bottles"), ("printer", "pages"), ("baker", "rolls"), ("robot", "boxes")])
    r1, h1 = rng.randint(3, 6 + 4 * level), rng.randint(2, 3 + level)
    s.say(f"A {thing} makes {r1} {unit} per hour and works for {h1} hours.", r1, h1)
    total = s.calc(f"{unit} from the first {thing}", f"{r1} * {h1}", r1 * h1, f"The {thing} makes {{expr}} = {{v}} {unit}.")
    if level >= 2:
        r2, h2 = rng.randint(2, 5 + 3 * level), rng.randint(2, 2 + level)
        s.say(f"A second {thing} makes {r2} {unit} per hour for {h2} hours.", r2, h2)
        more = s.calc(f"{unit} from the second {thing}", f"{r2} * {h2}", r2 * h2,
                      f"The second makes {{expr}} = {{v}} {unit}.")
        total = s.calc(f"{unit} made", f"{total} + {more}", total + more, f"Together that is {{expr}} = {{v}} {unit}.")
    if level >= 3:
        bad = rng.randint(1, max(2, total // 6))
        s.say(f"{bad} of the {unit} are damaged and thrown away.", bad)
        total = s.calc(f"good {unit}", f"{total} - {bad}", total - bad, f"That leaves {{expr}} = {{v}} {unit}.")
    if level >= 4:
        per = _divisor(rng, total, 2, 12)
        s.say(f"The {unit} are packed {per} to a crate.", per)
        s.calc("crates", f"{total} / {per}", total // per, "They fill {expr} = {v} crates.")
        return "How many crates are filled?"
    return f"How many {unit} are there in the end?"


def _more(rng: random.Random, level: int, s: _Story) -> str:
    a, b, c = rng.sample(_NAMES, 3)
    thing = rng.choice(["stickers", "marbles", "stamps", "shells", "cards"])
    x = rng.randint(4, 8 + 6 * level)
    s.say(f"{a} has {x} {thing}.", x)
    if level >= 2:
        k = rng.randint(2, 2 + level)
        s.say(f"{b} has {k} times as many {thing} as {a}.", k)
        y = s.calc(f"{b}'s {thing}", f"{x} * {k}", x * k, f"{b} has {{expr}} = {{v}} {thing}.")
    else:
        k = rng.randint(2, 9)
        s.say(f"{b} has {k} more {thing} than {a}.", k)
        y = s.calc(f"{b}'s {thing}", f"{x} + {k}", x + k, f"{b} has {{expr}} = {{v}} {thing}.")
    if level >= 3:
        d = rng.randint(2, max(3, y // 2))
        s.say(f"{c} has {d} fewer {thing} than {b}.", d)
        z = s.calc(f"{c}'s {thing}", f"{y} - {d}", y - d, f"{c} has {{expr}} = {{v}} {thing}.")
        if level >= 5:
            tot = s.calc(f"{thing} of all three", f"{x} + {y} + {z}", x + y + z,
                         f"Together they have {{expr}} = {{v}} {thing}.")
            s.calc(f"{thing} more than {b}", f"{tot} - {y}", tot - y,
                   f"That is {{expr}} = {{v}} more than {b} alone.")
            return f"How many more {thing} do the three have together than {b} has alone?"
        s.calc(f"{thing} {c} has more than {a}", f"{z} - {x}", z - x, f"{c} has {{expr}} = {{v}} more than {a}.")
        return f"How many more {thing} does {c} have than {a}?"
    s.calc(f"{thing} {b} has more than {a}", f"{y} - {x}", y - x, f"{b} has {{expr}} = {{v}} more than {a}.")
    return f"How many more {thing} does {b} have than {a}?"


def _units(rng: random.Random, level: int, s: _Story) -> str:
    name = rng.choice(_NAMES)
    piece = rng.choice([d for d in (5, 10, 20, 25, 50) if d <= 10 * level + 10])
    meters = rng.randint(2, 2 + 2 * level)
    s.say(f"{name} has a ribbon {meters} meters long and cuts it into pieces of {piece} centimeters.", meters, piece)
    cm = s.calc("centimeters of ribbon", f"{meters} * 100", meters * 100, "The ribbon is {expr} = {v} centimeters.")
    pieces = s.calc("pieces", f"{cm} / {piece}", cm // piece, "That makes {expr} = {v} pieces.")
    if level >= 3:
        used = rng.randint(2, max(3, pieces // 2))
        s.say(f"{name} uses {used} pieces to wrap presents.", used)
        pieces = s.calc("pieces left", f"{pieces} - {used}", pieces - used, "{expr} = {v} pieces are left.")
    if level >= 4:
        friends = _divisor(rng, pieces, 2, 8)
        s.say(f"The rest are shared equally among {friends} friends.", friends)
        s.calc("pieces per friend", f"{pieces} / {friends}", pieces // friends, "Each friend gets {expr} = {v} pieces.")
        return "How many pieces does each friend get?"
    return "How many pieces are left?" if level >= 3 else "How many pieces does the ribbon make?"


def _savings(rng: random.Random, level: int, s: _Story) -> str:
    name = rng.choice(_NAMES)
    per, weeks = rng.randint(3, 5 + 5 * level), rng.randint(2, 3 + 2 * level)
    s.say(f"{name} saves ${per} every week for {weeks} weeks.", per, weeks)
    total = s.calc("dollars saved", f"{per} * {weeks}", per * weeks, "That is {expr} = ${v} saved.")
    if level >= 2:
        gift = rng.randint(5, 10 + 10 * level)
        s.say(f"Then {name}'s aunt adds ${gift}.", gift)
        total = s.calc("dollars with the gift", f"{total} + {gift}", total + gift, "With the gift: {expr} = ${v}.")
    if level >= 3:
        spend = rng.randint(5, max(6, total // 2))
        s.say(f"{name} spends ${spend} on a game.", spend)
        total = s.calc("dollars left", f"{total} - {spend}", total - spend, "After the game: {expr} = ${v}.")
    if level >= 4:
        price = _divisor(rng, total, 3, 39)
        s.say(f"With the rest {name} buys as many ${price} books as possible.", price)
        s.calc("books", f"{total} / {price}", total // price, "That buys {expr} = {v} books.")
        return f"How many books does {name} buy?"
    return f"How many dollars does {name} have?"


TEMPLATES: dict[str, Callable[[random.Random, int, _Story], str]] = {
    "shopping": _shopping, "percent": _percent, "rate": _rate, "more": _more, "units": _units, "savings": _savings,
}


def generate_word(level: int, index: int, seed: int = 0):
    """A GSM8K-like word problem, fully determined by (level, index, seed); see the module docstring."""
    from .problems import Problem

    if level not in (1, 2, 3, 4, 5):
        raise ValueError(f"level must be 1-5, got {level!r}")
    rng = random.Random(f"tts-viz-word:{seed}:{level}:{index}")
    kind = rng.choice(sorted(TEMPLATES))
    for _attempt in range(100):
        story = _Story()
        try:
            question = TEMPLATES[kind](rng, level, story)
        except _Retry:
            continue
        gold = story.inters[-1]["value"]
        story.inters[-1]["name"] += " (the answer)"
        steps = story.steps + [f"The answer is \\boxed{{{gold}}}."]
        return Problem(id=f"word-L{level}-s{seed}-{index}", question=" ".join(story.sentences + [question]),
                       gold=gold, source="arith", level=level, intermediates=story.inters,
                       meta={"seed": seed, "index": index, "template": kind, "family": "word",
                             "givens": [str(g) for g in story.givens], "reference_steps": steps})
    raise RuntimeError(f"could not generate a level-{level} {kind} problem")  # not reached in practice


def word_problem_set(levels: tuple[int, ...] = (1, 2, 3, 4, 5), per_level: int = 20, seed: int = 0) -> list:
    """per_level word problems for each level, ordered by level then index."""
    return [generate_word(lv, i, seed) for lv in levels for i in range(per_level)]
