"""Diverse verifier tree search (DVTS, search-and-learn; Liu et al. 2025).

The budget N is split into N/M independent subtrees. Each subtree is a greedy beam: its one
active node proposes M next steps and only the best-scored survives. Subtrees never compete
with each other, which keeps the final pool diverse. All subtrees' proposals of a round go
through ONE batched generate call. The answer is a weighted vote over the subtrees' results.
"""

from __future__ import annotations

from ..trace import FINISHED, Node
from .base import SearchContext, close_unfinished


class DVTS:
    name = "dvts"
    needs_verifier = True

    def run(self, ctx: SearchContext) -> None:
        cfg = ctx.config
        m = max(1, cfg.width)
        subtrees = max(1, cfg.n // m)
        active: dict[int, Node] = {s: ctx.trace.root for s in range(subtrees)}
        results: dict[int, Node] = {}
        for round_no in range(cfg.max_rounds):
            ctx.check_cancel()
            order = sorted(active)
            candidates = ctx.expand([active[s].id for s in order], m, round_no)
            for j, c in enumerate(candidates):
                c.chain = order[j // m]  # expand() returns M children per parent, in order
            ctx.score(candidates)
            for s in order:
                mine = [c for c in candidates if c.chain == s]
                best = ctx.keep_top(mine, 1, f"in subtree {s}")[0]
                if best.status == FINISHED:
                    results[s] = best
                    del active[s]
                else:
                    active[s] = best
            ctx.report()
            if not active:
                break
        leftover = list(active.values())
        close_unfinished(ctx, leftover)
        ctx.select(list(results.values()) + leftover, "weighted")
