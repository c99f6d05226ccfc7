"""Lookahead search (Snell et al. 2024): beam search whose step score comes from the future.

Each unfinished candidate is rolled out k more steps greedily (temperature 0); the verifier's
score at the end of the rollout becomes the candidate's score. The rollout is not kept as tree
nodes (it is shown in the node's details); its tokens are counted.
"""

from __future__ import annotations

from ..policy import has_final_answer
from ..trace import FINISHED, Node
from .base import SearchContext
from .beam import BeamSearch


class LookaheadSearch(BeamSearch):
    name = "lookahead"

    def score_candidates(self, ctx: SearchContext, candidates: list[Node], round_no: int) -> None:
        rollouts = {c.id: [] for c in candidates if c.status != FINISHED}
        live = list(rollouts)
        for k in range(ctx.config.lookahead):
            if not live:
                break
            ctx.check_cancel()
            partials = [ctx.trace.steps(i) + rollouts[i] for i in live]
            results = ctx.policy.next_steps(ctx.question, partials, 0.0, ctx.seed(round_no, 7777, k), ctx.cancel)
            for i, r in zip(live, results):
                rollouts[i].append(r.text)
                ctx.trace.nodes[i].extra.setdefault("lookahead_tokens", 0)
                ctx.trace.nodes[i].extra["lookahead_tokens"] += r.tokens
            live = [i for i, r in zip(live, results) if not (r.finished or has_final_answer(r.text))]
        ctx.score([c for c in candidates if c.status == FINISHED])
        if rollouts and ctx.verifier is not None:
            ids = list(rollouts)
            scores = ctx.verifier.score_last(ctx.question, [ctx.trace.steps(i) + rollouts[i] for i in ids])
            for i, s in zip(ids, scores):
                node = ctx.trace.nodes[i]
                node.extra["lookahead"] = rollouts[i]
                node.step_score = float(s)
                node.agg_score = ctx.path_score(i)
