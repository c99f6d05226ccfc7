"""Early-stopping self-consistency: vote in small batches and stop once the leader cannot be caught.

Why: majority voting spends its whole budget even when the first few samples already agree. Here
samples come in batches of M (one batched call each); after each batch the votes are counted (answers
grouped by equivalence, as the vote does) and sampling stops as soon as the leading answer has more
votes than the runner-up could reach with every generation left in the budget: no remaining sample
can change the outcome, so the answer is majority@N's. With vote_confidence below 1 it also stops
when the vote is merely very likely settled: under a uniform prior the leader's share against the
runner-up's is Beta(top + 1, second + 1), and sampling stops once P(share > 1/2) reaches
vote_confidence (Adaptive-Consistency's Beta rule, Aggarwal et al. 2023, 0.95 there). That saves
compute where the exact rule cannot (a policy whose samples rarely agree) at the price of sometimes
answering what more samples would have overturned. The trace records what it spent against the budget
and why it stopped.
"""

from __future__ import annotations

import math
from typing import Sequence

from ..grading import group_answers
from .base import SearchContext
from .parallel import sample_and_score


def leader_cannot_be_caught(counts: list[int], remaining: int) -> bool:
    """True when the top count exceeds the runner-up's (0 if none) plus every remaining vote."""
    ordered = sorted(counts, reverse=True) + [0, 0]
    return ordered[0] > ordered[1] + remaining


def leader_probability(top: int, second: int) -> float:
    """P(p > 1/2) for p ~ Beta(top + 1, second + 1): how sure the votes make us that the leader's answer
    is the likelier of the two. Exact for whole counts: P(Binomial(top + second + 1, 1/2) <= top)."""
    n = top + second + 1
    return sum(math.comb(n, j) for j in range(top + 1)) / 2 ** n


def stop_reason(counts: list[int], remaining: int, vote_confidence: float = 1.0) -> str | None:
    """Why the vote may stop now (None: go on)."""
    if not remaining or not counts:
        return None
    ordered = sorted(counts, reverse=True) + [0, 0]
    if leader_cannot_be_caught(counts, remaining):
        return (f"the leader has {ordered[0]} votes and the runner-up {ordered[1]}: the {remaining} samples left "
                "cannot change the vote")
    p = leader_probability(ordered[0], ordered[1])
    if vote_confidence < 1 and p >= vote_confidence:
        return (f"the leader has {ordered[0]} votes and the runner-up {ordered[1]}: it leads with posterior "
                f"probability {p:.3f} >= {vote_confidence:g} (the {remaining} samples left could still change it)")
    return None


def samples_drawn(answers: Sequence[str | None], n: int, batch: int, vote_confidence: float = 1.0) -> int:
    """How many samples the rule draws at budget n in batches of `batch` when the answers come in this
    order: the live rule replayed on a pool of whole samples (the sweep reads it off its pool)."""
    taken = 0
    while taken < n:
        taken = min(n, taken + max(1, batch))
        counts = [len(g) for g in group_answers([a for a in answers[:taken] if a])]
        if stop_reason(counts, n - taken, vote_confidence):
            break
    return taken


class EarlyStopVote:
    name = "early-stop-vote"
    needs_verifier = False

    def run(self, ctx: SearchContext) -> None:
        cfg = ctx.config
        batch = max(1, min(cfg.width, cfg.n))
        leaves: list = []
        stop = {"budget": cfg.n, "batch": batch, "spent": 0, "stopped_early": False,
                "vote_confidence": cfg.vote_confidence}
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
            why = stop_reason(counts, remaining, cfg.vote_confidence)
            if why:
                top = max(groups, key=len)
                stop.update(stopped_early=True, leader=answered[top[0]].answer,
                            why=f"after {len(leaves)} of {cfg.n} samples {why}")
                break
        if not stop["stopped_early"]:
            stop["why"] = "the vote stayed open until the budget was spent"
        ctx.trace.root.extra["early_stop"] = stop
        ctx.select(leaves, "majority")
