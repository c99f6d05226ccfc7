"""Shared body of the three parallel-sampling strategies: N whole solutions in one batched call,
every step scored in one verifier pass, then one selection rule (the only thing that differs)."""

from __future__ import annotations

import copy

from .base import SearchContext


def sample_and_score(ctx: SearchContext, count: int, round_no: int = 0, **node_kw) -> list:
    """`count` whole solutions, each a chain of step nodes, every step scored in one verifier pass.

    While they are written, each finished sample is shown at once (unscored) in a preview of the tree,
    so a watcher does not stare at an empty tree; the trace itself gets them in sample order."""
    sols = ctx.policy.full_solutions(ctx.question, count, ctx.config.temperature, ctx.seed(round_no), ctx.cancel,
                                     on_solution=_previewer(ctx, round_no, node_kw) if ctx.on_progress else None)
    leaves = [ctx.add_solution(steps, tokens, reason, round_no, **node_kw) for steps, tokens, reason in sols]
    ctx.score(leaves, whole_path=True)
    return leaves


def _previewer(ctx: SearchContext, round_no: int, node_kw: dict):
    """on_solution for full_solutions: a copy of the trace with the samples finished so far, in order."""
    finished: dict[int, tuple] = {}

    def show(index: int, solution: tuple) -> None:
        finished[index] = solution
        preview = copy.deepcopy(ctx.trace)
        sub = SearchContext(question=ctx.question, policy=ctx.policy, verifier=None, config=ctx.config,
                            trace=preview, gold=ctx.gold)
        for i in sorted(finished):
            steps, tokens, reason = finished[i]
            sub.add_solution(steps, tokens, reason, round_no, **node_kw)
        ctx.on_progress(preview)

    return show


class ParallelSampling:
    name = "parallel"
    needs_verifier = True
    method = "best"  # selection rule in select.pick

    def run(self, ctx: SearchContext) -> None:
        leaves = sample_and_score(ctx, ctx.config.n)
        ctx.report()
        ctx.select(leaves, self.method)
