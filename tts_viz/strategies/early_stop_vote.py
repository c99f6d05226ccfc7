"""Early-stopping self-consistency: vote in small batches and stop once the leader cannot be caught.

Why: majority voting spends its whole budget even when the first few samples already agree. Here
samples come in batches of M (one batched call each); after each batch the votes are counted (answers
grouped by equivalence, as the vote does) and sampling stops as soon as the leading answer has more
votes than the runner-up could reach with every generation left in the budget: no remaining sample
can change the outcome (Aggarwal et al. 2023 and Li et al. 2024 report large savings on easy
questions). The trace records what it spent against the budget and why it stopped.
"""

from __future__ import annotations

from ..grading import group_answers
from .base import SearchContext
from .parallel import sample_and_score


def leader_cannot_be_caught(counts: list[int], remaining: int) -> bool:
    """True when the top count exceeds the runner-up's (0 if none) plus every remaining vote."""
    ordered = sorted(counts, reverse=True) + [0, 0]
    return ordered[0] > ordered[1] + remaining


class EarlyStopVote:
    name = "early-stop-vote"
    needs_verifier = False

    def run(self, ctx: SearchContext) -> None:
        cfg = ctx.config
        batch = max(1, min(cfg.width, cfg.n))
        leaves: list = []
        stop = {"budget": cfg.n, "batch": batch, "spent": 0, "stopped_early": False}
        round_no = 0
        while len(leaves) < cfg.n:
            ctx.check_cancel()
            leaves += sample_and_score(ctx, min(batch, cfg.n - len(leaves)), round_no)
            answered = [n for n in leaves if n.answer]
            groups = group_answers([n.answer for n in answered])
            counts = [len(g) for g in groups]
            remaining = cfg.n - len(leaves)
            stop.update(spent=len(leaves), rounds=round_no + 1, votes=sorted(counts, reverse=True)[:3])
            ctx.report()
            round_no += 1
            if remaining and counts and leader_cannot_be_caught(counts, remaining):
                top = max(groups, key=len)
                stop.update(stopped_early=True, leader=answered[top[0]].answer,
                            why=f"after {len(leaves)} of {cfg.n} samples the leader has {max(counts)} votes and "
                                f"the runner-up {sorted(counts + [0])[-2]}: the {remaining} samples left cannot change "
                                "the vote")
                break
        if not stop["stopped_early"]:
            stop["why"] = "the vote stayed open until the budget was spent"
        ctx.trace.root.extra["early_stop"] = stop
        ctx.select(leaves, "majority")
