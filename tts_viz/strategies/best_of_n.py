"""Best-of-N: sample N solutions, return the one the verifier scores highest."""

from __future__ import annotations

from .base import SearchContext
from .parallel import sample_and_score


class BestOfN:
    name = "best-of-n"
    needs_verifier = True

    def run(self, ctx: SearchContext) -> None:
        leaves = sample_and_score(ctx, ctx.config.n)
        ctx.report()
        ctx.select(leaves, "best")
