"""A hub PRM served by vLLM with the pooling runner: step scores through `POST /pooling`.

    vllm serve Qwen/Qwen2.5-Math-PRM-7B --runner pooling --trust-remote-code
    vllm serve peiyi9979/math-shepherd-mistral-7b-prm --runner pooling \
        --pooler-config '{"pooling_type": "STEP", "step_tag_id": 12902, "returned_token_ids": [648, 387]}'

Request `{"model", "input"}` (or `{"model", "messages"}`), response `{"data": [{"index", "object":
"pooling", "data": [[...], ...]}]}`: with STEP pooling one row per step tag in the input, each the
softmax over the family's classes. The input text is the one the in-process adapter builds (same
step-tag conventions, qwen_prm.py / math_shepherd.py); the score is the class the adapter reads:
Qwen2.5-Math-PRM's positive class (index 1 of [negative, positive]), Math-Shepherd's "+" (index 0
of the returned ids ["+", "-"]). One request per solution, sent concurrently.

The family comes from the served model's name (it contains "qwen2.5-math-prm" or "math-shepherd").
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from ..backends.openai_backend import ServerClient, ServerError, parse_server_name
from .base import VerifierBase
from .math_shepherd import STEP_TAG as SHEPHERD_TAG
from .math_shepherd import shepherd_text
from .qwen_prm import QWEN_STEP_TOKEN, qwen_prm_messages

FAMILIES = {"qwen2.5-math-prm": 1, "math-shepherd": 0}  # family -> index of the "step is right" class


def served_family(model: str) -> str:
    low = model.lower()
    for fam in FAMILIES:
        if fam in low:
            return fam
    raise ServerError(f"Served PRM {model!r}: only Qwen2.5-Math-PRM and Math-Shepherd PRMs are read through /pooling "
                      f"(their step-tag conventions are known); the model name must contain one of: "
                      f"{', '.join(FAMILIES)}.")


class ServedPRM(VerifierBase):
    def __init__(self, model: str, url: str, concurrency: int = 8, timeout: float = 120.0, retries: int = 2) -> None:
        super().__init__()
        self.model, self.url = model, url
        self.family = served_family(model)
        self.name = f"openai:{model}@{url}"
        self.client = ServerClient(url, timeout=timeout, retries=retries)
        self.concurrency = concurrency

    @classmethod
    def from_name(cls, name: str, **kw) -> "ServedPRM":
        model, url = parse_server_name(name)
        return cls(model, url, **kw)

    def body(self, question: str, steps: Sequence[str]) -> dict:
        qwen = self.family == "qwen2.5-math-prm"
        tag = QWEN_STEP_TOKEN if qwen else SHEPHERD_TAG
        for text in (question, *steps):
            if tag in text:
                raise ValueError(f"{self.family}: the text contains the step tag {tag!r}, which would read as an extra step end.")
        if qwen:  # the server applies the model's chat template, as the card's apply_chat_template
            return {"model": self.model, "messages": qwen_prm_messages(question, steps)}
        return {"model": self.model, "input": shepherd_text(question, steps)[0]}

    def _one(self, question: str, steps: Sequence[str]) -> list[float]:
        if not steps:
            return []
        try:
            data = self.client.request("POST", "/pooling", self.body(question, steps), what="/pooling")
        except ServerError as e:
            if "no /pooling endpoint" in str(e):
                raise ServerError(f"{e} A PRM is read through vLLM's pooling API: serve it with "
                                  f"`vllm serve MODEL --runner pooling` (llama-server and SGLang have no /pooling).") from None
            raise
        try:
            rows = data["data"][0]["data"]
            if rows and not isinstance(rows[0], list):  # a single step may come back as one flat row
                rows = [rows]
            scores = [float(r[FAMILIES[self.family]] if len(r) > 1 else r[0]) for r in rows]
        except (KeyError, IndexError, TypeError, ValueError):
            raise ServerError(f"The model server at {self.url} answered /pooling with an unexpected shape: "
                              f"{json.dumps(data)[:200]}") from None
        if len(scores) != len(steps):
            raise ServerError(f"The model server at {self.url} returned {len(scores)} pooled rows for {len(steps)} steps: "
                              f"serve the PRM with STEP pooling (vllm serve ... --runner pooling; Math-Shepherd also "
                              f"--pooler-config with its step_tag_id).")
        usage = data.get("usage") or {}
        self.compute.add(prompt_tokens=int(usage.get("prompt_tokens") or 0))
        return scores

    def score(self, question: str, solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(solutions) or 1))) as pool:
            out = list(pool.map(lambda s: self._one(question, s), solutions))
        self.compute.seconds += time.perf_counter() - t0
        return out
