"""Batched generation and next-token scoring over a transformers causal LM (CPU or GPU)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..trace import ModelCompute
from .prefix_cache import PrefixKVStore

# A prefix shared by a batch's rows is run once on its own when it is at least this long.
MIN_SHARED_PREFIX = 16


@dataclass
class Generation:
    text: str  # decoded continuation, cut before the stop string
    tokens: int  # tokens generated for it (including the stop / EOS token)
    finish_reason: str  # "stop", "eos", "length", "cancelled", "abandoned" (stop_row said so)
    # log-probability of each generated token under the model (temperature 1), when asked for:
    # DeepConf-style confidence filtering reads it
    logprobs: list[float] | None = None


@dataclass
class StoreRun:
    """One forward pass over right-aligned rows whose first tokens came from the prefix store."""
    cache: Any
    out: Any  # the decoder's output (hidden_states when asked for)
    mask: torch.Tensor
    pads: list[int]  # left padding of each row
    past: int  # columns taken from the store (the pass covers the columns after them)
    computed: int  # tokens run
    reused: int  # tokens whose KV came from the store

    def column(self, row: int, token: int) -> int:
        """Where token index `token` of row `row` sits in the pass's outputs (>= 0 once computed)."""
        return self.pads[row] + token - self.past


class Cancelled(Exception):
    """Raised when a run's cancel event is set; the caller keeps what it has."""


def sample_tokens(logits: torch.Tensor, temperature: float, top_p: float = 1.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row: argmax at temperature 0, else exact multinomial sampling by inverse CDF.

    torch.multinomial spends ~32 ms per step on 8 x 152k probabilities on 2 cores (it draws an
    exponential per entry); a cumsum and a binary search take under 1 ms.
    """
    if not temperature or temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p > top_p  # keep the smallest set with mass >= top_p
        probs = probs.scatter(-1, order, sorted_p.masked_fill(drop, 0.0))
    cdf = probs.cumsum(dim=-1)
    u = torch.rand((probs.shape[0], 1), device=probs.device, generator=generator) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).clamp(max=probs.shape[-1] - 1).squeeze(-1)


class TransformersBackend:
    def __init__(self, model: Any, tokenizer: Any, name: str = "", params: int | None = None,
                 precision: str | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.params = params if params is not None else sum(p.numel() for p in model.parameters())
        self.device = next(model.parameters()).device
        if precision is None:  # a loaded model's meta already says (models.load_*); else look at its layers
            from ..models import precision_label

            precision = precision_label(model)
        self.precision = precision  # recorded in the Trace and shown in the run summary
        if self.device.type == "cpu" and os.environ.get("TTS_VIZ_ATTENTION", "").lower() != "sdpa":
            from .grouped_attention import use_grouped_decode

            use_grouped_decode(model)  # decoding 1.4-2.2x faster on 2 cores (grouped_attention.py)
        self.max_batch = 32  # rows per generate call; more gains little on 2 cores and costs memory
        # KV caches of sequences already run, reused by longest common token prefix (prefix_cache.py);
        # None turns reuse off (every prompt is prefilled in full: the bench's baseline).
        self.prefix_store: PrefixKVStore | None = PrefixKVStore()
        types = getattr(model.config, "layer_types", None) or ["full_attention"]
        self._full_attention = all(t == "full_attention" for t in types)  # sliding windows can't be sliced
        eos = model.generation_config.eos_token_id if model.generation_config is not None else None
        eos_ids = eos if isinstance(eos, list) else [eos] if eos is not None else []
        if tokenizer.eos_token_id is not None:
            eos_ids.append(tokenizer.eos_token_id)
        self.eos_ids = sorted({int(e) for e in eos_ids})
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]

    @classmethod
    def from_loaded(cls, lm) -> "TransformersBackend":
        return cls(lm.model, lm.tokenizer, name=lm.name, params=lm.params, precision=lm.meta.get("precision"))

    # ----------------------------------------------------------------------------------------
    def chat_prompt(self, messages: list[dict[str, str]], continuation: str = "") -> str:
        """The chat-templated prompt, ending inside the assistant turn with `continuation`."""
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return text + continuation

    def encode(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        # Prompts come from the chat template, which already holds the special tokens.
        enc = self.tokenizer(
            list(prompts), return_tensors="pt", padding=True, add_special_tokens=False, padding_side="left"
        )
        return {k: v.to(self.device) for k, v in enc.items()}

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[str],
        max_new_tokens: int,
        temperature: float = 0.8,
        top_p: float = 1.0,
        stop: Sequence[str] = (),
        seed: int = 0,
        cancel: threading.Event | None = None,
        compute: ModelCompute | None = None,
        min_new_tokens: int = 0,
        on_done=None,
        logprobs: bool = False,
        stop_row=None,
    ) -> list[Generation]:
        """One continuation per prompt; rows are batched (left padding), each stops on its own.

        Sampling is seeded per call, so the same prompts, seed and batch give the same text.
        on_done(index, Generation) is called as each row finishes (the app streams whole samples).
        logprobs: each Generation carries its tokens' log-probabilities. stop_row(index, logprobs so
        far) -> bool is asked after every token (logprobs implied); True ends that row at once with
        finish_reason "abandoned" (DeepConf stops a sample whose confidence falls too low).
        """
        out: list[Generation] = []
        for start in range(0, len(prompts), self.max_batch):
            chunk = prompts[start : start + self.max_batch]
            done = None if on_done is None else (lambda i, g, start=start: on_done(start + i, g))
            ask = None if stop_row is None else (lambda i, lp, start=start: stop_row(start + i, lp))
            out.extend(self._generate_chunk(chunk, max_new_tokens, temperature, top_p, stop, seed + start, cancel,
                                            compute, min_new_tokens, done, logprobs or stop_row is not None, ask))
        return out

    def _generate_chunk(self, prompts, max_new_tokens, temperature, top_p, stop, seed, cancel, compute, min_new_tokens=0,
                        on_done=None, logprobs=False, stop_row=None):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        t0 = time.perf_counter()
        rows = self._ids(prompts)
        cache, hidden, mask, computed, reused = self._run_prompts(prompts, rows, keep_cache=True)
        logits = self.model.get_output_embeddings()(hidden)
        prefill_seconds = time.perf_counter() - t0
        # the call's own sampling stream (a merged decode draws each call's numbers from its own)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        lps: list[list[float]] | None = [[] for _ in rows] if logprobs else None
        abandoned: set[int] = set()
        cut = lambda r, toks: self._cut(toks, stop, None if lps is None else lps[r], r in abandoned)
        new, merged_seconds = self._decode(rows, cache, logits, mask, max_new_tokens, temperature, top_p, stop, cancel, min_new_tokens,
                           None if on_done is None else (lambda r, toks: on_done(r, cut(r, toks))),
                           lps, stop_row, abandoned, generator=generator)
        gens = [cut(r, row) for r, row in enumerate(new)]
        if compute is not None:
            compute.add(
                prompt_tokens=computed,
                generated_tokens=sum(g.tokens for g in gens),
                # merged with other threads' rows: its prefill plus its share of the batch's decode time
                seconds=time.perf_counter() - t0 if merged_seconds is None else prefill_seconds + merged_seconds,
                reused_tokens=reused,
            )
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        return gens

    def _run_prompts(self, prompts: Sequence[str], rows: Sequence[tuple[int, ...]], keep_cache: bool):
        """Run every prompt through the decoder: (cache, last-token hidden state [B, d], mask, tokens
        computed, tokens reused). With the prefix store, each distinct prompt runs only what the store
        lacks, all in one forward pass, and rows that share a prompt get a copy of its cache; without
        it (or for an empty prompt), one plain left-padded pass over every row in full."""
        if self.can_reuse and all(rows):
            cache, hidden, mask, computed, reused, index = self._prefill_distinct(rows)
            if keep_cache:
                cache.reorder_cache(index)
            return cache, hidden[index], mask[index], computed, reused
        enc = self.encode(prompts)
        mask = enc["attention_mask"]
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model.get_decoder()(**enc, position_ids=pos, use_cache=keep_cache)
        return out.past_key_values, out.last_hidden_state[:, -1, :], mask, int(mask.sum()), 0

    def _decode(self, rows, cache, logits, mask, max_new_tokens, temperature, top_p, stop, cancel,
                min_new_tokens: int = 0, on_done=None, lps: list[list[float]] | None = None, stop_row=None,
                abandoned: set[int] | None = None, generator: torch.Generator | None = None,
                ) -> tuple[list[list[int]], float | None]:
        """Sample continuations token by token (merged_decode.decode_together): alone, or, when this
        thread is a member of the model's DecodeMerger (a sweep running problems at once), in one
        batch with the rows other members are waiting on. Returns each row's token ids, and when
        merged, this call's share of the batches' decode seconds (its wall time also holds others'
        turns); None alone."""
        from .merged_decode import DecodeRequest, current_merger, decode_together

        request = DecodeRequest(backend=self, rows=rows, cache=cache, logits=logits, mask=mask,
                                max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, stop=stop,
                                cancel=cancel, min_new_tokens=min_new_tokens, on_done=on_done, lps=lps,
                                stop_row=stop_row, abandoned=abandoned if abandoned is not None else set(),
                                generator=generator)
        merger = current_merger()
        if merger is not None:
            merger.decode(request)
            return request.out, request.seconds
        decode_together([request])
        return request.out, None

    def _choose_tokens(self, logits, active, step, temperature, top_p, generator=None) -> torch.Tensor:
        """The next token of each active row (the bench's replay overrides this)."""
        return sample_tokens(logits, temperature, top_p, generator=generator)

    # ----- prefix reuse -----------------------------------------------------------------------
    @property
    def can_reuse(self) -> bool:
        return self.prefix_store is not None and self._full_attention

    def _ids(self, prompts: Sequence[str]) -> list[tuple[int, ...]]:
        enc = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        return [tuple(r) for r in enc]

    def _seed_common_prefix(self, targets: Sequence[Sequence[int]]) -> int:
        """Rows that share a long prefix the store lacks (the question, in the first round):
        run that prefix once, so the batched pass below starts every row from it. Returns the
        tokens it ran."""
        if len(targets) < 2:
            return 0
        shared = len(os.path.commonprefix([list(t) for t in targets]))
        shared = min(shared, min(len(t) for t in targets) - 1)
        if shared >= MIN_SHARED_PREFIX and self.prefix_store.match(targets[0][:shared])[0] < shared - MIN_SHARED_PREFIX:
            return self._prefill([list(targets[0][:shared])])[3]
        return 0

    def _prefill_distinct(self, rows: Sequence[tuple[int, ...]]):
        """_prefill of the distinct rows, plus index: row r is distinct sequence index[r]."""
        unique = list(dict.fromkeys(rows))
        where = {u: i for i, u in enumerate(unique)}
        index = torch.tensor([where[r] for r in rows], device=self.device)
        return (*self._prefill([list(u) for u in unique]), index)

    def _prefill(self, targets: list[list[int]]):
        """KV cache of the token sequences `targets`, left-padded to one width, in one forward pass.

        Each row starts from its longest prefix in the store (leaving at least its last token to
        run). Rows are right-aligned, so the forward pass covers the last S columns, S being the
        most tokens any row still needs; a row needing fewer recomputes a few cached tokens (no
        holes in the cache, so generate() sees an ordinary left-padded batch). Every row's KV goes
        back into the store. Returns (cache, last-token hidden state [U, d], mask, tokens computed, tokens reused).
        """
        seeded = self._seed_common_prefix(targets)
        run = self._run_from_store(targets, [len(t) - 1 for t in targets])
        return run.cache, run.out.last_hidden_state[:, -1, :], run.mask, seeded + run.computed, run.reused

    @torch.inference_mode()
    def states_from(self, targets: Sequence[Sequence[int]], run_from: Sequence[int]) -> "StoreRun":
        """Hidden states of every layer at each row's tokens from run_from[r] on, the tokens before
        it taken from the prefix store where it holds them (what a step-level PRM reading the policy's
        states needs in a tree search: the path so far was run already, only the new step is new).
        Row r's token t sits at column run.column(r, t) of run.out.hidden_states[layer][r]."""
        return self._run_from_store([list(t) for t in targets], list(run_from), hidden=True)

    def _run_from_store(self, targets: list[list[int]], limits: list[int], hidden: bool = False) -> "StoreRun":
        from transformers import DynamicCache

        store = self.prefix_store
        lengths = [len(t) for t in targets]
        width = max(lengths)
        matches = [store.match(t, limit=max(0, lim)) if store is not None else (0, None)
                   for t, lim in zip(targets, limits)]
        need = max(n - m for n, (m, _) in zip(lengths, matches))
        past = width - need if any(m for m, _ in matches) else 0
        pads = [width - n for n in lengths]
        mask = torch.zeros((len(targets), width), dtype=torch.long)
        block = torch.full((len(targets), width - past), self.pad_id, dtype=torch.long)
        cached = []  # tokens of row r taken from the store
        for r, (t, pad) in enumerate(zip(targets, pads)):
            mask[r, pad:] = 1
            c = max(0, past - pad)
            cached.append(c)
            block[r, width - (len(t) - c) - past :] = torch.tensor(t[c:], dtype=torch.long)
        mask, block = mask.to(self.device), block.to(self.device)
        cache = DynamicCache(config=self.model.config)
        if past:
            layers = []
            ref = next(kv for m, kv in matches if m)
            for li, (k0, v0) in enumerate(ref):
                k = k0.new_zeros((len(targets), k0.shape[0], past, k0.shape[2]))
                v = v0.new_zeros((len(targets), v0.shape[0], past, v0.shape[2]))
                for r, ((_, kv), c) in enumerate(zip(matches, cached)):
                    if c:
                        k[r, :, past - c :] = kv[li][0][:, :c]
                        v[r, :, past - c :] = kv[li][1][:, :c]
                layers.append((k, v))
            cache = DynamicCache(ddp_cache_data=layers, config=self.model.config)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)[:, past:]
        out = self.model.get_decoder()(input_ids=block, attention_mask=mask, position_ids=pos,
                                       past_key_values=cache, use_cache=True, output_hidden_states=hidden)
        cache = out.past_key_values
        if store is not None:
            for r, (t, pad) in enumerate(zip(targets, pads)):
                store.put(t, [(layer.keys[r, :, pad:].clone(), layer.values[r, :, pad:].clone()) for layer in cache.layers])
            store.reused_tokens += sum(cached)
        computed = sum(n - c for n, c in zip(lengths, cached))
        return StoreRun(cache=cache, out=out, mask=mask, pads=pads, past=past, computed=computed, reused=sum(cached))

    def _cut(self, row: list[int], stop: Sequence[str], logprobs: list[float] | None = None,
             abandoned: bool = False) -> Generation:
        """A finished row's text (cut before the stop string) and why it ended. Every token the
        model produced counts as generated, the stop or EOS token included."""
        end = len(row) - 1 if row and row[-1] in self.eos_ids else len(row)
        text = self.tokenizer.decode(row[:end], skip_special_tokens=True)
        row_lps = None if logprobs is None else list(logprobs)
        if abandoned:
            return Generation(text=text, tokens=len(row), finish_reason="abandoned", logprobs=row_lps)
        for s in stop:
            k = text.find(s)
            if k != -1:
                return Generation(text=text[:k], tokens=len(row), finish_reason="stop", logprobs=row_lps)
        return Generation(text=text, tokens=len(row), finish_reason="eos" if end < len(row) else "length",
                          logprobs=row_lps)

    @torch.inference_mode()
    def next_token_logprobs(
        self, prompts: Sequence[str], batch_size: int = 16, compute: ModelCompute | None = None
    ) -> torch.Tensor:
        """Log-probabilities of the next token after each prompt: one prefill, no decoding. [B, V].

        With the prefix store, each distinct prompt runs only what the store lacks (a judge prompt
        for a child repeats its parent's prompt up to the new step)."""
        hidden = self.last_hidden_states(prompts, batch_size, compute)
        # last_hidden_states hands out float32 (for probe heads); the LM head runs in the model's dtype (bf16 on CPUs with native bf16)
        logits = self.model.get_output_embeddings()(hidden.to(self.device, self.model.dtype)).float()
        return torch.log_softmax(logits, dim=-1).cpu()

    @torch.inference_mode()
    def last_hidden_states(
        self, prompts: Sequence[str], batch_size: int = 16, compute: ModelCompute | None = None
    ) -> torch.Tensor:
        """The decoder's final (normed) hidden state at each prompt's last token. [B, d]."""
        rows = []
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            t0 = time.perf_counter()
            _, hidden, _, computed, reused = self._run_prompts(chunk, self._ids(chunk), keep_cache=False)
            rows.append(hidden.float().cpu())
            if compute is not None:
                compute.add(prompt_tokens=computed, seconds=time.perf_counter() - t0, reused_tokens=reused)
        return torch.cat(rows, dim=0)
