"""Answer extraction, equivalence, grouping and the math-verify deadline."""

import threading
import time

import pytest

from tts_viz import grading
from tts_viz.grading import (
    answer_key,
    answers_equivalent,
    extract_answer,
    extract_boxed,
    gold_from_gsm8k,
    group_answers,
    is_correct,
    numeric_value,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("so \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("first \\boxed{1} then \\boxed{\\sqrt{\\frac{a}{b}}}.", "\\sqrt{\\frac{a}{b}}"),  # last box
        ("\\boxed{\\boxed{1}+2}", "\\boxed{1}+2"),  # nested box belongs to the outer one
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),  # escaped braces are not grouping
        ("\\fbox{7}", "7"),
        ("$\\boxed 5$", "5"),
        ("\\boxed{3} and a cut-off \\boxed{12", "3"),  # unclosed box ignored
        ("no box here", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The answer is \\boxed{\\$1,000.}", "1000"),
        ("blah\n#### 1,234", "1234"),
        ("So the answer is $42.", "42"),
        ("**Answer: 42 apples**", "42"),
        ("The final answer is 3.5. Done.", "3.5"),
        ("answer: (1, 2)", "(1, 2)"),
        ("I do not know", None),
        (None, None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_gold_from_gsm8k():
    assert gold_from_gsm8k("a\nb 80,000+50,000=130,000\n#### 70,000") == "70000"
    with pytest.raises(ValueError):
        gold_from_gsm8k("no marker")


@pytest.mark.parametrize(
    "a, b",
    [
        ("1/2", "0.5"),
        ("\\frac{1}{2}", "0.5"),
        ("\\dfrac12", "0.5"),
        ("42", "42.0"),
        ("1,000", "1000"),
        ("\u22124", "-4"),  # unicode minus
        ("\\boxed{7}", "7"),
        ("\\text{Evelyn}", "Evelyn"),
        ("x+1", "1+x"),  # needs math-verify
        ("\\sqrt{18}", "3\\sqrt{2}"),
    ],
)
def test_equivalent(a, b):
    assert answers_equivalent(a, b)
    assert answers_equivalent(b, a)


@pytest.mark.parametrize("a, b", [("3", "4"), (None, "3"), ("3", None), (None, None), ("", ""),
                                  ("0.333", "1/3"), ("\\pi", "3.14"), ("}{", "{")])
def test_not_equivalent(a, b):
    assert answers_equivalent(a, b) is False


def test_numeric_fast_path_does_not_call_math_verify(monkeypatch):
    def boom(*args):
        raise AssertionError("math-verify should not be needed")

    monkeypatch.setattr(grading, "_mv_equal", boom)
    assert answers_equivalent("1/2", "0.5")
    assert not answers_equivalent("2", "3")
    assert numeric_value("\\frac{3}{4}") == numeric_value("0.75")


def test_weird_input_never_raises():
    for weird in ["\\frac{", "}}}}", "\\boxed{", "1/0", "\\frac{1}{0}", "$$", "\x00", "9" * 5000, "1e999999999", 12]:
        answers_equivalent(weird, "1")  # only must not raise
        answer_key(weird)
    assert numeric_value("1/0") is None


def test_timeout_path_returns_false(monkeypatch):
    release = threading.Event()

    def slow(answer, gold):
        release.wait(5)  # hangs until the test releases it
        return True

    monkeypatch.setattr(grading, "ISOLATION", "thread")  # the patched function runs in this process
    monkeypatch.setattr(grading, "_mv_equal", slow)
    before = grading.timeout_count()
    # unique strings so that no cached verdict short-cuts the call
    a, b = f"y^{time.time_ns()}+1", "1+y"
    result = answers_equivalent(a, b, timeout=0.2)
    release.set()
    assert result is False
    assert grading.timeout_count() == before + 1
    # a timed-out verdict is not cached as final
    monkeypatch.setattr(grading, "_mv_equal", lambda answer, gold: True)
    assert answers_equivalent(a, b, timeout=2.0) is True


def test_process_worker_is_killed_at_the_deadline():
    # sympy holds the GIL for a long time on this one; only a separate process can be stopped.
    assert grading.ISOLATION == "process"
    assert answers_equivalent("x^2+2x", "x(x+2)")  # worker started and warm
    before = grading.timeout_count()
    t0 = time.monotonic()
    assert answers_equivalent("2^{10^{10^{10}}}", "x^{10^{10}}", timeout=0.5) is False
    elapsed = time.monotonic() - t0
    assert grading.timeout_count() == before + 1
    assert elapsed < 15, elapsed  # generous: kill + wait; a thread took ~30 s here
    # a fresh worker takes over
    assert answers_equivalent("\\sqrt{8}", "2\\sqrt{2}")


def test_math_verify_works_off_main_thread():
    # math-verify's own timeout (signal.alarm) would raise in a worker thread; ours must not.
    out = []
    t = threading.Thread(target=lambda: out.append(answers_equivalent("x^2+2x", "x(x+2)")))
    t.start()
    t.join(30)
    assert out == [True]


def test_answer_key():
    assert answer_key("0.5") == answer_key("1/2") == answer_key("\\frac{1}{2}") == answer_key("\\dfrac{2}{4}") == "1/2"
    assert answer_key("3.0") == answer_key("3") == answer_key("\\boxed{3}") == "3"
    assert answer_key("1,000") == "1000"
    assert answer_key("\\left( 1, 2 \\right)") == answer_key("(1,2)")
    assert answer_key(None) == ""


def test_group_answers():
    answers = ["0.5", "1/2", None, "\\frac{2}{4}", "3", "x+1", "1+x", "\\boxed{3}", "", None]
    groups = group_answers(answers)
    assert sorted(groups) == sorted([[0, 1, 3], [2], [4, 7], [5, 6], [8], [9]])
    assert group_answers([]) == []


def test_is_correct():
    assert is_correct("18", None) is None
    assert is_correct(None, "18") is False
    assert is_correct("18.0", "18") is True
    assert is_correct("17", "18") is False


def test_answer_phrase_does_not_run_into_the_next_line():
    from tts_viz.grading import extract_answer

    text = ("Therefore, the final answer is:\nTherefore, the total meters James runs a week is "
            "3 * 60 = 180 meters.")
    assert extract_answer(text) is None
    assert extract_answer("So the answer is: the total he pays after the discount comes to 45 dollars") == "45"
