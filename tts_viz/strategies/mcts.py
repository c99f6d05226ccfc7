"""Monte Carlo tree search over solution steps (as in llm-reasoners' and OpenR's step-level MCTS).

Each iteration walks from the question down the tree by UCT, Q(child) + C x sqrt(ln N(parent) /
N(child)) with an unvisited child first, to a node that has no children yet; expands it with M
sampled next steps; evaluates each new step by the verifier's path score; and backpropagates: every
node on the way gets one more visit per new child and the children's values added, so Q = mean value
of what was found below it. A finished step is a solution and is never expanded again. An iteration
walks N/M times, each walk seeing the earlier ones as a virtual loss (a visit worth 0: tree-parallel
MCTS, Chaslot et al. 2008), so the N/M leaves it found are expanded in one batched call and scored in
one verifier call, as a beam round is; with N = M it is the one-walk MCTS.

Budget, in the unit the other strategies use (full generations): the search stops when N solutions
have finished, or when it has generated N x max_rounds steps (what N unfinished beams would have
cost). The answer is a weighted vote over the finished solutions. Every node keeps its visits and
value in extra; a node picked by UCT records the formula's numbers in its reason.
"""

from __future__ import annotations

import math

from ..trace import FINISHED, KEPT, PRUNED, Node
from .base import SearchConfig, SearchContext



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
        stats: dict[int, list[float]] = {0: [0, 0.0]}  # node id -> [visits, value sum]
        step_budget = cfg.n * cfg.max_rounds
        # selections per iteration: N/M leaves, so one call writes N steps as a beam round does (a CPU
        # writes 16 rows barely slower than 4); virtual loss spreads them over different leaves
        per_iteration = max(1, cfg.n // max(1, cfg.width))
        steps_made = 0
        finished: list[Node] = []
        iteration = 0
        while len(finished) < cfg.n and steps_made < step_budget:
            ctx.check_cancel()
            if self._dead(trace, trace.root):
                break  # every path is a finished solution: nothing left to expand
            # 1. selection, up to per_iteration leaves
            picks = self._select(trace, stats, cfg.exploration, per_iteration, iteration)
            # 2. expansion: M next steps under each pick (N at the root, as beam search fans out), one call
            per = cfg.n if picks[0][0].id == 0 else cfg.width
            per = max(1, min(per, step_budget - steps_made))
            picks = picks[: max(1, (step_budget - steps_made) // per)]
            kids = ctx.expand([leaf.id for leaf, _ in picks], per, iteration)
            steps_made += len(kids)
            # 3. evaluation by the verifier's path score, every new step in one call
            ctx.score(kids)
            for k in kids:
                value = float(k.agg_score if k.agg_score is not None else 0.0)
                stats[k.id] = [1, value]
                k.extra.update(visits=1, value=round(value, 4))
                if k.status == FINISHED:
                    finished.append(k)
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
        trace.root.extra["mcts"] = {"iterations": iteration, "steps": steps_made, "step_budget": step_budget,
                                    "finished": len(finished), "c": cfg.exploration,
                                    "selections_per_iteration": per_iteration}
        ctx.select(finished, "weighted")

    def _select(self, trace, stats, c: float, count: int, iteration: int) -> list[tuple[Node, list[int]]]:
        """Up to `count` distinct leaves by UCT from the root, never into a finished step or a branch whose
        paths have all finished. After each pick its path carries a virtual loss (one more visit, value
        0) so the next walk weighs the others; the real statistics are untouched."""
        virtual: dict[int, int] = {}
        picks: list[tuple[Node, list[int]]] = []
        chosen: set[int] = set()
        for j in range(count):
            node, path = trace.root, [0]
            while trace.children(node.id):
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
    def q(stats, nid: int) -> float:
        v, s = stats.get(nid, [0, 0.0])
        return s / v if v else 0.0

    @staticmethod
    def _dead(trace, node: Node) -> bool:
        """A finished step, or a node whose children are all dead: nothing left to expand below."""
        if node.status == FINISHED:
            return True
        kids = trace.children(node.id)
        return bool(kids) and all(MCTS._dead(trace, k) for k in kids)
