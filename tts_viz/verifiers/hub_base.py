"""Batching machinery shared by every hub PRM adapter (qwen_prm, rlhflow, math_shepherd, skywork).

A family only says how one solution becomes token ids plus the token positions where its step
scores are read, and how a padded batch turns into scores at those positions. `HubPRMBase`
validates the text, chunks solutions into batches of at most `batch_size`, right-pads them (so
every real token keeps the position it has in an unbatched forward pass), runs one forward per
chunk under inference_mode and records the compute.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..trace import ModelCompute
from .base import VerifierBase

@dataclass
class Encoded:
    """One solution ready for the model: token ids and, per step, the index where its score is read."""

    ids: list[int]
    positions: list[int]


def count_params(model: Any) -> int:
    """Parameter count for FLOP estimates; bitsandbytes 4-bit weights report their packed size,
    so use the original shape kept in their quant_state."""
    total = 0
    for p in model.parameters():
        qs = getattr(p, "quant_state", None)
        shape = getattr(qs, "shape", None)
        total += int(shape.numel()) if shape is not None else p.numel()
    return total


def model_device(model: Any):
    dev = getattr(model, "device", None)
    if dev is not None:
        return dev
    return next(model.parameters()).device


def special_token_strings(tokenizer: Any) -> list[str]:
    """Strings that the tokenizer turns into control tokens wherever they appear in text."""
    out = []
    for t in getattr(tokenizer, "all_special_tokens", None) or []:
        if isinstance(t, str) and t:
            out.append(t)
    return out


def tokens_at_chars(offsets: Sequence[Sequence[int]], char_positions: Sequence[int]) -> list[int]:
    """For each character position, the index of the token whose character span covers it (-1: none).

    Zero-width spans (BOS/EOS added by a post-processor) are skipped; the others are in text order.
    """
    spans = [(int(s), int(e), i) for i, (s, e) in enumerate(offsets) if e > s]
    starts = [s for s, _, _ in spans]
    out = []
    for c in char_positions:
        j = bisect.bisect_right(starts, c) - 1
        out.append(spans[j][2] if j >= 0 and spans[j][0] <= c < spans[j][1] else -1)
    return out


def right_pad(rows: Sequence[Sequence[int]], pad_id: int):
    """(input_ids, attention_mask) as LongTensors, padded on the right.

    Right padding keeps every real token at the position it has when the row is run alone, so
    causal attention and position ids are identical to the unbatched pass (no reliance on the
    model deriving position ids from the mask, which plain forward() does not do).
    """
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(list(r), dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def positions_tensor(rows: Sequence[Sequence[int]]):
    """[B, K] LongTensor of read positions, K = most steps in the batch; short rows padded with
    their own first position (the extra values are computed and ignored)."""
    k = max(len(r) for r in rows)
    return torch.tensor([list(r) + [r[0]] * (k - len(r)) for r in rows], dtype=torch.long)


def causal_lm_logits_at(model: Any, ids, mask, positions, token_ids: Sequence[int]):
    """Logits of a causal LM at positions [B, K], restricted to token_ids: [B, K, len(token_ids)].

    Full logits would be [B, T, vocab] (8 x 2000 x 128k in bf16 is 4 GB), so ask the model for the
    needed positions only via `logits_to_keep` (a 2-D index tensor in transformers >= 5); models
    that do not take it return all positions and are gathered here.
    """
    try:
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False, logits_to_keep=positions).logits
    except TypeError:
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
    if logits.shape[1] == ids.shape[1] and positions.shape[1] != ids.shape[1]:
        logits = torch.take_along_dim(logits, positions[..., None].to(logits.device), dim=1)
    idx = torch.tensor(list(token_ids), dtype=torch.long, device=logits.device)
    return logits.index_select(-1, idx).float()


class HubPRMBase(VerifierBase):
    """Batched step scoring for a PRM loaded with transformers. Subclasses implement
    `encode(question, steps) -> Encoded` and `read_scores(ids, mask, positions) -> Tensor[B, K]`.

    Text that would make step positions ambiguous (the family's step tag, tokenizer control tokens)
    is rejected with ValueError rather than silently misaligned. Inputs longer than `max_length`
    are rejected too: truncating them would cut away the tags of the last steps.
    """

    name = "hub-prm"
    default_model_id = ""
    # Texts that must not occur inside the question or a step (besides special tokens).
    step_tag: str | None = None

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 8,
        max_length: int | None = None,
        model_id: str | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        if hasattr(model, "eval"):
            model.eval()
        self.tokenizer = tokenizer
        self.batch_size = max(1, int(batch_size))
        cfg = getattr(model, "config", None)
        self.max_length = max_length or getattr(cfg, "max_position_embeddings", None)
        self.model_id = model_id or self.default_model_id
        self.compute = ModelCompute(params=count_params(model))
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        self.pad_id = int(pad)  # any id works: pads sit right of the real tokens and are masked

    # ----- family-specific ------------------------------------------------------------------
    def encode(self, question: str, steps: list[str]) -> Encoded:
        raise NotImplementedError

    def read_scores(self, ids, mask, positions):
        """Scores in [0, 1] at positions [B, K] of a padded batch -> Tensor [B, K]."""
        raise NotImplementedError

    # ----- shared ---------------------------------------------------------------------------
    def forbidden_texts(self) -> list[str]:
        out = special_token_strings(self.tokenizer)
        if self.step_tag:
            out.append(self.step_tag)
        return out

    def check_texts(self, question: str, solutions: Sequence[Sequence[str]]) -> None:
        forbidden = self.forbidden_texts()
        for bad in forbidden:
            if bad in question:
                raise ValueError(
                    f"{self.name}: the question contains {bad!r}, which this PRM's tokenizer reads as a "
                    f"control/step token; the step scores could not be aligned. Remove it from the text."
                )
        for si, steps in enumerate(solutions):
            for ki, step in enumerate(steps):
                for bad in forbidden:
                    if bad in step:
                        raise ValueError(
                            f"{self.name}: step {ki + 1} of solution {si + 1} contains {bad!r}, which this "
                            f"PRM uses as a step tag or control token; scoring it would misalign the step "
                            f"scores. Remove it from the step text."
                        )

    def _encode_checked(self, question: str, steps: list[str], index: int) -> Encoded:
        enc = self.encode(question, steps)
        if len(enc.positions) != len(steps):
            raise ValueError(
                f"{self.name}: solution {index + 1} has {len(steps)} steps but {len(enc.positions)} score "
                f"positions were found in its tokens; refusing to guess which score belongs to which step."
            )
        if self.max_length and len(enc.ids) > self.max_length:
            raise ValueError(
                f"{self.name}: solution {index + 1} is {len(enc.ids)} tokens long, more than the model's "
                f"{self.max_length}; truncating would drop the tags of its last steps. Score a shorter solution."
            )
        return enc

    def score(self, question: str, solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        sols = [[str(s) for s in steps] for steps in solutions]
        out: list[list[float]] = [[] for _ in sols]
        self.check_texts(question, sols)
        todo = [i for i, s in enumerate(sols) if s]  # a solution with no steps gets no scores
        encoded = {i: self._encode_checked(question, sols[i], i) for i in todo}
        device = model_device(self.model)
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            rows = [encoded[i] for i in chunk]
            ids, mask = right_pad([r.ids for r in rows], self.pad_id)
            pos = positions_tensor([r.positions for r in rows])
            t0 = time.perf_counter()
            with torch.inference_mode():
                scores = self.read_scores(ids.to(device), mask.to(device), pos.to(device))
            scores = scores.float().cpu()
            self.compute.add(prompt_tokens=int(mask.sum()), seconds=time.perf_counter() - t0)
            for r, i in enumerate(chunk):
                out[i] = [float(x) for x in scores[r, : len(rows[r].positions)].tolist()]
        return out


