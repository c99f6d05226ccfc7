"""Features of every step of a solution, read from the policy's own hidden states in one forward pass.

Why: the pointwise probe (probe.py) reads one vector per step, the final layer at the step's last
token, and learns mostly "this problem is easy" (within-problem AUROC 0.59). A PRM for selection
may need more of what the policy computed while writing the step: a middle layer as well as the
last, and the mean over the step's tokens as well as its end. One pass over the whole solution gives
all steps at once: step k ends where the policy's prompt for step k+1 would end (after its blank line).

Feature layout per step, for each layer in `layers` (an int = that decoder layer's output, "final" =
the normed last hidden state the LM head reads): [state at the step's last token, mean over the
step's tokens], concatenated in that order; then CONFIDENCE_FEATURES numbers read from the LM head
in the same pass (DeepConf's signal, which varies between samples of one problem where the states
mostly say how hard the problem is): the step's mean and lowest token log-probability, and, over the
solution up to this step, the mean token log-probability and the lowest mean of any
token_confidence.WINDOW tokens.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Sequence

import torch

from ..policy import STEP_DELIMITER
from ..token_confidence import window_means

FINAL = "final"
CONFIDENCE_FEATURES = 4


def default_layers(num_layers: int) -> tuple:
    """A third and two thirds of the way up, and the final normed state."""
    return (max(1, num_layers // 3), max(1, 2 * num_layers // 3), FINAL)


def feature_dim(hidden: int, layers: Sequence) -> int:
    return 2 * hidden * len(layers) + CONFIDENCE_FEATURES


FEATURE_SETS = ("all", "states", "confidence")  # each may add "+arith": the ARITH_FEATURES columns
ARITH_FEATURES = 3


def final_state_columns(hidden: int, layers: Sequence) -> slice:
    """Where the final normed state at the step's last token sits in a feature row: what the probe
    reads (the policy's last hidden state after the step; tests/test_learned_prm.py checks they agree)."""
    k = list(layers).index(FINAL)
    return slice(2 * hidden * k, 2 * hidden * k + hidden)


def arith_columns(solutions: Sequence[Sequence[str]]) -> torch.Tensor:
    """[steps of all solutions, ARITH_FEATURES] from the exact arithmetic check (no model; what the
    states cannot see reliably): the running arith score (0 after a wrong equation, 1 when every checked
    one is right, 0.5 before any), whether this step has a wrong equation, log(1 + its equations)."""
    import math

    from .arith import running_checks

    rows = [[score, float(any(not ok for _, ok in eqs)), math.log1p(len(eqs))]
            for steps in solutions for score, eqs in running_checks(steps)]
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, ARITH_FEATURES)


def head_input(x: torch.Tensor, which: str, solutions: Sequence[Sequence[str]]) -> torch.Tensor:
    """What a head reads from the solutions' feature rows `x` (their steps in order): select_columns'
    set, then the arithmetic columns where `which` ends in "+arith"."""
    base, plus, extra = which.partition("+")
    cols = select_columns(x, base)
    if not plus:
        return cols
    if extra != "arith":
        raise ValueError(f"unknown feature set {which!r}; add only '+arith' to one of {', '.join(FEATURE_SETS)}")
    return torch.cat([cols, arith_columns(solutions)], 1)


def select_columns(x: torch.Tensor, which: str) -> torch.Tensor:
    """The columns a head reads: all, the hidden states only, or the confidence numbers only."""
    if which == "all":
        return x
    if which == "states":
        return x[:, :-CONFIDENCE_FEATURES]
    if which == "confidence":
        return x[:, -CONFIDENCE_FEATURES:]
    raise ValueError(f"unknown feature set {which!r}; choose one of {', '.join(FEATURE_SETS)}")


def confidence_features(token_logprobs: torch.Tensor, step_ends: Sequence[int]) -> torch.Tensor:
    """[steps, CONFIDENCE_FEATURES] from the solution's token log-probabilities (its step tokens, in
    order) and the index one past each step's last token in them."""
    lp = token_logprobs.float()
    rows, start = [], 0
    for end in step_ends:
        step = lp[start:end] if end > start else lp[max(0, end - 1):end]
        upto = lp[:end]
        weakest = torch.tensor(min(window_means(upto.tolist())))
        rows.append(torch.stack([step.mean(), step.min(), upto.mean(), weakest]) if len(step) else torch.zeros(4))
        start = end
    return torch.stack(rows) if rows else torch.zeros((0, CONFIDENCE_FEATURES))


def step_spans(tokenizer, text: str, prefix_len: int, steps: Sequence[str]) -> tuple[list[int], list[tuple[int, int, int]]]:
    """Token ids of `text` and, per step, (last token, first token of the step, last token of the step).

    The step's characters are [start, start + len(step) + len(delimiter)) after the prompt prefix; its
    last token is the last one ending at or before that end (the delimiter's), so its state is the one
    the policy has when it starts the next step."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    out = []
    pos = prefix_len
    for step in steps:
        start, end = pos, pos + len(step) + len(STEP_DELIMITER)
        ending = [j for j, (_, b) in enumerate(offsets) if b <= end]
        if not ending:
            raise ValueError("a step ends before the first token: the prompt and the steps do not line up")
        last = ending[-1]
        inside = [j for j, (a, b) in enumerate(offsets) if a >= start and b <= end and b > a]
        out.append((last, inside[0] if inside else last, inside[-1] if inside else last))
        pos = end
    return ids, out


@torch.inference_mode()
def step_features(backend, prompt_fn: Callable[[str, Sequence[str]], str], question: str,
                  solutions: Sequence[Sequence[str]], layers: Sequence, batch_size: int = 8,
                  compute=None, share_prompt: bool = True) -> list[torch.Tensor]:
    """[steps, feature_dim] float32 per solution (see the module docstring).

    The prompt (system + question) is the same for every solution: it runs once per batch and the
    solutions' tokens run on its KV cache (a third to a half of the tokens on this policy's pools),
    unless a solution's tokens do not start with the prompt's (then that batch runs in full)."""
    import time

    model, tok = backend.model, backend.tokenizer
    prefix_text = prompt_fn(question, ())
    prefix_len = len(prefix_text)
    prefix_ids = list(tok(prefix_text, add_special_tokens=False)["input_ids"])
    items = []
    for steps in solutions:
        steps = list(steps)
        ids, spans = step_spans(tok, prompt_fn(question, steps), prefix_len, steps) if steps else ([], [])
        items.append((ids, spans))
    out: list[torch.Tensor | None] = [None] * len(items)
    order = sorted(range(len(items)), key=lambda i: len(items[i][0]))  # similar lengths share a batch
    for start in range(0, len(order), batch_size):
        chunk = [i for i in order[start:start + batch_size] if items[i][1]]
        for i in order[start:start + batch_size]:
            if not items[i][1]:
                out[i] = torch.zeros((0, feature_dim(model.config.hidden_size, layers)))
        if not chunk:
            continue
        t0 = time.perf_counter()
        shared = len(prefix_ids) if share_prompt and prefix_ids and all(
            items[i][0][: len(prefix_ids)] == prefix_ids and items[i][1][0][1] >= len(prefix_ids) for i in chunk) else 0
        states, before, ran = _run_solutions(backend, [items[i][0] for i in chunk], shared, layers)
        head = model.get_output_embeddings()
        for r, i in enumerate(chunk):
            rows = []
            spans = items[i][1]
            # the log-probability of each step token, read from the state before it (one LM-head pass
            # over the solution's tokens only, not the prompt's); `before` is the prompt's last state
            first, end = spans[0][1], spans[-1][2] + 1
            toks = torch.tensor(items[i][0][first:end], device=states[-1].device)
            prev = states[-1][r, first - 1 - shared: end - 1 - shared] if first - 1 >= shared else torch.cat(
                [before[r: r + 1], states[-1][r, : end - 1 - shared]])
            token_lp = torch.log_softmax(head(prev).float(), -1).gather(1, toks[:, None])[:, 0].cpu()
            conf = confidence_features(token_lp, [b + 1 - first for _, _, b in spans])
            for k, (last, a, b) in enumerate(spans):
                parts = []
                for h in states[:-1]:
                    parts += [h[r, last - shared], h[r, a - shared: b + 1 - shared].mean(0)]
                rows.append(torch.cat([torch.cat(parts).float().cpu(), conf[k]]))
            out[i] = torch.stack(rows)
        if compute is not None:
            compute.add(prompt_tokens=ran, reused_tokens=shared * (len(chunk) - 1),
                        seconds=time.perf_counter() - t0)
    return out  # type: ignore[return-value]


def _run_solutions(backend, rows: Sequence[Sequence[int]], shared: int, layers: Sequence):
    """One decoder pass over the rows (right-padded) after their first `shared` tokens, which run once
    for all. Returns ([state per layer in `layers`..., final normed state], each [B, T - shared, d];
    the final normed state at the last shared token [B, d] (None when shared is 0); tokens run)."""
    decoder = backend.model.get_decoder()
    dev = backend.device
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width - shared), backend.pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, r in enumerate(rows):
        ids[k, : len(r) - shared] = torch.tensor(list(r[shared:]))
        mask[k, : len(r)] = 1
    kw: dict = {}
    before = None
    if shared:
        pre = decoder(input_ids=torch.tensor([list(rows[0][:shared])], device=dev), use_cache=True)
        cache = pre.past_key_values
        cache.batch_repeat_interleave(len(rows))
        before = pre.last_hidden_state[0, -1].expand(len(rows), -1)
        pos = torch.arange(shared, width, device=dev).expand(len(rows), -1)
        kw = dict(past_key_values=cache, position_ids=pos, use_cache=True)
    res = decoder(input_ids=ids.to(dev), attention_mask=mask.to(dev), output_hidden_states=True, **kw)
    states = [res.last_hidden_state if layer == FINAL else res.hidden_states[int(layer)] for layer in layers]
    return states + [res.last_hidden_state], before, int(mask.sum()) - shared * (len(rows) - 1)


class StepFeatureMemo:
    """Feature rows (and token log-probabilities) of step prefixes already scored, least recently used
    dropped first. Why: a tree search scores a path's steps again every round, and a step's features
    depend only on the tokens up to its end (a causal model), so only the new step needs running."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._rows: "OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor, tuple]]" = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, question: str, steps: Sequence[str]):
        key = (question, tuple(steps))
        with self._lock:
            hit = self._rows.get(key)
            if hit is not None:
                self._rows.move_to_end(key)
            return hit

    def put(self, question: str, steps: Sequence[str], row: torch.Tensor, token_lps: torch.Tensor,
            ids: Sequence[int] = ()) -> None:
        """ids: the text's tokens up to the step's last one read; a later text whose tokens differ there
        (a step's end can tokenise differently once more text follows) does not take this entry."""
        with self._lock:
            self._rows[(question, tuple(steps))] = (row, token_lps, tuple(ids))
            while len(self._rows) > self.max_entries:
                self._rows.popitem(last=False)


def _read_upto(span: tuple[int, int, int]) -> int:
    """How many of the text's tokens a step's row reads (its end state, its tokens' states and log-probs)."""
    last, _, b = span
    return max(last, b) + 1


def can_reuse_states(backend) -> bool:
    return hasattr(backend, "states_from") and bool(getattr(backend, "can_reuse", False))


@torch.inference_mode()
def step_features_reusing(backend, prompt_fn: Callable[[str, Sequence[str]], str], question: str,
                          solutions: Sequence[Sequence[str]], layers: Sequence, memo: StepFeatureMemo,
                          batch_size: int = 8, compute=None) -> list[torch.Tensor]:
    """step_features' rows, computing only what neither `memo` nor the backend's prefix store holds.

    Per solution: the leading steps found in `memo` are taken from it; the rest run in one batched
    pass whose first tokens (the question, the path so far) come from the prefix store, where the
    policy's generate call left them. Step j's token log-probabilities cover the tokens after step
    j-1's last inside token up to its own (as in step_features), so the pass starts at step j-1's
    last inside token (the question's last token for the first step)."""
    import time

    model, tok = backend.model, backend.tokenizer
    dim = feature_dim(model.config.hidden_size, layers)
    prefix_len = len(prompt_fn(question, ()))
    out: list[torch.Tensor | None] = [None] * len(solutions)
    todo = []  # (solution index, steps, how many from the memo, ids, spans, the memo entries)
    for i, steps in enumerate(solutions):
        steps = list(steps)
        if not steps:
            out[i] = torch.zeros((0, dim))
            continue
        ids, spans = step_spans(tok, prompt_fn(question, steps), prefix_len, steps)
        known, old = 0, []
        while known < len(steps):
            hit = memo.get(question, steps[: known + 1])
            if hit is None or hit[2] != tuple(ids[: len(hit[2])]) or len(hit[2]) != _read_upto(spans[known]):
                break
            old.append(hit)
            known += 1
        if known == len(steps):
            out[i] = torch.stack([row for row, _, _ in old])
            continue
        todo.append((i, steps, known, ids, spans, old))
    todo.sort(key=lambda t: len(t[3]) - t[4][t[2]][1])  # similar amounts of new tokens share a pass
    head = model.get_output_embeddings()
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        t0 = time.perf_counter()
        # first token whose state is needed: the one before the new tokens' log-probabilities
        # (a step with no token of its own reads an earlier position: start there then)
        run_from = [min([spans[known - 1][2] if known else spans[0][1] - 1]
                        + [min(last, a) for last, a, _ in spans[known:]]) for _, _, known, _, spans, _ in chunk]
        run = backend.states_from([ids for _, _, _, ids, _, _ in chunk], run_from)
        hs, final = run.out.hidden_states, run.out.last_hidden_state
        states = [final if layer == FINAL else hs[int(layer)] for layer in layers]
        for r, (i, steps, known, ids, spans, old) in enumerate(chunk):
            col = lambda t: run.column(r, t)  # noqa: E731
            first = spans[known - 1][2] + 1 if known else spans[0][1]
            end = spans[-1][2] + 1
            toks = torch.tensor(ids[first:end], device=final.device)
            prev = final[r, col(first - 1): col(end - 1)]
            new_lp = torch.log_softmax(head(prev).float(), -1).gather(1, toks[:, None])[:, 0].cpu()
            # the memo's segments (their tokens checked equal to this text's) come first, the new after
            token_lp = torch.cat([lp for _, lp, _ in old] + [new_lp]) if old else new_lp
            ends, done = [], 0
            for _, lp, _ in old:
                done += len(lp)
                ends.append(done)
            ends += [done + b + 1 - first for _, _, b in spans[known:]]
            conf = confidence_features(token_lp, ends)
            rows = [row for row, _, _ in old]
            for k in range(known, len(steps)):
                last, a, b = spans[k]
                parts = []
                for h in states:
                    parts += [h[r, col(last)], h[r, col(a): col(b) + 1].mean(0)]
                row = torch.cat([torch.cat(parts).float().cpu(), conf[k]])
                memo.put(question, steps[: k + 1], row, token_lp[ends[k - 1] if k else 0: ends[k]].clone(),
                         ids[: _read_upto(spans[k])])
                rows.append(row)
            out[i] = torch.stack(rows)
        if compute is not None:
            compute.add(prompt_tokens=run.computed, reused_tokens=run.reused, seconds=time.perf_counter() - t0)
    return out  # type: ignore[return-value]
