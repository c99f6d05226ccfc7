"""Monte Carlo tree search over solution steps (as in llm-reasoners' and OpenR's step-level MCTS).

Each iteration walks from the question down the tree by UCT, Q(child) + C x sqrt(ln N(parent) /
N(child)) with an unvisited child first, to a node not expanded yet; expands it with M sampled next
steps; evaluates each new step; and backpropagates: every node on the way gets one more visit per new
child and the child's value added, so Q = mean value of what was found below it.

Evaluation (`mcts_evaluation`):
- "rollout" (the default): each new step is completed by one sampled rollout to a finished solution,
  and its value is the verifier's score of that solution. The rollout's steps stay in the tree (marked
  in extra), so every simulation is a candidate answer and a later walk can branch off a rollout. The
  root fans out to M, and one walk an iteration: a simulation costs up to a whole generation.
- "prm": a new step's value is the verifier's path score, no rollout (cheap, but on short budgets few
  paths reach an answer). The root fans out to N, and an iteration walks N/M times, each walk seeing
  the earlier ones as a virtual loss (a visit worth 0: tree-parallel MCTS, Chaslot et al. 2008), so
  the N/M leaves it found are expanded in one batched call and scored in one verifier call, as a beam
  round is. It learns the budget only when a path finishes, so a search that explores wide before its
  first answer can overspend (on scripted trees at N=16, 2x; rollouts stay within one expansion).

Budget, in the unit the other strategies use (full generations): generated tokens (expansions and
rollouts) up to N x the mean length of a finished solution; until one has finished, N x max_rounds
steps (what N unfinished beams would cost). Shared prefixes are paid once, so the tree holds more
finished paths than N when they share steps. The answer is a weighted vote over the finished
solutions. Every node keeps its visits and value in extra; a node picked by UCT records the formula's
numbers in its reason.
"""

from __future__ import annotations

import math

from ..trace import FINISHED, KEPT, PRUNED, Node
from .base import SearchConfig, SearchContext, close_unfinished

EVALUATIONS = {"rollout": "a sampled rollout to a finished solution, scored by the verifier",
               "prm": "the verifier's score of the new step's path, no rollout"}


def uct(q: float, visits: int, parent_visits: int, c: float = SearchConfig.exploration) -> float:
    if visits == 0:
        return math.inf
    return q + c * math.sqrt(math.log(max(1, parent_visits)) / visits)


class MCTS:
    name = "mcts"
    needs_verifier = True

    def run(self, ctx: SearchContext) -> None:
        cfg = ctx.config
        trace = ctx.trace
        rollout = cfg.mcts_evaluation == "rollout"
        stats: dict[int, list[float]] = {0: [0, 0.0]}  # node id -> [visits, value sum]
        step_cap = cfg.n * cfg.max_rounds
        # prm: N/M walks an iteration, so one call writes N steps as a beam round does (a CPU writes 16 rows
        # barely slower than 4); rollout: one walk, as its M simulations already cost up to M generations
        per_iteration = 1 if rollout else max(1, cfg.n // max(1, cfg.width))
        steps_made = tokens_made = 0
        finished: list[Node] = []
        iteration = 0
        stop = "every path is a finished solution"
        while True:
            ctx.check_cancel()
            budget = self._token_budget(trace, finished, cfg.n)
            if budget is not None and tokens_made >= budget:
                stop = f"spent {tokens_made:,} of {budget:,.0f} tokens (N x the mean finished solution)"
                break
            if budget is None and steps_made >= step_cap:
                stop = f"no solution finished within N x max rounds = {step_cap} steps"
                break
            if self._dead(trace, trace.root):
                break  # nothing left to expand
            # 1. selection, up to per_iteration leaves
            picks = self._select(trace, stats, cfg.exploration, per_iteration, iteration)
            # 2. expansion: M next steps under each pick (prm: N at the root, as beam search fans out), one call
            at_root = picks[0][0].id == 0
            per = cfg.n if at_root and not rollout else min(cfg.width, cfg.n)
            per, picks = self._fit(trace, picks, per, budget, tokens_made, steps_made, step_cap, cfg.n, rollout)
            kids = ctx.expand([leaf.id for leaf, _ in picks], per, iteration)
            for leaf, _ in picks:
                leaf.extra["expanded"] = True
            # 3. evaluation: a rollout per unfinished new step, or its path score; every path in one call
            ends = self._rollouts(ctx, kids, iteration) if rollout else {k.id: k for k in kids}
            made = trace.nodes[kids[0].id:]  # the new steps and their rollouts, in the order added
            steps_made += len(made)
            tokens_made += sum(n.tokens for n in made)
            if rollout:
                ctx.score(list(ends.values()), whole_path=True)
            else:
                ctx.score(kids)
            for n in made:
                if n.status == FINISHED:
                    finished.append(n)
            for k in kids:
                end = ends[k.id]
                value = float(end.agg_score if end.agg_score is not None else 0.0)
                for n in trace.path(end.id)[k.depth - 1:]:  # the new step and its rollout: one simulation each
                    stats[n.id] = [1, value]
                    n.extra.update(visits=1, value=round(value, 4))
                    if n.id != k.id:
                        n.extra["rollout"] = True
                        if n.status != FINISHED:
                            n.reason = (f"rollout step: sampled to complete step {k.id} into a solution, whose "
                                        f"score {value:.3f} is that step's value")
            # 4. backpropagation: each new child is one visit and its value for every ancestor
            path_of = {leaf.id: path for leaf, path in picks}
            for k in kids:
                for a in path_of[k.parent]:
                    stats[a][0] += 1
                    stats[a][1] += stats[k.id][1]
            for a in {a for path in path_of.values() for a in path}:
                trace.nodes[a].extra.update(visits=int(stats[a][0]), value=round(self.q(stats, a), 4))
            iteration += 1
            ctx.report()
        for n in trace.nodes[1:]:  # never expanded nor finished: a branch the search left alone
            if n.status == KEPT and not trace.children(n.id):
                n.status = PRUNED
                n.reason = (f"not expanded: visits {n.extra.get('visits', 0)}, value {n.extra.get('value', 0):.3f}"
                            f" (the budget went to higher UCT branches)")
        trace.root.extra["mcts"] = {"evaluation": cfg.mcts_evaluation, "iterations": iteration, "steps": steps_made,
                                    "tokens": tokens_made, "token_budget": None if budget is None else round(budget),
                                    "step_cap": step_cap, "finished": len(finished), "c": cfg.exploration,
                                    "selections_per_iteration": per_iteration, "stopped": stop}
        ctx.select(finished, "weighted")

    @staticmethod
    def _token_budget(trace, finished: list[Node], n: int) -> float | None:
        """N full generations in tokens: N x the mean tokens of a finished path (None until one finished)."""
        if not finished:
            return None
        return n * sum(sum(a.tokens for a in trace.path(f.id)) for f in finished) / len(finished)

    @staticmethod
    def _fit(trace, picks, per: int, budget, tokens_made: int, steps_made: int, step_cap: int, n: int,
             rollout: bool):
        """Fewer new steps where the budget left would not pay for them all. One new step's cost is
        estimated as a mean step (prm) or, with rollouts, the rest of a mean solution below the leaf."""
        if budget is None:  # nothing finished yet: the step cap
            if rollout:
                return per, picks
            per = max(1, min(per, step_cap - steps_made))
            return per, picks[: max(1, (step_cap - steps_made) // per)]
        left = budget - tokens_made
        mean_step = tokens_made / max(1, steps_made)
        if rollout:
            done = sum(a.tokens for a in trace.path(picks[0][0].id))
            cost = max(mean_step, budget / n - done)
            return max(1, min(per, math.ceil(left / cost))), picks
        per = max(1, min(per, math.ceil(left / mean_step)))
        return per, picks[: max(1, math.ceil(left / (per * mean_step)))]

    def _rollouts(self, ctx: SearchContext, kids: list[Node], iteration: int) -> dict[int, Node]:
        """Each unfinished new step completed by sampled steps, all open rollouts one batched call a step;
        at max_rounds steps a rollout ends unfinished ("ran out of steps"). Returns kid id -> its end."""
        ends = {k.id: k for k in kids}
        live = list(ends)
        while True:
            close_unfinished(ctx, [ends[i] for i in live if ends[i].depth >= ctx.config.max_rounds])
            live = [i for i in live if ends[i].status != FINISHED]
            if not live:
                return ends
            ctx.check_cancel()
            for i, n in zip(live, ctx.expand([ends[i].id for i in live], 1, iteration)):
                ends[i] = n

    def _select(self, trace, stats, c: float, count: int, iteration: int) -> list[tuple[Node, list[int]]]:
        """Up to `count` distinct leaves by UCT from the root, never into a finished step or a branch whose
        paths have all finished. A leaf is a node not expanded yet (a rollout's steps are not: a walk may
        branch off one). After each pick its path carries a virtual loss (one more visit, value 0) so the
        next walk weighs the others; the real statistics are untouched."""
        virtual: dict[int, int] = {}
        picks: list[tuple[Node, list[int]]] = []
        chosen: set[int] = set()
        for j in range(count):
            node, path = trace.root, [0]
            while self._expanded(node):
                open_kids = [k for k in trace.children(node.id) if not self._dead(trace, k)]
                parent_visits = int(stats[node.id][0]) + virtual.get(node.id, 0)
                scored = []
                for k in open_kids:
                    v = int(stats[k.id][0]) + virtual.get(k.id, 0)  # the virtual visits are worth 0 each
                    q = stats[k.id][1] / v if v else 0.0
                    scored.append((uct(q, v, parent_visits, c), -k.id, k, v, q))
                best_uct, _, node, v, q = max(scored, key=lambda t: (t[0], t[1]))
                if node.id not in chosen:
                    of = f" (pick {j + 1} of {count})" if count > 1 else ""
                    node.reason = (f"chosen by UCT in iteration {iteration}{of}: Q {q:.3f} + "
                                   f"{c:g}·sqrt(ln {parent_visits} / {v}) = {best_uct:.3f}, best of "
                                   f"{len(open_kids)} children")
                path.append(node.id)
            if node.id in chosen:
                break  # the walk came back to a leaf already picked: fewer picks this iteration
            chosen.add(node.id)
            picks.append((node, path))
            for a in path:
                virtual[a] = virtual.get(a, 0) + 1
        return picks

    @staticmethod
    def _expanded(node: Node) -> bool:
        return bool(node.extra.get("expanded"))

    @staticmethod
    def q(stats, nid: int) -> float:
        v, s = stats.get(nid, [0, 0.0])
        return s / v if v else 0.0

    @staticmethod
    def _dead(trace, node: Node) -> bool:
        """A finished step, or an expanded node whose children are all dead: nothing left to expand below."""
        if node.status == FINISHED:
            return True
        if not MCTS._expanded(node):
            return False
        return all(MCTS._dead(trace, k) for k in trace.children(node.id))
