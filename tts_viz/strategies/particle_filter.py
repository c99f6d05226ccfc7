"""Particle filtering over partial solutions (Puri et al. 2025; its_hub's ParticleFiltering).

N particles start as N first steps. Each round every unfinished particle proposes one next step
(one batched call), the verifier scores it, and the particles' weights are a softmax of their path
scores at temperature T (SearchConfig.particle_temperature). When the effective sample size
(1 / sum w^2) falls below SearchConfig.ess_threshold x the number of unfinished particles, they are resampled systematically: a
high-weight particle is copied into several slots (its node then grows several children next
round), a low-weight one loses its slot (pruned, with its weight in the reason). Finished particles
are frozen: they are never resampled away and take no slot. Unlike beam search the survivors are
drawn, not ranked, so a lower-scored path can survive with the probability its weight says: the
search keeps some diversity where the verifier is unsure.

The answer is a weighted vote over the finished particles. The Trace keeps, per round, the
weights, the ESS and which node each slot copied (root.extra["resampling"]); every node has its
weight and copy count in extra, and the tree sizes nodes by weight.
"""

from __future__ import annotations

import math
import random
from typing import Sequence

from ..trace import FINISHED, PRUNED, Node
from .base import SearchConfig, SearchContext, close_unfinished



def softmax_weights(scores: Sequence[float | None], temperature: float = SearchConfig.particle_temperature) -> list[float]:
    vals = [(-1.0 if s is None else float(s)) / temperature for s in scores]
    top = max(vals)
    e = [math.exp(v - top) for v in vals]
    z = sum(e)
    return [x / z for x in e]


def effective_sample_size(weights: Sequence[float]) -> float:
    return 1.0 / sum(w * w for w in weights) if weights else 0.0


def systematic_resample(weights: Sequence[float], k: int, rng: random.Random) -> list[int]:
    """k indices drawn by systematic resampling: one uniform offset, k evenly spaced pointers into
    the cumulative weights. Particle i gets floor or ceil of k * w_i slots."""
    u = rng.random() / k
    out, cum, i = [], weights[0], 0
    for j in range(k):
        p = u + j / k
        while p > cum and i < len(weights) - 1:
            i += 1
            cum += weights[i]
        out.append(i)
    return out


def conditional_resample(weights: Sequence[float], ref: int, rng: random.Random) -> list[int]:
    """len(weights) slots: the reference index keeps one whatever its weight; the rest are drawn
    systematically over all weights (the reference can win more). Particle Gibbs resamples so."""
    if len(weights) == 1:
        return [ref]
    return [ref] + systematic_resample(weights, len(weights) - 1, rng)


def weigh_and_resample(open_: Sequence[Node], cfg, rng: random.Random, reference: int | None = None,
                       prefix: str = "") -> tuple[list[float], float, bool, list[int]]:
    """One round's weights, ESS and resampling over the unfinished particles `open_`: (weights, ESS,
    resampled?, the index in open_ each slot copies). Each particle gets its weight, relative weight and
    copies in extra and a reason; one that lost every slot is pruned. `reference` (particle Gibbs) is
    an index that keeps a slot whatever its weight; `prefix` starts every reason."""
    weights = softmax_weights([p.agg_score for p in open_], cfg.particle_temperature)
    ess = effective_sample_size(weights)
    resample = ess < cfg.ess_threshold * len(open_)
    if not resample:
        picks = list(range(len(open_)))
    elif reference is not None:
        picks = conditional_resample(weights, reference, rng)
    else:
        picks = systematic_resample(weights, len(open_), rng)
    for i, (p, w) in enumerate(zip(open_, weights)):
        c = picks.count(i)
        # rel_weight 1 = an average particle: the tree sizes nodes by it
        p.extra.update(weight=round(w, 6), rel_weight=round(w * len(open_), 4), copies=c)
        tag = " (the reference: it keeps a slot)" if i == reference else ""
        if c == 0:
            p.status = PRUNED
            p.reason = (f"{prefix}not resampled: weight {w:.3f} of {len(open_)} particles "
                        f"(ESS {ess:.2f} < {cfg.ess_threshold:g} x {len(open_)})")
        else:
            p.reason = prefix + (f"resampled into {c} slot{'s' if c > 1 else ''}: weight {w:.3f}" if resample else
                                 f"kept: weight {w:.3f}, ESS {ess:.2f} high enough not to resample") + tag
    return weights, ess, resample, picks


class ParticleFilter:
    name = "particle-filter"
    needs_verifier = True

    def run(self, ctx: SearchContext) -> None:
        cfg = ctx.config
        rng = random.Random(ctx.seed(99))
        log: list[dict] = []
        ctx.trace.root.extra["resampling"] = log
        finished: list[Node] = []
        particles: list[Node] = []  # one entry per unfinished slot (a node may hold several)
        for round_no in range(cfg.max_rounds):
            ctx.check_cancel()
            # round 0: N first steps from the question; then one step per slot (a copied particle's
            # node has several slots, so it grows several children)
            if round_no == 0:
                proposals = ctx.expand([0], cfg.n, round_no)
            else:
                proposals = ctx.expand([p.id for p in particles], 1, round_no)
            ctx.score(proposals)
            finished += [p for p in proposals if p.status == FINISHED]
            open_ = [p for p in proposals if p.status != FINISHED]
            if not open_:
                particles = []
                ctx.report()
                break
            weights, ess, resample, slots = weigh_and_resample(open_, cfg, rng)
            log.append({"round": round_no, "ess": round(ess, 4), "resampled": resample,
                        "weights": {p.id: round(w, 6) for p, w in zip(open_, weights)},
                        "slots": [open_[i].id for i in slots]})
            particles = [open_[i] for i in slots]
            ctx.report()
            if len(finished) >= cfg.n:
                break
        close_unfinished(ctx, list(dict.fromkeys(particles)))
        leaves = finished + [p for p in dict.fromkeys(particles) if p.status == FINISHED]
        ctx.select(leaves, "weighted")
