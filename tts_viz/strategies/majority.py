"""Majority vote: sample N solutions, return the most frequent (equivalent) answer.

The verifier, if any, only colours the tree here; it does not decide.
"""

from __future__ import annotations

from .base import SearchContext
from .parallel import sample_and_score


class MajorityVote:
    name = "majority"
    needs_verifier = False

    def run(self, ctx: SearchContext) -> None:
        leaves = sample_and_score(ctx, ctx.config.n)
        ctx.report()
        ctx.select(leaves, "majority")
