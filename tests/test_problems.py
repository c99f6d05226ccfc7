"""Generated arithmetic problems, step labelling, dataset loading, examples."""

import json
from fractions import Fraction
from pathlib import Path

import pytest

from tts_viz import problems
from tts_viz.grading import answers_equivalent
from tts_viz.problems import (
    EXAMPLES,
    Problem,
    arith_problem_set,
    find_equations,
    generate_arith,
    get_problem,
    label_steps,
    load_dataset_problems,
    load_jsonl,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _check_intermediates(p: Problem) -> None:
    """Every intermediate's expression evaluates to its value; the last one is the gold answer."""
    assert p.intermediates, p.id
    for it in p.intermediates:
        a, op, b = it["expr"].split()
        a, b = Fraction(a), Fraction(b)
        got = {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op]
        assert got == Fraction(it["value"]), (p.id, it)
        assert got.denominator == 1 and got > 0, (p.id, it)  # positive integers only
    assert p.gold == p.intermediates[-1]["value"]


def test_generator_is_deterministic():
    assert generate_arith(3, 7, seed=1) == generate_arith(3, 7, seed=1)
    assert generate_arith(3, 7, seed=1).question != generate_arith(3, 8, seed=1).question
    assert generate_arith(3, 7, seed=1).question != generate_arith(3, 7, seed=2).question
    assert generate_arith(3, 7).id == "arith-L3-s0-7"


def test_generated_arithmetic_checks_out():
    ps = arith_problem_set(per_level=20, seed=0)  # 100 problems
    assert len(ps) == 100
    for p in ps:
        _check_intermediates(p)
        assert p.source == "arith" and p.gold.isdigit()
        n_ops = sum(2 if o.endswith("group") else 1 for o in p.meta["ops"])
        assert n_ops == len(p.intermediates)
        lo, hi = problems._LEVELS[p.level]["ops"]
        assert lo <= n_ops <= hi, p.id
        if p.level >= 3:
            assert set(p.meta["ops"]) & {"mul", "div", "add_group", "sub_group"}, p.id
        if p.level == 5:
            assert "div" in p.meta["ops"], p.id
        # the reference solution is labelled all right (None for the no-equation steps)
        labels = label_steps(p, p.meta["reference_steps"])
        assert False not in labels and True in labels, (p.id, labels)
        assert answers_equivalent(p.meta["reference_steps"][-1].split("{")[1].rstrip("}."), p.gold)


def test_levels_get_harder():
    ps = arith_problem_set(per_level=30, seed=3)
    mean_ops = [sum(len(p.intermediates) for p in ps if p.level == lv) / 30 for lv in range(1, 6)]
    assert mean_ops == sorted(mean_ops)
    with pytest.raises(ValueError):
        generate_arith(6, 0)


HAND = Problem(
    id="hand", source="custom", gold="35",
    question="A bakery makes 24 muffins and 18 more. It packs them in boxes of 6 and sells each box for $5.",
    intermediates=[{"name": "muffins", "expr": "24 + 18", "value": "42"},
                   {"name": "boxes", "expr": "42 / 6", "value": "7"},
                   {"name": "dollars", "expr": "7 * 5", "value": "35"}],
)


def test_label_steps_hand_made():
    steps = [
        "Let's think step by step.",  # no equation -> None
        "The bakery makes 24 + 18 = 42 muffins.",  # right
        "That fills 42 ÷ 6 = 8 boxes.",  # wrong arithmetic
        "So it makes 7 x 5 = $35.",  # right on its own, but after the first error
        "The answer is \\boxed{35}.",
    ]
    assert label_steps(HAND, steps) == [None, True, False, False, False]


def test_label_steps_rules():
    # correct arithmetic, but 24 + 6 = 30 is no quantity of this problem -> wrong
    assert label_steps(HAND, ["24 + 6 = 30 muffins"]) == [False]
    # a given number counts as known ("6 * 1 = 6")
    assert label_steps(HAND, ["6 * 1 = 6", "$1,000 is not an equation"]) == [True, None]
    # chains, money and thousands commas
    assert label_steps(HAND, ["24 + 18 = 42 / 6 = 7", "7 × 5 = $35"]) == [True, True]
    # without intermediates (GSM8K-style) only the arithmetic is checked
    gsm = Problem(id="g", question="q", gold="5", source="gsm8k")
    assert label_steps(gsm, ["2 + 2 = 4", "1,200 * 2 = 2,400", "3 + 3 = 7", "1 + 1 = 2"]) == [True, True, False, False]


def test_find_equations():
    eqs = find_equations("<<3*4=12>>12 and 10 / 3 = 3.33 but 10/3=3")
    assert [(e["text"], e["ok"]) for e in eqs] == [("3*4=12", True), ("10 / 3 = 3.33", True), ("10/3=3", False)]
    assert find_equations("y - 3 + 4 = 1") == []  # part of an algebraic expression: not judged
    assert find_equations("5 ÷ 0 = 1")[0]["ok"] is False
    assert find_equations("1/2 + 1/4 = 3/4")[0]["ok"] is True
    assert find_equations("2 \\times 3 = 6")[0]["ok"] is True
    # LaTeX inline maths opens with "\\(", which is no bracket of an expression: judged, right or wrong
    assert [(e["text"], e["ok"]) for e in find_equations("so \\(4 \\times 3 = 13\\) apples")] == [("4 \\times 3 = 13", False)]
    assert find_equations("(3 + 4) * 2 = 14") == []  # a real bracket still stops it (not judged)


# ----------------------------------------------------------------------------------------------
# Loading


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_load_gsm8k_jsonl(tmp_path):
    f = _write_jsonl(tmp_path / "g.jsonl", [
        {"question": "Q1?", "answer": "2+3=<<2+3=5>>5\n#### 5"},
        "",
        {"question": "Q2?", "answer": "so\n#### 1,000"},
    ])
    ps = load_jsonl(f)
    assert [(p.id, p.gold, p.source, p.level) for p in ps] == [("gsm8k-0", "5", "gsm8k", None),
                                                              ("gsm8k-1", "1000", "gsm8k", None)]
    assert ps[0].meta["solution"] == "2+3=<<2+3=5>>5"
    assert load_dataset_problems("gsm8k", path=f)[1].gold == "1000"


def test_load_math500_jsonl(tmp_path):
    row = {"problem": "Compute $1+1$.", "solution": "It is $\\boxed{2}$.", "answer": "2",
           "subject": "Prealgebra", "level": 1, "unique_id": "test/prealgebra/1.json"}
    ps = load_jsonl(_write_jsonl(tmp_path / "m.jsonl", [row]))
    assert ps[0].id == "test/prealgebra/1.json" and ps[0].gold == "2" and ps[0].level == 1
    assert ps[0].source == "math500" and ps[0].meta["subject"] == "Prealgebra"
    with pytest.raises(ValueError, match=r"m\.jsonl:1: not a gsm8k row"):
        load_jsonl(tmp_path / "m.jsonl", kind="gsm8k")


def test_load_errors_name_file_and_line(tmp_path):
    bad = _write_jsonl(tmp_path / "bad.jsonl", [{"question": "Q", "answer": "#### 1"}, "{not json"])
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: invalid JSON"):
        load_jsonl(bad)
    odd = _write_jsonl(tmp_path / "odd.jsonl", [{"foo": 1}])
    with pytest.raises(ValueError, match=r"odd\.jsonl:1: not a known row shape"):
        load_jsonl(odd)
    arr = _write_jsonl(tmp_path / "arr.jsonl", ["[1, 2]"])
    with pytest.raises(ValueError, match=r"arr\.jsonl:1: expected a JSON object"):
        load_jsonl(arr)
    with pytest.raises(ValueError, match="file not found"):
        load_jsonl(tmp_path / "missing.jsonl")


def test_hub_failure_asks_for_a_path(monkeypatch):
    def offline(name, split):
        raise ConnectionError("no network")

    monkeypatch.setattr(problems, "_hub_rows", offline)
    with pytest.raises(ValueError, match="no hub reachable.*local JSONL path"):
        load_dataset_problems("gsm8k")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset_problems("mnist")


def test_shared_gsm8k_file():
    path = SHARED_DATA / "gsm8k_test.jsonl"
    if not path.is_file():
        pytest.skip(f"shared GSM8K test set not present at {path}")
    ps = load_jsonl(path, kind="gsm8k")
    assert len(ps) > 1000
    assert all(p.gold and "," not in p.gold for p in ps)
    assert ps[0].gold == "18"  # Janet's ducks
    assert get_problem("gsm8k", 0, path=path).question == ps[0].question


def test_examples_and_get_problem():
    assert 3 <= len(EXAMPLES) <= 5
    assert len({p.id for p in EXAMPLES}) == len(EXAMPLES)
    for p in EXAMPLES:
        assert p.gold and p.question
        if p.intermediates:
            _check_intermediates(p)
    assert get_problem("example", 0) is EXAMPLES[0]
    assert get_problem("arith", 4, level=2) == generate_arith(2, 4)
    assert get_problem("arith", 4).level == 5
    with pytest.raises(IndexError):
        get_problem("example", 99)
    with pytest.raises(ValueError):
        get_problem("nope", 0)


def test_word_problems_are_deterministic_and_labelled_exactly():
    """GSM8K-like generated stories (shopping, percentages, rates, units, how-many-more, savings): the
    reference solution of every one is labelled right step by step and boxes the gold; a wrong
    intermediate quantity is caught."""
    from tts_viz.problems import get_problem, label_steps
    from tts_viz.word_problems import TEMPLATES, generate_word, word_problem_set

    probs = word_problem_set(per_level=30, seed=11)
    assert {p.meta["template"] for p in probs} == set(TEMPLATES)
    for p in probs:
        steps = p.meta["reference_steps"]
        labels = label_steps(p, steps)
        assert all(labels[:-1]) and labels[-1] is None, (p.question, steps, labels)
        assert steps[-1] == f"The answer is \\boxed{{{p.gold}}}." and int(p.gold) > 0
        assert len(p.intermediates) >= (1 if p.level == 1 else 3 if p.level >= 4 else 2)
    assert generate_word(3, 4, 11).question == get_problem("word", 4, level=3, seed=11).question
    assert generate_word(3, 4, 11).question != generate_word(3, 4, 12).question
    p = next(q for q in probs if q.meta["template"] == "percent" and q.level >= 2)
    first = p.intermediates[0]
    wrong = f"The discount is {first['expr']} = ${int(first['value']) + 1}."
    assert label_steps(p, [wrong]) == [False]
