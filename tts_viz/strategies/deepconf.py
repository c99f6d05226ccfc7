"""Confidence filtering (DeepConf, Fu et al. 2025): vote only with the samples the model was sure of,
and stop a sample as soon as it stops being sure.

A sample's confidence is read from its own tokens: a window's confidence is exp(mean log-probability
of its tokens), the geometric-mean token probability in (0, 1]; a sample's is its WEAKEST window
(DeepConf's "lowest group confidence": one muddled stretch marks a muddled solution). Online, as
in the paper: the first `warmup` samples are written in full and set the threshold, the confidence
that keeps the top SearchConfig.confidence_keep of them; every later sample is abandoned the moment a
window of its tokens falls below it, which is where the compute is saved. The answer is a vote over the kept
samples, each weighted by its confidence. No verifier decides (one only colours the tree).

The trace records the threshold, each sample's confidence (node extra), which samples were
filtered or abandoned and at which token, and the tokens spent against what the full budget
would have cost (root.extra["deepconf"]).
"""

from __future__ import annotations

import math
from typing import Sequence

from ..grading import group_answers, is_correct
from ..token_confidence import WINDOW, lowest_window_confidence
from ..trace import PRUNED, SELECTED, Node
from .base import SearchConfig, SearchContext

WARMUP_FRACTION = 0.25  # of the budget written in full to set the threshold (at least 2 samples)


def keep_threshold(confidences: Sequence[float], keep: float = SearchConfig.confidence_keep) -> float:
    """The confidence the top `keep` share of `confidences` reaches (ceil(keep * n) of them at or above)."""
    ranked = sorted(confidences, reverse=True)
    k = max(1, min(len(ranked), math.ceil(keep * len(ranked))))
    return ranked[k - 1]


def warmup_count(n: int) -> int:
    return n if n < 4 else max(2, math.ceil(WARMUP_FRACTION * n))


class DeepConf:
    name = "deepconf"
    needs_verifier = False

    def run(self, ctx: SearchContext) -> None:
        cfg = ctx.config
        warm = warmup_count(cfg.n)
        sols = ctx.policy.solutions_with_logprobs(ctx.question, warm, cfg.temperature, ctx.seed(0), ctx.cancel)
        leaves = [self._add(ctx, s, 0) for s in sols]
        confs = [n.extra["confidence"] for n in leaves]
        keep = cfg.confidence_keep
        threshold = keep_threshold(confs, keep)
        ctx.score(leaves, whole_path=True)
        ctx.report()
        if cfg.n > warm:
            ctx.check_cancel()

            def too_unsure(i: int, lps: Sequence[float]) -> bool:
                # only a full window can fall below: a sample's first tokens are often uncertain
                return len(lps) >= WINDOW and math.exp(sum(lps[-WINDOW:]) / WINDOW) < threshold

            more = ctx.policy.solutions_with_logprobs(ctx.question, cfg.n - warm, cfg.temperature, ctx.seed(1),
                                                      ctx.cancel, stop_row=too_unsure)
            late = [self._add(ctx, s, 1) for s in more]
            ctx.score(late, whole_path=True)
            leaves += late
            ctx.report()
        kept = []
        for n in leaves:
            c = n.extra["confidence"]
            if n.finish_reason == "abandoned":
                n.status = PRUNED
                n.reason = (f"abandoned after {n.extra['tokens_written']} tokens: a {WINDOW}-token window's "
                            f"confidence fell below the warm-up threshold {threshold:.3f}")
            elif c < threshold:
                n.status = PRUNED
                n.reason = f"filtered: confidence {c:.3f} below the warm-up threshold {threshold:.3f}; no vote"
            else:
                kept.append(n)
        self._vote(ctx, kept or [n for n in leaves if n.finish_reason != "abandoned"] or leaves)
        full_cost = sum(n.extra["tokens_written"] for n in leaves[:warm]) / max(1, warm) * cfg.n
        spent = sum(n.extra["tokens_written"] for n in leaves)
        abandoned = sum(n.finish_reason == "abandoned" for n in leaves)
        ctx.trace.root.extra["deepconf"] = {
            "budget": cfg.n, "warmup": warm, "window": WINDOW, "keep": keep,
            "threshold": round(threshold, 4), "kept": len(kept), "abandoned": abandoned,
            "filtered": sum(n.status == PRUNED for n in leaves) - abandoned,
            "tokens_spent": spent, "tokens_full_budget_estimate": round(full_cost),
            "spent_fraction": round(spent / full_cost, 3) if full_cost else None,
            "early_stop": bool(getattr(ctx.policy.backend, "can_stop_rows", True)),
            "why": (f"{warm} warm-up samples set the threshold {threshold:.3f} (the top {keep:.0%} of them "
                    f"reach it); {abandoned} of {cfg.n - warm} later samples were abandoned below it; "
                    f"{len(kept)} voted, weighted by confidence"),
        }

    @staticmethod
    def _add(ctx: SearchContext, solution, round_no: int) -> Node:
        steps, tokens, reason, logprobs = solution
        leaf = ctx.add_solution(steps, tokens, reason, round_no)
        leaf.extra["confidence"] = round(lowest_window_confidence(logprobs), 4)
        leaf.extra["tokens_written"] = int(tokens)
        return leaf

    @staticmethod
    def _vote(ctx: SearchContext, voters: Sequence[Node]) -> Node | None:
        """Confidence-weighted vote over equivalent answers; the group's most confident sample is shown."""
        answered = [n for n in voters if n.answer]
        if not answered:
            return None
        groups = [[answered[i] for i in g] for g in group_answers([n.answer for n in answered])]
        weight = lambda g: sum(n.extra["confidence"] for n in g)
        ranked = sorted(groups, key=lambda g: (-weight(g), -len(g), min(n.id for n in g)))
        chosen = max(ranked[0], key=lambda n: (n.extra["confidence"], -n.id))
        chosen.status = SELECTED
        nxt = f"; next: {ranked[1][0].answer!r} with {weight(ranked[1]):.3f}" if len(ranked) > 1 else ""
        chosen.reason = (f"selected: answer {chosen.answer!r} has the most confidence-weighted votes "
                         f"({weight(ranked[0]):.3f} from {len(ranked[0])} of {len(answered)} kept samples){nxt}")
        ctx.trace.final_answer = chosen.answer
        ctx.trace.correct = is_correct(chosen.answer, ctx.gold) if ctx.gold is not None else None
        return chosen
