"""KV caches of token sequences a model has already run, found again by longest common prefix.

Why: in a tree search every prompt is its parent's prompt plus one more step. Keeping the KV
cache of each sequence the model ran (prompt + generated step) means the next round computes
only the new tokens; the question and the path so far are never prefilled again. Matching is
on token ids, so a retokenised prompt reuses exactly the part whose ids agree.

Entries are per sequence (no batch dimension) and live on the model's device. The store is
bounded by bytes and evicts the least recently used entry; an entry that is a prefix of a newer
one is dropped at once (the newer one covers it).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Sequence

import torch

# (key, value) per layer, each [kv_heads, tokens, head_dim]
LayerKV = list[tuple[torch.Tensor, torch.Tensor]]

DEFAULT_MAX_BYTES = int(float(os.environ.get("TTS_VIZ_KV_STORE_MB", "768")) * 2**20)


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    return len(os.path.commonprefix([tuple(a), tuple(b)]))


class PrefixKVStore:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[int, ...], LayerKV] = OrderedDict()
        self._bytes: dict[tuple[int, ...], int] = {}
        self.reused_tokens = 0  # tokens whose KV came from the store instead of a forward pass

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return sum(self._bytes.values())

    def clear(self) -> None:
        self._entries.clear()
        self._bytes.clear()

    def match(self, ids: Sequence[int], limit: int | None = None) -> tuple[int, LayerKV | None]:
        """The longest stored prefix of `ids` (at most `limit` tokens): (length, its KV)."""
        best, best_key = 0, None
        ids = tuple(ids)
        for key in self._entries:
            n = common_prefix_len(ids, key)
            if n > best:
                best, best_key = n, key
        if best_key is None:
            return 0, None
        self._entries.move_to_end(best_key)
        if limit is not None:
            best = min(best, limit)
        return best, self._entries[best_key]

    def put(self, ids: Sequence[int], kv: LayerKV) -> None:
        """Store the KV of `ids` (tensors [heads, len(ids), dim], owned by the store from now on)."""
        key = tuple(int(t) for t in ids)
        if not key:
            return
        for other in list(self._entries):
            if len(other) >= len(key) and other[: len(key)] == key:
                self._entries.move_to_end(other)  # already covered by a longer entry
                return
            if len(other) < len(key) and key[: len(other)] == other:
                self._drop(other)
        self._entries[key] = kv
        self._bytes[key] = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)
        while self.nbytes > self.max_bytes and len(self._entries) > 1:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: tuple[int, ...]) -> None:
        self._entries.pop(key, None)
        self._bytes.pop(key, None)
