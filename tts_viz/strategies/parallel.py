"""Shared body of the three parallel-sampling strategies: N whole solutions in one batched call,
every step scored in one verifier pass, then one selection rule (the only thing that differs)."""

from __future__ import annotations

from .base import SearchContext


def sample_and_score(ctx: SearchContext, count: int, round_no: int = 0, **node_kw) -> list:
    """`count` whole solutions, each a chain of step nodes, every step scored in one verifier pass."""
    sols = ctx.policy.full_solutions(ctx.question, count, ctx.config.temperature, ctx.seed(round_no), ctx.cancel)
    leaves = [ctx.add_solution(steps, tokens, reason, round_no, **node_kw) for steps, tokens, reason in sols]
    ctx.score(leaves, whole_path=True)
    return leaves


class ParallelSampling:
    name = "parallel"
    needs_verifier = True
    method = "best"  # selection rule in select.pick

    def run(self, ctx: SearchContext) -> None:
        leaves = sample_and_score(ctx, ctx.config.n)
        ctx.report()
        ctx.select(leaves, self.method)
