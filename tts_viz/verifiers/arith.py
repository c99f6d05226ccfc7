"""Arithmetic checker: recompute every `a op b = c` in a step exactly, with fractions.

Deterministic and instant, limited to arithmetic. Like a PRM's step score, which estimates
whether the solution *so far* is on track, the score of step k covers steps 1..k:
  0.0  some equation in steps 1..k is wrong,
  1.0  all equations so far are right and at least one was checked,
  0.5  nothing checkable yet (no evidence either way).
"""

from __future__ import annotations

import ast
import operator
import re
from fractions import Fraction
from typing import Sequence

from .base import VerifierBase

NEUTRAL = 0.5

_NUM = r"\d[\d,]*(?:\.\d+)?"
# An expression: numbers joined by operators, optional parentheses, units like $ ignored.
_EXPR = rf"\(?\s*\$?{_NUM}\s*%?\)?(?:\s*(?:[-+*/×÷xX·]|\\times|\\cdot|\\div)\s*\(?\s*\$?{_NUM}\s*%?\)?)+"
_EQ = re.compile(rf"(?P<lhs>{_EXPR})\s*=\s*\$?\s*(?P<rhs>-?{_NUM})")

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _to_python(expr: str) -> str:
    e = expr.replace("$", "").replace("%", "")
    e = re.sub(r"(?<=\d),(?=\d{3})", "", e)  # thousands separators
    for a, b in (("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"), ("×", "*"), ("÷", "/"), ("·", "*")):
        e = e.replace(a, b)
    return re.sub(r"(?<=[\d)\s])[xX](?=[\s\d(])", "*", e)


def _eval(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return Fraction(str(node.value))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left), _eval(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand)
    raise ValueError("not arithmetic")


def check_equations(step: str) -> list[tuple[str, bool]]:
    """Every `expression = number` found in the step, with whether it is exactly right."""
    out = []
    for m in _EQ.finditer(step):
        lhs, rhs = m.group("lhs"), m.group("rhs")
        try:
            value = _eval(ast.parse(_to_python(lhs).strip(), mode="eval"))
            claimed = Fraction(rhs.replace(",", ""))
        except (ValueError, SyntaxError, ZeroDivisionError, TypeError):
            continue
        # A rounded decimal claim (e.g. 10/3 = 3.33) counts as right to its own precision.
        decimals = len(rhs.split(".")[1]) if "." in rhs else 0
        ok = value == claimed or (decimals > 0 and abs(value - claimed) <= Fraction(1, 2 * 10**decimals))
        out.append((m.group(0).strip(), ok))
    return out


class ArithVerifier(VerifierBase):
    name = "arith"

    def score(self, question: str, solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        out = []
        for steps in solutions:
            scores, wrong, checked = [], False, False
            for step in steps:
                eqs = check_equations(step)
                checked = checked or bool(eqs)
                wrong = wrong or any(not ok for _, ok in eqs)
                scores.append(0.0 if wrong else (1.0 if checked else NEUTRAL))
            out.append(scores)
        return out
