"""Model-free verifier logic: the arithmetic checker's step scores, aggregation, judge prompt splits."""

from __future__ import annotations

import pytest

from tts_viz.verifiers import ArithVerifier, aggregate
from tts_viz.verifiers.self_judge import _split_step


def test_arith_scores_the_solution_so_far():
    steps = ["She has 16 - 3 = 13 eggs.", "Then she thinks.", "She sells 13 * 2 = 27 dollars.", "\\boxed{27}"]
    assert ArithVerifier().score("q", [steps]) == [[1.0, 1.0, 0.0, 0.0]]  # a wrong equation sticks
    assert ArithVerifier().score("q", [["No numbers here.", "7 + 5 = 12"]]) == [[0.5, 1.0]]


@pytest.mark.parametrize("how,expected", [("last", 0.9), ("min", 0.2), ("prod", 0.2 * 0.9)])
def test_aggregation(how, expected):
    assert aggregate([0.2, None, 0.9], how) == pytest.approx(expected)


def test_aggregation_rejects_unknown_rule():
    with pytest.raises(ValueError, match="Unknown aggregation"):
        aggregate([0.5], "mean")


def test_judge_prompts_are_cut_after_the_steps_shared_with_a_sibling():
    sols = [["a", "b", "roll"], ["a", "c", "roll"], ["d"]]
    assert [_split_step(i, sols) for i in range(3)] == [2, 2, 1]
