"""Step-wise policy: a chat model that writes a solution one step (paragraph) at a time.

Steps are separated by a blank line ("\\n\\n"), as in search-and-learn; the final answer goes in
\\boxed{}. Everything is batched: the next step of many partial solutions is ONE generate call.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

from .trace import ModelCompute

STEP_DELIMITER = "\n\n"
SYSTEM_PROMPT = (
    "Solve the math problem efficiently and clearly. Think step by step. Write each step as one "
    "short paragraph and separate steps with a blank line. Finish with: "
    "Therefore, the final answer is: $\\boxed{ANSWER}$."
)
REVISION_INSTRUCTION = (
    "Above are earlier attempts at this problem; they may contain mistakes. Check them and write "
    "an improved, complete solution. Separate steps with a blank line and put the final answer in \\boxed{}."
)


@dataclass
class StepResult:
    text: str
    tokens: int
    finished: bool
    finish_reason: str | None  # "boxed", "eos", "max_steps" when finished; "length" if cut mid-step


def split_steps(solution: str) -> list[str]:
    return [s.strip() for s in solution.split(STEP_DELIMITER) if s.strip()]


def has_final_answer(text: str) -> bool:
    return "\\boxed" in text or "\\fbox" in text


class StepPolicy:
    def __init__(
        self,
        backend,
        system_prompt: str = SYSTEM_PROMPT,
        max_step_tokens: int = 160,
        max_steps: int = 12,
        max_solution_tokens: int = 640,
        compute: ModelCompute | None = None,
    ) -> None:
        self.backend = backend
        self.system_prompt = system_prompt
        self.max_step_tokens = max_step_tokens
        self.max_steps = max_steps
        self.max_solution_tokens = max_solution_tokens
        self.compute = compute if compute is not None else ModelCompute(params=backend.params)

    @property
    def name(self) -> str:
        return self.backend.name

    def messages(self, question: str, previous_attempts: Sequence[str] = ()) -> list[dict[str, str]]:
        user = question.strip()
        if previous_attempts:
            shown = "\n\n".join(
                f"Attempt {i + 1}:\n{a.strip()}" for i, a in enumerate(previous_attempts)
            )
            user = f"{user}\n\n{shown}\n\n{REVISION_INSTRUCTION}"
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]

    def prompt(self, question: str, steps: Sequence[str] = (), previous_attempts: Sequence[str] = ()) -> str:
        continuation = "".join(s + STEP_DELIMITER for s in steps)
        return self.backend.chat_prompt(self.messages(question, previous_attempts), continuation)

    def next_steps(
        self,
        question: str,
        partials: Sequence[Sequence[str]],
        temperature: float,
        seed: int,
        cancel: threading.Event | None = None,
        previous_attempts: Sequence[Sequence[str]] | None = None,
    ) -> list[StepResult]:
        """The next step of every partial solution, in one batched generate call."""
        prompts = [
            self.prompt(question, steps, previous_attempts[i] if previous_attempts else ())
            for i, steps in enumerate(partials)
        ]
        gens = self.backend.generate(
            prompts,
            max_new_tokens=self.max_step_tokens,
            temperature=temperature,
            stop=[STEP_DELIMITER],
            seed=seed,
            cancel=cancel,
            compute=self.compute,
        )
        out = []
        for steps, g in zip(partials, gens):
            text = g.text.strip()
            if has_final_answer(text):
                out.append(StepResult(text, g.tokens, True, "boxed"))
            elif g.finish_reason == "eos":
                out.append(StepResult(text, g.tokens, True, "eos"))
            elif len(steps) + 1 >= self.max_steps:
                out.append(StepResult(text, g.tokens, True, "max_steps"))
            else:
                out.append(StepResult(text, g.tokens, False, "length" if g.finish_reason == "length" else None))
        return out

    def full_solutions(
        self,
        question: str,
        count: int,
        temperature: float,
        seed: int,
        cancel: threading.Event | None = None,
        previous_attempts: Sequence[Sequence[str]] | None = None,
        on_solution=None,
    ) -> list[tuple[list[str], int, str]]:
        """`count` whole solutions in one batched call: (steps, tokens, finish_reason) each.
        on_solution(index, (steps, tokens, finish_reason)) is called as each one finishes."""
        prompts = [
            self.prompt(question, (), previous_attempts[i] if previous_attempts else ()) for i in range(count)
        ]
        return self._whole(prompts, temperature, seed, cancel, on_solution)

    def full_solutions_many(self, questions: Sequence[str], count: int, temperature: float, seed: int,
                            cancel: threading.Event | None = None) -> list[list[tuple[list[str], int, str]]]:
        """`count` whole solutions of EACH question, all in one batched call (a bigger batch decodes
        more tokens per second on a CPU: the pool sampler's many problems at once)."""
        prompts = [self.prompt(q) for q in questions for _ in range(count)]
        flat = self._whole(prompts, temperature, seed, cancel)
        return [flat[i * count: (i + 1) * count] for i in range(len(questions))]

    def solutions_with_logprobs(self, question: str, count: int, temperature: float, seed: int,
                                cancel: threading.Event | None = None, stop_row=None, on_solution=None,
                                ) -> list[tuple[list[str], int, str, list[float]]]:
        """As full_solutions, each with its tokens' log-probabilities: (steps, tokens, reason, logprobs).
        stop_row(index, logprobs so far) -> True abandons that sample mid-way (reason "abandoned"); a
        backend that cannot stop a row early (a model server answers whole) ignores it."""
        prompts = [self.prompt(question) for _ in range(count)]
        extra: dict = {"logprobs": True}
        if stop_row is not None and getattr(self.backend, "can_stop_rows", True):
            extra["stop_row"] = stop_row
        if on_solution is not None:
            extra["on_done"] = lambda i, g: on_solution(i, self._solution(g))
        gens = self._generate_whole(prompts, temperature, seed, cancel, **extra)
        return [(*self._solution(g), list(g.logprobs or [])) for g in gens]

    def _whole(self, prompts: Sequence[str], temperature: float, seed: int,
               cancel: threading.Event | None, on_solution=None) -> list[tuple[list[str], int, str]]:
        extra = {} if on_solution is None else {"on_done": lambda i, g: on_solution(i, self._solution(g))}
        return [self._solution(g) for g in self._generate_whole(prompts, temperature, seed, cancel, **extra)]

    def _generate_whole(self, prompts: Sequence[str], temperature: float, seed: int, cancel, **extra):
        return self.backend.generate(
            prompts,
            max_new_tokens=self.max_solution_tokens,
            temperature=temperature,
            seed=seed,
            cancel=cancel,
            compute=self.compute,
            **extra,
        )

    def _solution(self, g) -> tuple[list[str], int, str]:
        """(steps, tokens, finish_reason) of one whole generation."""
        steps = split_steps(g.text) or [g.text.strip()]
        if len(steps) > self.max_steps:  # keep every word (the answer is at the end): merge the tail
            steps = steps[: self.max_steps - 1] + [STEP_DELIMITER.join(steps[self.max_steps - 1 :])]
        if g.finish_reason == "abandoned":
            return steps, g.tokens, "abandoned"
        reason = "boxed" if has_final_answer(g.text) else ("eos" if g.finish_reason == "eos" else "max_tokens")
        return steps, g.tokens, reason
