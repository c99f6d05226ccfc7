"""Generative self-verification: ask a chat model whether the last step is correct.

Score = P(Yes) / (P(Yes) + P(No)) read from the next-token distribution after the question:
one batched prefill, no decoding. Works with any chat model, including the policy already in
memory. DESIGN.md measured the 0.5B judging itself at AUROC 0.49 (no signal): it is shipped
because it is the general mechanism, and prm-eval says how much it is worth for a given judge.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .base import VerifierBase

JUDGE_SYSTEM = "You are a careful math teacher who checks students' work."
JUDGE_QUESTION = "Is the last step correct? Answer Yes or No."


def _variant_ids(tokenizer, word: str) -> list[int]:
    """Token ids whose text is the word (with/without leading space, any case): the judge may use any."""
    ids = set()
    for v in (word, " " + word, word.lower(), " " + word.lower(), word.upper()):
        toks = tokenizer(v, add_special_tokens=False)["input_ids"]
        if len(toks) == 1:
            ids.add(toks[0])
    if not ids:
        raise ValueError(f"The judge's tokenizer has no single token for {word!r}.")
    return sorted(ids)


TOP_K = 20  # what vLLM allows by default (--max-logprobs 20)


def p_yes_from_top(top: dict[str, float]) -> float:
    """P(Yes) / (P(Yes) + P(No)) from a server's top-k next-token log-probabilities. The variants
    are those _variant_ids takes ("Yes", " Yes", "yes", ...). A word outside the top k has at most
    the smallest listed probability: that bound stands in for it; neither listed gives 0.5."""
    def mass(word: str) -> float | None:
        vals = [lp for t, lp in top.items() if t.strip() in (word, word.lower(), word.upper())]
        return float(torch.logsumexp(torch.tensor(vals), 0)) if vals else None

    yes, no = mass("Yes"), mass("No")
    if yes is None and no is None:
        return 0.5
    floor = min(top.values())
    yes = floor if yes is None else yes
    no = floor if no is None else no
    return float(torch.sigmoid(torch.tensor(yes - no)))


class SelfJudgeVerifier(VerifierBase):
    name = "self-judge"

    def __init__(self, backend, batch_size: int = 16) -> None:
        super().__init__()
        self.backend = backend
        self.batch_size = batch_size
        self.compute.params = backend.params
        # in process: the full next-token distribution by token id; on a model server: its top
        # log-probabilities by token text (openai_backend.next_token_top_logprobs)
        self.by_id = hasattr(backend, "next_token_logprobs")
        if self.by_id:
            self.yes_ids = _variant_ids(backend.tokenizer, "Yes")
            self.no_ids = _variant_ids(backend.tokenizer, "No")

    def judge_prompt(self, question: str, steps: Sequence[str]) -> str:
        shown = "\n\n".join(f"Step {i + 1}: {s}" for i, s in enumerate(steps))
        user = f"Problem:\n{question.strip()}\n\nSolution so far:\n{shown}\n\n{JUDGE_QUESTION}"
        msgs = [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]
        return self.backend.chat_prompt(msgs)

    def _p_yes(self, prompts: list[str]) -> list[float]:
        if not prompts:
            return []
        if not self.by_id:
            tops = self.backend.next_token_top_logprobs(prompts, k=TOP_K, compute=self.compute)
            return [p_yes_from_top(t) for t in tops]
        logp = self.backend.next_token_logprobs(prompts, batch_size=self.batch_size, compute=self.compute)
        yes = torch.logsumexp(logp[:, self.yes_ids], dim=-1)
        no = torch.logsumexp(logp[:, self.no_ids], dim=-1)
        return torch.sigmoid(yes - no).tolist()  # = P(yes) / (P(yes) + P(no))

    def score(self, question: str, solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        return self.score_level_by_level(question, solutions)

    def score_last(self, question: str, solutions: Sequence[Sequence[str]]) -> list[float]:
        return self._p_yes([self.judge_prompt(question, steps) for steps in solutions])
