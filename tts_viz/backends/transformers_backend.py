"""Batched generation and next-token scoring over a transformers causal LM (CPU or GPU)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..trace import ModelCompute


@dataclass
class Generation:
    text: str  # decoded continuation, cut before the stop string
    tokens: int  # tokens generated for it (including the stop / EOS token)
    finish_reason: str  # "stop", "eos", "length", "cancelled"


class Cancelled(Exception):
    """Raised when a run's cancel event is set; the caller keeps what it has."""


class _StopOnEvent:
    """A StoppingCriteria that ends the whole batch when the user presses Stop."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
        done = self.event.is_set()
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


class TransformersBackend:
    def __init__(self, model: Any, tokenizer: Any, name: str = "", params: int | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.params = params if params is not None else sum(p.numel() for p in model.parameters())
        self.device = next(model.parameters()).device
        self.max_batch = 32  # rows per generate call; more gains little on 2 cores and costs memory
        self.share_prompts = True  # prefill a prompt shared by several rows once (see _shared_prefill)
        eos = model.generation_config.eos_token_id if model.generation_config is not None else None
        eos_ids = eos if isinstance(eos, list) else [eos] if eos is not None else []
        if tokenizer.eos_token_id is not None:
            eos_ids.append(tokenizer.eos_token_id)
        self.eos_ids = sorted({int(e) for e in eos_ids})
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]

    @classmethod
    def from_loaded(cls, lm) -> "TransformersBackend":
        return cls(lm.model, lm.tokenizer, name=lm.name, params=lm.params)

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
    ) -> list[Generation]:
        """One continuation per prompt; rows are batched (left padding), each stops on its own.

        Sampling is seeded per call, so the same prompts, seed and batch give the same text.
        """
        out: list[Generation] = []
        for start in range(0, len(prompts), self.max_batch):
            chunk = prompts[start : start + self.max_batch]
            out.extend(self._generate_chunk(chunk, max_new_tokens, temperature, top_p, stop, seed + start, cancel, compute))
        return out

    def _generate_chunk(self, prompts, max_new_tokens, temperature, top_p, stop, seed, cancel, compute):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        t0 = time.perf_counter()
        kw: dict[str, Any] = {}
        unique = list(dict.fromkeys(prompts))
        if self.share_prompts and len(unique) < len(prompts):
            # Several rows share a prompt (N samples of one question, M children of one beam):
            # prefill each distinct prompt once and copy its KV cache to the rows that use it.
            enc, kw["past_key_values"], prompt_tokens = self._shared_prefill(prompts, unique)
        else:
            enc = self.encode(prompts)
            prompt_tokens = int(enc["attention_mask"].sum())
        torch.manual_seed(seed)
        kw.update(
            max_new_tokens=max_new_tokens,
            pad_token_id=self.pad_id,
            eos_token_id=self.eos_ids,
        )
        if temperature and temperature > 0:
            kw.update(do_sample=True, temperature=float(temperature), top_p=float(top_p), top_k=0)
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if stop:
            kw.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        if cancel is not None:
            from transformers import StoppingCriteriaList

            kw["stopping_criteria"] = StoppingCriteriaList([_StopOnEvent(cancel)])
        seqs = self.model.generate(**enc, **kw)
        new = seqs[:, enc["input_ids"].shape[1] :].tolist()
        gens = [self._cut(row, stop, max_new_tokens) for row in new]
        if compute is not None:
            compute.add(
                prompt_tokens=prompt_tokens,
                generated_tokens=sum(g.tokens for g in gens),
                seconds=time.perf_counter() - t0,
            )
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        return gens

    def _shared_prefill(self, prompts, unique):
        """Prefill the distinct prompts (all but their last token) and expand the cache to every row.

        generate() then runs only the last prompt token per row before decoding.
        """
        enc_u = self.encode(unique)
        ids, mask = enc_u["input_ids"], enc_u["attention_mask"]
        where = {p: i for i, p in enumerate(unique)}
        index = torch.tensor([where[p] for p in prompts], device=ids.device)
        cache = self._prefill_fan_out(ids[:, :-1], mask[:, :-1], index)
        return {"input_ids": ids[index], "attention_mask": mask[index]}, cache, int(mask.sum())

    def _prefill_fan_out(self, ids: torch.Tensor, mask: torch.Tensor, index: torch.Tensor):
        """KV cache of the left-padded distinct prefixes `ids`, copied to rows: row r gets prefix index[r].

        Position ids follow generate()'s rule for left padding (mask cumsum), so what runs after
        the cache lines up with what generate() itself would compute."""
        from transformers import DynamicCache

        pos = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
        cache = DynamicCache(config=self.model.config)
        self.model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache,
                   use_cache=True, logits_to_keep=1)
        cache.reorder_cache(index)
        return cache

    def _cut(self, row: list[int], stop: Sequence[str], max_new_tokens: int) -> Generation:
        """Trim the padding after a row finished; find why it finished and how many tokens it used.

        generate() pads a finished row with pad_id; the row ends at the first pad or EOS token.
        A stop string found in the text means the row stopped on the token completing it.
        """
        ends = set(self.eos_ids) | {self.pad_id}
        end = next((i for i, t in enumerate(row) if t in ends), len(row))
        text = self.tokenizer.decode(row[:end], skip_special_tokens=True)
        for s in stop:
            k = text.find(s)
            if k != -1:
                return Generation(text=text[:k], tokens=end, finish_reason="stop")
        if end < len(row):  # an EOS token, counted as generated
            return Generation(text=text, tokens=end + 1, finish_reason="eos")
        return Generation(text=text, tokens=end, finish_reason="length")

    @torch.inference_mode()
    def next_token_logprobs(
        self, prompts: Sequence[str], batch_size: int = 8, compute: ModelCompute | None = None
    ) -> torch.Tensor:
        """Log-probabilities of the next token after each prompt: one prefill, no decoding. [B, V]."""
        rows = []
        for start in range(0, len(prompts), batch_size):
            enc = self.encode(prompts[start : start + batch_size])
            t0 = time.perf_counter()
            # logits_to_keep=1: only the last position's logits are needed (saves a V x T matmul).
            logits = self.model(**enc, logits_to_keep=1).logits[:, -1, :].float()
            rows.append(torch.log_softmax(logits, dim=-1).cpu())
            if compute is not None:
                compute.add(prompt_tokens=int(enc["attention_mask"].sum()), seconds=time.perf_counter() - t0)
        return torch.cat(rows, dim=0)

    @torch.inference_mode()
    def next_token_logprobs_shared(
        self, pairs: Sequence[tuple[str, str]], batch_size: int = 16, compute: ModelCompute | None = None
    ) -> torch.Tensor:
        """Like next_token_logprobs for prompts given as (prefix, suffix), where many share a prefix.

        Each distinct prefix is prefilled once; its KV cache is copied to the rows that use it and
        only the suffixes are run (right-padded after the prefix). The split is made in token
        space (see _split_ids), so any cut point gives the same ids as the whole prompt.
        """
        rows = []
        for start in range(0, len(pairs), batch_size):
            rows.append(self._shared_logprobs(pairs[start : start + batch_size], compute))
        return torch.cat(rows, dim=0)

    def _split_ids(self, prefix: str, suffix: str) -> tuple[tuple[int, ...], list[int]]:
        """Token ids of prefix+suffix, split where the two tokenisations still agree.

        BPE can merge across the text boundary (Qwen makes ".\n\n" one token), so the split is
        made in token space: the shared part is the longest common prefix of the whole prompt's
        ids and the prefix's ids, less one token. The model sees exactly the whole prompt's ids.
        """
        full = self.tokenizer(prefix + suffix, add_special_tokens=False)["input_ids"]
        pre = self.tokenizer(prefix, add_special_tokens=False)["input_ids"]
        k = len(os.path.commonprefix([full, pre]))
        k = max(0, min(k - 1, len(full) - 1))  # keep at least one token to run after the cache
        return tuple(full[:k]), full[k:]

    def _shared_logprobs(self, pairs, compute):
        t0 = time.perf_counter()
        split = [self._split_ids(p, s) for p, s in pairs]
        prefixes = list(dict.fromkeys(pre for pre, _ in split))
        device = self.device
        p_width = max(len(p) for p in prefixes)
        p_ids = torch.full((len(prefixes), max(p_width, 1)), self.pad_id, dtype=torch.long, device=device)
        p_mask = torch.zeros_like(p_ids)
        for i, pre in enumerate(prefixes):  # left padding
            if pre:
                p_ids[i, p_width - len(pre) :] = torch.tensor(pre)
                p_mask[i, p_width - len(pre) :] = 1
        cache = None
        if p_width:
            where = {p: i for i, p in enumerate(prefixes)}
            index = torch.tensor([where[pre] for pre, _ in split], device=device)
            cache = self._prefill_fan_out(p_ids, p_mask, index)
            row_mask = p_mask[index]
        else:
            row_mask = torch.zeros((len(pairs), 0), dtype=torch.long, device=device)
        width = max(len(suf) for _, suf in split)
        s_ids = torch.full((len(pairs), width), self.pad_id, dtype=torch.long, device=device)
        s_mask = torch.zeros((len(pairs), width), dtype=torch.long, device=device)
        for i, (_, suf) in enumerate(split):  # right padding after the cached prefix
            s_ids[i, : len(suf)] = torch.tensor(suf)
            s_mask[i, : len(suf)] = 1
        s_pos = row_mask.sum(-1)[:, None] + torch.arange(width, device=device)[None, :]
        out = self.model.model(
            input_ids=s_ids, attention_mask=torch.cat([row_mask, s_mask], dim=1), position_ids=s_pos,
            past_key_values=cache, use_cache=cache is not None,
        )
        last = torch.tensor([len(suf) - 1 for _, suf in split], device=device)
        hidden = out.last_hidden_state[torch.arange(len(pairs), device=device), last]
        logits = self.model.lm_head(hidden).float()
        if compute is not None:
            compute.add(prompt_tokens=int(p_mask.sum()) + int(s_mask.sum()), seconds=time.perf_counter() - t0)
        return torch.log_softmax(logits, dim=-1).cpu()
