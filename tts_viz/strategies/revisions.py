"""Sequential revisions (Snell et al. 2024): the model sees its earlier attempts and revises.

N = chains x L: N/L parallel chains, each L attempts long. Attempt j of a chain is generated
with the chain's previous attempts (the last `CONTEXT_ATTEMPTS`) in the prompt; all chains'
attempts of one round are one batched call. Every attempt is a root-to-leaf path; revision
links join consecutive attempts of a chain. The answer is a weighted vote over all attempts.
"""

from __future__ import annotations

from ..trace import RevisionLink
from .base import SearchContext

CONTEXT_ATTEMPTS = 4  # as in Snell et al.; bounds the prompt length


class Revisions:
    name = "revisions"
    needs_verifier = False

    def run(self, ctx: SearchContext) -> None:
        cfg = ctx.config
        length = max(1, min(cfg.revision_length, cfg.n))
        chains = max(1, cfg.n // length)
        history: dict[int, list[str]] = {c: [] for c in range(chains)}
        last_leaf: dict[int, int] = {}
        leaves = []
        for attempt in range(length):
            ctx.check_cancel()
            previous = [history[c][-CONTEXT_ATTEMPTS:] for c in range(chains)]
            sols = ctx.policy.full_solutions(
                ctx.question, chains, cfg.temperature, ctx.seed(attempt), ctx.cancel,
                previous_attempts=previous if attempt else None,
            )
            new = []
            for c, (steps, tokens, reason) in enumerate(sols):
                leaf = ctx.add_solution(steps, tokens, reason, attempt, chain=c, attempt=attempt)
                history[c].append("\n\n".join(steps))
                if c in last_leaf:
                    ctx.trace.revisions.append(RevisionLink(chain=c, src=last_leaf[c], dst=leaf.id))
                last_leaf[c] = leaf.id
                new.append(leaf)
            ctx.score(new, whole_path=True)
            leaves += new
            ctx.report()
        ctx.select(leaves, "weighted" if ctx.verifier is not None else "majority")
