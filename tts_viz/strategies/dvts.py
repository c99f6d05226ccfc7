"""Diverse verifier tree search (DVTS, search-and-learn; Liu et al. 2025).

The budget N is split into N/M independent subtrees. Each subtree is a greedy beam: its one
active node proposes M next steps and only the best-scored survives. Subtrees never compete
with each other, which keeps the final pool diverse. All subtrees' proposals of a round go
through ONE batched generate call. The answer is a weighted vote over the subtrees' results.

Because subtrees never interact, the first k/M subtrees of a run at budget N are a run at budget k
with the same width: `part_of` names them, and the sweep reads DVTS@k off DVTS@N (nested budgets).
"""

from __future__ import annotations

from ..trace import FINISHED, Node, Trace
from .base import SearchConfig, SearchContext, close_unfinished, same_sampling


class DVTS:
    name = "dvts"
    needs_verifier = True

    def run(self, ctx: SearchContext) -> None:
        cfg = ctx.config
        subtrees, m = self.shape(cfg)
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
        ctx.select(list(results.values()) + leftover, self.selection_method(True))

    @staticmethod
    def selection_method(has_verifier: bool) -> str:
        return "weighted"

    @staticmethod
    def shape(cfg: SearchConfig) -> tuple[int, int]:
        """(subtrees, width) of a run, as run() lays it out."""
        m = max(1, cfg.width)
        return max(1, cfg.n // m), m

    @classmethod
    def part_of(cls, trace: Trace, big: SearchConfig, small: SearchConfig) -> list[Node] | None:
        """The nodes of a run at budget big.n that form a run at small.n (its first subtrees), or None.

        Only when both runs have the same width: at a smaller width the subtrees differ in kind.
        """
        (_, m_big), (subtrees, m_small) = cls.shape(big), cls.shape(small)
        if not same_sampling(big, small) or small.n >= big.n or m_small != m_big:
            return None
        return [n for n in trace.nodes[1:] if n.chain is not None and n.chain < subtrees]
