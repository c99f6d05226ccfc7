"""The token-by-token decode loop, for one generate call or for several merged into one batch.

Why merge: on 2 cores a decode step's cost grows far slower than its rows (the 0.5B makes about
24 tok/s at 4 rows, 75 at 16, 116 at 64), and a study runs many small searches (beam@4 decodes
4 rows a round). Runs of several problems at once, each in its own thread, can pool their rows:
each thread prefills its own prompts (its own backend and prefix store), then hands its rows to
the `DecodeMerger`, which decodes every waiting thread's rows in one batch.

Each request keeps its own sampling stream (a torch.Generator seeded as a solo call seeds it) and
its own limits, stop strings and callbacks; a merged request draws the same random numbers as it
would alone, so it writes the same text unless bf16 rounding at another batch size moves a token.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

MERGED_MAX_ROWS = 64  # rows in one merged batch; 64 still gains over 32 on 2 cores (116 vs 95 tok/s)


@dataclass
class DecodeRequest:
    """One generate call's rows, prefilled, waiting to be decoded."""
    backend: Any  # the TransformersBackend that prefilled them (its prefix store gets the finished rows)
    rows: Sequence[tuple[int, ...]]  # prompt token ids of each row
    cache: Any  # DynamicCache of the prompts, rows right-aligned to mask's width
    logits: torch.Tensor  # [rows, vocab] next-token logits after each prompt
    mask: torch.Tensor  # [rows, width]
    max_new_tokens: int
    temperature: float
    top_p: float = 1.0
    stop: Sequence[str] = ()
    cancel: threading.Event | None = None
    min_new_tokens: int = 0
    on_done: Callable[[int, list[int]], None] | None = None
    lps: list[list[float]] | None = None  # filled with each token's log-probability when given
    stop_row: Callable[[int, list[float]], bool] | None = None
    abandoned: set[int] = field(default_factory=set)
    generator: torch.Generator | None = None
    # filled by decode_together
    out: list[list[int]] = field(default_factory=list)
    seconds: float = 0.0  # its share of the decode time (by tokens generated)
    finished: bool = False
    error: BaseException | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def release(self) -> None:
        """Drop the prompt cache, logits and callbacks once decoded: a request that outlives its call
        (threads keep frames and lists alive longer than a solo call does) must not hold its KV."""
        self.cache = self.logits = self.mask = None
        self.on_done = self.stop_row = None


def _left_pad(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    extra = width - t.shape[dim]
    if extra <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = extra
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def _merge(requests: Sequence[DecodeRequest]):
    """One cache, mask and logits for every request's rows: narrower requests padded on the left
    (masked out), so every row stays right-aligned to the merged width."""
    if len(requests) == 1:
        r = requests[0]
        return r.cache, r.mask, r.logits
    from transformers import DynamicCache

    width = max(r.mask.shape[1] for r in requests)
    mask = torch.cat([_left_pad(r.mask, width, 1) for r in requests])
    logits = torch.cat([r.logits for r in requests])
    layers = []
    for li in range(len(requests[0].cache.layers)):
        keys = torch.cat([_left_pad(r.cache.layers[li].keys, width, 2) for r in requests])
        values = torch.cat([_left_pad(r.cache.layers[li].values, width, 2) for r in requests])
        layers.append((keys, values))
    model = requests[0].backend.model
    return DynamicCache(ddp_cache_data=layers, config=model.config), mask, logits


@torch.inference_mode()  # also when a member leaving the merger decodes the others, outside any generate call
def decode_together(requests: Sequence[DecodeRequest]) -> None:
    """Sample every request's rows token by token in one batch; a row that finishes leaves at once.

    Why not model.generate(): it keeps computing finished rows until the longest one ends, and on
    2 cores a decode step's cost grows with the batch, so a round's tail would run at full cost.
    A finished row's KV (prompt + its tokens) goes to its own backend's prefix store for its children.
    All requests share one model (that of requests[0].backend).
    """
    lead = requests[0].backend
    model, tokenizer, device = lead.model, lead.tokenizer, lead.device
    t0 = time.perf_counter()
    cache, mask, logits = _merge(requests)
    width = mask.shape[1]
    owner: list[tuple[int, int]] = []  # (request, its row) of each merged row
    for qi, r in enumerate(requests):
        r.out = [[] for _ in r.rows]
        owner.extend((qi, i) for i in range(len(r.rows)))
    active = list(range(len(owner)))  # merged row of each batch position
    eos = set(lead.eos_ids)
    tails = [max((len(s) for s in r.stop), default=0) + 1 for r in requests]  # tokens enough to hold a stop string
    longest = max(r.max_new_tokens for r in requests)
    for step in range(longest):
        # batch positions of each request, in row order
        groups: dict[int, list[int]] = {}
        for j, m in enumerate(active):
            groups.setdefault(owner[m][0], []).append(j)
        tokens = torch.empty(len(active), dtype=torch.long, device=device)
        chosen: dict[int, float] = {}
        for qi, js in groups.items():
            r = requests[qi]
            sub = logits if len(groups) == 1 else logits[torch.tensor(js, device=device)]
            if step < r.min_new_tokens:  # as transformers' min_new_tokens: no EOS yet (the bench uses it)
                sub[:, lead.eos_ids] = float("-inf")
            local = [owner[active[j]][1] for j in js]
            picked = r.backend._choose_tokens(sub, local, step, r.temperature, r.top_p, generator=r.generator)
            tokens[torch.tensor(js, device=device)] = picked.to(device)
            if r.lps is not None:  # the model's own log-probability of each chosen token (temperature 1)
                lp = torch.log_softmax(sub.float(), dim=-1).gather(1, picked[:, None].to(sub.device))[:, 0].tolist()
                chosen.update(zip(js, lp))
        keep = []
        for j, (m, t) in enumerate(zip(active, tokens.tolist())):
            qi, i = owner[m]
            r = requests[qi]
            row = r.out[i]
            row.append(t)
            if r.lps is not None:
                r.lps[i].append(chosen[j])
            ended = t in eos or len(row) >= r.max_new_tokens or (
                bool(r.stop) and any(s in tokenizer.decode(row[-tails[qi]:]) for s in r.stop))
            if not ended and r.stop_row is not None and r.stop_row(i, r.lps[i]):
                ended = True
                r.abandoned.add(i)
            if not ended:
                if not r.cancelled:
                    keep.append(j)
                continue
            if r.on_done is not None:
                r.on_done(i, row)
            b = r.backend
            if b.can_reuse and len(row) > 1:
                # its KV covers the prompt and every generated token but the last (never run)
                pad = width - len(r.rows[i])
                b.prefix_store.put(r.rows[i] + tuple(row[:-1]), [
                    (layer.keys[j, :, pad:].clone(), layer.values[j, :, pad:].clone()) for layer in cache.layers])
        if not keep:
            break
        if len(keep) < len(active):
            idx = torch.tensor(keep, device=device)
            cache.batch_select_indices(idx)
            mask, tokens = mask[idx], tokens[idx]
            active = [active[j] for j in keep]
        pos = mask.sum(-1, keepdim=True)  # real tokens so far = the new token's position
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
        logits = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=pos,
                       past_key_values=cache, use_cache=True).logits[:, -1, :]
    seconds = time.perf_counter() - t0
    made = [sum(len(o) for o in r.out) for r in requests]
    for r, n in zip(requests, made):
        r.seconds = seconds * n / (sum(made) or 1)
        r.release()
        r.finished = True


class DecodeMerger:
    """Where threads running searches on one model meet to decode together.

    Cooperative turns: a member thread holds the turn whenever it runs (its prefill, its verifier,
    its grading), so the model, its tokenizer and the prefix stores never see two threads at once;
    it gives the turn up only while its rows wait in `decode`. When every member is waiting, the
    last one to arrive decodes all their rows in one batch (up to MERGED_MAX_ROWS) and wakes them.
    """

    def __init__(self, max_rows: int = MERGED_MAX_ROWS, merge: bool = True) -> None:
        # merge=False: members still take turns, but each call decodes alone, so every search writes
        # exactly what it writes on its own (the Compare tab: a side equals the same run on Search)
        self.max_rows = max_rows if merge else 1
        self._cond = threading.Condition(threading.RLock())
        self._members: set[int] = set()  # thread idents
        self._guard = threading.Lock()  # for _members: a thread joins before it has the turn
        self._waiting: list[DecodeRequest] = []
        self.batches = 0  # merged decode calls run, and the requests they held (for the bench)
        self.requests = 0

    @contextmanager
    def member(self):
        """Run the body as a member: it holds the turn except while its rows wait to be decoded.

        A thread counts as a member from before it waits for its first turn, so the members already
        running wait for its rows instead of decoding without them."""
        me = threading.get_ident()
        with self._guard:
            self._members.add(me)
        try:
            with self._cond:
                outer, _current.merger = getattr(_current, "merger", None), self
                try:
                    yield self
                finally:
                    _current.merger = outer
        finally:
            with self._cond:
                with self._guard:
                    self._members.discard(me)
                self._run_if_all_waiting()

    def joined(self) -> bool:
        with self._guard:
            return threading.get_ident() in self._members

    def decode(self, request: DecodeRequest) -> None:
        """Queue a member's rows; returns once they are decoded (by this thread or another)."""
        with self._cond:
            self._waiting.append(request)
            self._run_if_all_waiting()
            while not request.finished:
                self._cond.wait()
        if request.error is not None:
            raise request.error

    def _run_if_all_waiting(self) -> None:
        with self._guard:
            members = len(self._members)
        if not self._waiting or len(self._waiting) < members:
            return
        waiting, self._waiting = self._waiting, []
        waiting.sort(key=lambda r: id(r.backend.model))  # a batch holds one model's rows (stable: arrival order)
        batch: list[DecodeRequest] = []
        for r in waiting + [None]:  # packed in arrival order, each batch at most max_rows rows
            if batch and (r is None or sum(len(b.rows) for b in batch) + len(r.rows) > self.max_rows
                          or r.backend.model is not batch[0].backend.model):
                try:
                    decode_together(batch)
                except BaseException as e:  # every request of the batch gets the error
                    for b in batch:
                        b.release()
                        b.error, b.finished = e, True
                self.batches += 1
                self.requests += len(batch)
                batch = []
            if r is not None:
                batch.append(r)
        self._cond.notify_all()


_current = threading.local()


def current_merger() -> DecodeMerger | None:
    """The DecodeMerger this thread is a member of (None: it decodes alone)."""
    return getattr(_current, "merger", None)
