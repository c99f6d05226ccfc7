"""Particle Gibbs (Puri et al. 2025; its_hub's ParticleGibbs): particle filtering repeated, each
iteration conditioned on a reference particle from the one before.

The budget N is split into ITERATIONS runs of P = N / ITERATIONS particles. The first is a plain
particle filter (particle_filter.py). Each later one runs P - 1 fresh particles beside the reference:
the previous iteration's best finished particle (highest path score), whose steps are replayed, not
rewritten. At every resampling the reference keeps its slot whatever its weight (conditional
resampling, which is what makes the iterations a Gibbs sampler), and it can win extra slots, whose
copies then branch off its path with new steps. So a later iteration either confirms the reference
or finds a line that outweighs it, and the tree shows where the new particles left the reference's
spine. The answer is a weighted vote over the last iteration's finished particles.

The Trace: root.extra["resampling"] as the particle filter's, each entry tagged with its iteration;
root.extra["gibbs"] with the iterations, particles and each iteration's reference leaf; nodes on a
reference path carry extra["reference"] = the iteration that replayed them.
"""

from __future__ import annotations

import random

from ..trace import FINISHED, SELECTED, Node
from .base import SearchContext, close_unfinished
from .particle_filter import weigh_and_resample

ITERATIONS = 2


class ParticleGibbs:
    name = "particle-gibbs"
    needs_verifier = True

    def run(self, ctx: SearchContext) -> None:
        cfg = ctx.config
        iterations = max(1, min(ITERATIONS, cfg.n // 2))
        per = max(1, cfg.n // iterations)
        rng = random.Random(ctx.seed(98))
        log: list[dict] = []
        info = {"iterations": iterations, "particles": per, "references": []}
        ctx.trace.root.extra["resampling"] = log
        ctx.trace.root.extra["gibbs"] = info
        reference: list[Node] = []
        finished: list[Node] = []
        next_round = 0  # rounds run on across iterations, so the tree's round numbers have no gap
        for it in range(iterations):
            finished, next_round = self._iteration(ctx, it, per, reference, rng, log, next_round)
            if not finished:
                break
            best = max(finished, key=lambda n: (n.agg_score if n.agg_score is not None else -1.0, -n.id))
            reference = ctx.trace.path(best.id)
            info["references"].append(best.id)
            if it + 1 < iterations:
                for n in reference:
                    n.extra.setdefault("reference", it + 1)
        ctx.select(finished, "weighted")
        sel = ctx.trace.selected()
        if sel is not None and sel.extra.get("reference") is not None:
            sel.reason += f" (the reference particle kept since iteration {sel.extra['reference']})"

    def _iteration(self, ctx: SearchContext, it: int, per: int, reference: list[Node], rng: random.Random,
                   log: list[dict], first_round: int) -> tuple[list[Node], int]:
        """One particle filter of `per` particles (the reference, if any, is one of them), its rounds
        numbered from first_round: (its finished ones, the next round's number)."""
        cfg = ctx.config
        finished: list[Node] = []
        slots: list[tuple[Node, bool]] = []  # (particle's node, is the reference's slot)
        for depth in range(cfg.max_rounds):
            ctx.check_cancel()
            round_no = first_round + depth
            fresh = [p for p, is_ref in slots if not is_ref]
            if depth == 0:
                proposals = ctx.expand([0], per - (1 if reference else 0), round_no)
            else:
                proposals = ctx.expand([p.id for p in fresh], 1, round_no) if fresh else []
            ctx.score(proposals)
            ref_node = None
            ref_open = reference and (depth == 0 or any(is_ref for _, is_ref in slots))
            if ref_open and depth < len(reference):
                ref_node = reference[depth]  # replayed: its text and score are already in the tree
            cands = proposals + ([ref_node] if ref_node is not None else [])
            done_now = [p for p in cands if p.status in (FINISHED, SELECTED) or p.finish_reason]
            finished += [p for p in done_now if p not in finished]
            open_ = [p for p in cands if p not in done_now]
            if not open_:
                ctx.report()
                slots = []
                break
            ref_idx = open_.index(ref_node) if ref_node in open_ else None
            weights, ess, resample, picks = weigh_and_resample(open_, cfg, rng, ref_idx, f"iteration {it + 1}: ")
            # the reference's own slot (its first pick) follows its path; its extra copies grow new steps
            first_ref = picks.index(ref_idx) if ref_idx in picks else None
            slots = [(open_[i], k == first_ref) for k, i in enumerate(picks)]
            log.append({"iteration": it, "round": round_no, "ess": round(ess, 4), "resampled": resample,
                        "weights": {p.id: round(w, 6) for p, w in zip(open_, weights)},
                        "slots": [open_[i].id for i in picks], "reference": None if ref_node is None else ref_node.id})
            ctx.report()
            if len(finished) >= per:
                break
        close_unfinished(ctx, list(dict.fromkeys(p for p, _ in slots)))
        last = [p for p in dict.fromkeys(p for p, _ in slots) if p.status == FINISHED and p not in finished]
        return finished + last, round_no + 1
