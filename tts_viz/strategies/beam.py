"""Beam search against a process verifier (Snell et al. 2024; search-and-learn).

N beams, width M: each round every surviving beam proposes M next steps (N candidates, one
batched generate call), the verifier scores them (one batched pass), the top N/M unfinished
candidates survive and the rest are pruned. Finished candidates are set aside; the answer is
a weighted best-of-N vote over the finished beams.
"""

from __future__ import annotations

from ..trace import FINISHED, Node
from .base import SearchContext, close_unfinished


class BeamSearch:
    name = "beam"
    needs_verifier = True

    def score_candidates(self, ctx: SearchContext, candidates: list[Node], round_no: int) -> None:
        ctx.score(candidates)

    def run(self, ctx: SearchContext) -> None:
        cfg = ctx.config
        survivors = max(1, cfg.n // cfg.width)
        active: list[Node] = [ctx.trace.root]
        finished: list[Node] = []
        for round_no in range(cfg.max_rounds):
            ctx.check_cancel()
            # Round 0 fans out N first steps from the question; later rounds M per survivor.
            per_parent = cfg.n if round_no == 0 else cfg.width
            candidates = ctx.expand([a.id for a in active], per_parent, round_no)
            self.score_candidates(ctx, candidates, round_no)
            finished += [c for c in candidates if c.status == FINISHED]
            open_ = [c for c in candidates if c.status != FINISHED]
            active = ctx.keep_top(open_, survivors, "among this round's unfinished candidates")
            ctx.report()
            if not active or len(finished) >= cfg.n:
                break
        close_unfinished(ctx, active)
        ctx.select(finished + [a for a in active if a.status == FINISHED], "weighted")
