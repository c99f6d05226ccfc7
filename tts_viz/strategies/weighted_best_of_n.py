"""Weighted best-of-N: sum the scores of solutions with equivalent answers, pick the largest sum."""

from __future__ import annotations

from .base import SearchContext
from .parallel import sample_and_score


class WeightedBestOfN:
    name = "weighted-best-of-n"
    needs_verifier = True

    def run(self, ctx: SearchContext) -> None:
        leaves = sample_and_score(ctx, ctx.config.n)
        ctx.report()
        ctx.select(leaves, "weighted")
