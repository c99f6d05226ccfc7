"""Sequential revisions (Snell et al. 2024): the model sees its earlier attempts and revises.

N = chains x L: N/L parallel chains, each L attempts long. Attempt j of a chain is generated
with the chain's previous attempts (the last `CONTEXT_ATTEMPTS`) in the prompt; all chains'
attempts of one round are one batched call. Every attempt is a root-to-leaf path; revision
links join consecutive attempts of a chain. The answer is a weighted vote over all attempts.

A chain sees only its own attempts, so a run at budget N holds runs at smaller budgets: the first
k/L chains (same length L), or chain 0's first k attempts (k <= L: one chain of length k).
`part_of` names them, and the sweep reads revisions@k off revisions@N (nested budgets).
"""

from __future__ import annotations

from ..trace import Node, RevisionLink, Trace
from .base import SearchConfig, SearchContext, same_sampling

CONTEXT_ATTEMPTS = 4  # as in Snell et al.; bounds the prompt length


class Revisions:
    name = "revisions"
    needs_verifier = False

    def run(self, ctx: SearchContext) -> None:
        cfg = ctx.config
        chains, length = self.shape(cfg)
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
        ctx.select(leaves, self.selection_method(ctx.verifier is not None))

    @staticmethod
    def selection_method(has_verifier: bool) -> str:
        return "weighted" if has_verifier else "majority"

    @staticmethod
    def shape(cfg: SearchConfig) -> tuple[int, int]:
        """(chains, attempts per chain) of a run, as run() lays it out."""
        length = max(1, min(cfg.revision_length, cfg.n))
        return max(1, cfg.n // length), length

    @classmethod
    def part_of(cls, trace: Trace, big: SearchConfig, small: SearchConfig) -> list[Node] | None:
        """The nodes of a run at budget big.n that form a run at small.n, or None.

        A part is its first chains at full length, or the first attempts of chain 0 alone: both are
        exactly what a smaller run generates (a chain's attempt j saw the chain's attempts < j only).
        """
        (chains_big, len_big), (chains, length) = cls.shape(big), cls.shape(small)
        if not same_sampling(big, small) or small.n >= big.n or chains > chains_big or length > len_big:
            return None
        if length != len_big and chains != 1:  # several shorter chains: not what the big run's chains began as
            return None
        return [n for n in trace.nodes[1:] if n.chain is not None and n.chain < chains
                and n.attempt is not None and n.attempt < length]
