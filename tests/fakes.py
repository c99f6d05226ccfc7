"""Scripted, deterministic stand-ins for the policy and the verifier.

Step texts carry their own score as "[0.42]" so a test can design exactly which candidate the
verifier prefers; "\\boxed{X}" in a step finishes the solution with answer X.
"""

from __future__ import annotations

import re
import threading
from typing import Callable, Sequence

from tts_viz.policy import StepResult, has_final_answer
from tts_viz.trace import ModelCompute
from tts_viz.verifiers.base import VerifierBase


class FakeBackend:
    name = "fake-policy"
    params = 1000


class ScriptedPolicy:
    """next_steps(partials) -> step_fn(partial_steps, index_in_batch, call_no) for each row.

    Records every batched call so tests can check batching and what the model was shown.
    """

    def __init__(self, step_fn: Callable[[list[str], int, int], str], solution_fn=None, cancel_after_calls=None,
                 logprob_fn=None):
        self.step_fn = step_fn
        self.solution_fn = solution_fn
        self.logprob_fn = logprob_fn  # (index, call_no) -> the sample's token log-probabilities
        self.backend = FakeBackend()
        self.compute = ModelCompute(params=1000)
        self.calls: list[dict] = []
        self.cancel_after_calls = cancel_after_calls
        self.max_steps = 12

    def _maybe_cancel(self, cancel: threading.Event | None) -> None:
        if self.cancel_after_calls is not None and len(self.calls) >= self.cancel_after_calls and cancel is not None:
            cancel.set()

    def next_steps(self, question, partials, temperature, seed, cancel=None, previous_attempts=None):
        call_no = len(self.calls)
        self.calls.append({"kind": "steps", "partials": [list(p) for p in partials], "temperature": temperature})
        out = []
        for i, steps in enumerate(partials):
            text = self.step_fn(list(steps), i, call_no)
            self.compute.add(prompt_tokens=10, generated_tokens=5)
            out.append(StepResult(text, 5, has_final_answer(text), "boxed" if has_final_answer(text) else None))
        self._maybe_cancel(cancel)
        return out

    def full_solutions(self, question, count, temperature, seed, cancel=None, previous_attempts=None,
                       on_solution=None):
        call_no = len(self.calls)
        self.calls.append({"kind": "solutions", "count": count, "previous": previous_attempts})
        out = []
        for i in range(count):
            prev = previous_attempts[i] if previous_attempts else []
            steps = self.solution_fn(i, call_no, list(prev))
            self.compute.add(prompt_tokens=10, generated_tokens=5 * len(steps))
            out.append((steps, 5 * len(steps), "boxed"))
            if on_solution is not None:  # as the real backend: each sample as it finishes
                on_solution(i, out[-1])
        self._maybe_cancel(cancel)
        return out


    def solutions_with_logprobs(self, question, count, temperature, seed, cancel=None, stop_row=None, on_solution=None):
        """As the real policy: stop_row is asked after every token and abandons the sample there."""
        call_no = len(self.calls)
        self.calls.append({"kind": "logprob-solutions", "count": count})
        out = []
        for i in range(count):
            steps, lps = self.solution_fn(i, call_no, []), list(self.logprob_fn(i, call_no))
            reason = "boxed"
            for t in range(1, len(lps)):
                if stop_row is not None and stop_row(i, lps[:t]):
                    steps, lps, reason = [steps[0][:5]], lps[:t], "abandoned"
                    break
            self.compute.add(prompt_tokens=10, generated_tokens=len(lps))
            out.append((steps, len(lps), reason, lps))
        self._maybe_cancel(cancel)
        return out


def tagged_score(step: str) -> float:
    m = re.search(r"\[(\d*\.?\d+)\]", step)
    return float(m.group(1)) if m else 0.5


class TaggedVerifier(VerifierBase):
    """Scores each step by the number written in it: '[0.9]' -> 0.9. Records its calls."""

    name = "tagged"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int]] = []

    def score(self, question: str, solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        self.calls.append(("score", len(solutions)))
        return [[tagged_score(s) for s in steps] for steps in solutions]

    def score_last(self, question: str, solutions: Sequence[Sequence[str]]) -> list[float]:
        self.calls.append(("score_last", len(solutions)))
        return [tagged_score(steps[-1]) if steps else 0.0 for steps in solutions]
