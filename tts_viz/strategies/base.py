"""What every strategy shares: the protocol, the search context, and tree-building helpers.

A strategy is an object with a `name` and `run(ctx)`; it grows `ctx.trace` round by round,
calls `ctx.report()` after each round (the app streams the partial tree from it) and
`ctx.check_cancel()` between rounds. It never talks to the UI.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol, Sequence

from ..backends.transformers_backend import Cancelled
from ..grading import extract_answer, is_correct
from ..trace import FINISHED, KEPT, PRUNED, SELECTED, Node, Trace
from ..verifiers.base import aggregate
from .select import pick


FINISH_WORDS = {
    "boxed": "wrote a \\boxed{} answer",
    "eos": "the model ended its answer",
    "max_steps": "ran out of steps",
    "max_tokens": "ran out of tokens",
    "abandoned": "abandoned mid-way (its confidence fell too low)",
}


@dataclass
class SearchConfig:
    n: int = 8  # budget: number of full generations
    width: int = 4  # beam width M (beam / dvts / lookahead)
    lookahead: int = 1  # k greedy steps rolled out to score a candidate
    revision_length: int = 4  # L: attempts per revision chain
    temperature: float = 0.8
    seed: int = 0
    aggregation: str = "last"  # last / min / prod
    max_rounds: int = 10  # search rounds (= steps) before unfinished beams are closed
    # the newer methods' own knobs (METHOD_KNOBS; their modules say what each does)
    # particle-filter / particle-gibbs: weights softmax(score / T); scores live in [0, 1], so 0.2 makes a
    # 0.2 gap worth e^1
    particle_temperature: float = 0.2
    ess_threshold: float = 0.5  # resample when ESS < this x the open particles
    exploration: float = 1.0  # mcts: UCT's c (values live in [0, 1])
    # mcts: how a new step is valued, "rollout" (sampled to a finished solution, then scored) or "prm" (its
    # path score); without rollouts few paths reach an answer at N=4 (6 of 10 held-out problems had none)
    mcts_evaluation: str = "rollout"
    # deepconf: share of the warm-up samples at or above the threshold, DeepConf-high's 90% (its -low keeps
    # 10%). With a warm-up of 2 (N=8) a share of 0.5 sets the threshold at the better warm-up sample and
    # abandoned 5 of 6 later samples on GSM8K test #3; 0.9 sets it at the weaker one.
    confidence_keep: float = 0.9
    # early-stop-vote: also stop once a Beta posterior gives the leader this probability of beating the
    # runner-up (Adaptive-Consistency's rule); 1.0 = only when no remaining sample can change the vote
    vote_confidence: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# SearchConfig field -> the strategies that read it (the app shows each knob only for these)
METHOD_KNOBS: dict[str, tuple[str, ...]] = {
    "particle_temperature": ("particle-filter", "particle-gibbs"),
    "ess_threshold": ("particle-filter", "particle-gibbs"),
    "exploration": ("mcts",),
    "mcts_evaluation": ("mcts",),
    "confidence_keep": ("deepconf",),
    "vote_confidence": ("early-stop-vote",),
}
# the knobs that are words, not numbers (the app, the CLI and the sweep convert the others to float)
TEXT_KNOBS = ("mcts_evaluation",)


def same_sampling(a: SearchConfig, b: SearchConfig) -> bool:
    """Runs that sample, score and stop alike (budget and seed aside): a part of one can stand for the other."""
    return (a.temperature, a.aggregation, a.max_rounds) == (b.temperature, b.aggregation, b.max_rounds)


class Strategy(Protocol):
    name: str
    needs_verifier: bool

    def run(self, ctx: "SearchContext") -> None: ...


@dataclass
class SearchContext:
    question: str
    policy: Any  # StepPolicy
    verifier: Any | None  # Verifier
    config: SearchConfig
    trace: Trace
    gold: str | None = None
    on_progress: Callable[[Trace], None] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    # ----- control --------------------------------------------------------------------------
    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    def report(self) -> None:
        self.trace.rounds += 1
        if self.on_progress is not None:
            self.on_progress(self.trace)

    def seed(self, *salt: int) -> int:
        """A distinct, reproducible seed per (round, group) so reruns give the same tree."""
        s = self.config.seed * 1_000_003
        for x in salt:
            s = s * 7919 + int(x) + 1
        return s % (2**31 - 1)

    # ----- tree building --------------------------------------------------------------------
    def expand(self, parents: Sequence[int], per_parent: int, round_no: int, temperature: float | None = None,
               **node_kw: Any) -> list[Node]:
        """`per_parent` sampled next steps under each parent, all in ONE batched generate call."""
        partials, owners = [], []
        for p in parents:
            steps = self.trace.steps(p)
            for _ in range(per_parent):
                partials.append(steps)
                owners.append(p)
        temp = self.config.temperature if temperature is None else temperature
        results = self.policy.next_steps(self.question, partials, temp, self.seed(round_no, len(self.trace.nodes)), self.cancel)
        nodes = []
        for p, r in zip(owners, results):
            kw = dict(node_kw)
            if "chain" not in kw:
                kw["chain"] = self.trace.nodes[p].chain
            n = self.trace.add_node(p, r.text, tokens=r.tokens, round=round_no, **kw)
            if r.finished:
                self.finish(n, r.finish_reason)
            nodes.append(n)
        return nodes

    def add_solution(self, steps: Sequence[str], tokens: int, finish_reason: str, round_no: int, **node_kw: Any) -> Node:
        """A whole generated solution as a chain of step nodes under the root; returns its leaf."""
        parent = 0
        per_step = _split_tokens(tokens, steps)
        for text, t in zip(steps, per_step):
            parent = self.trace.add_node(parent, text, tokens=t, round=round_no, **node_kw).id
        leaf = self.trace.nodes[parent]
        self.finish(leaf, finish_reason)
        return leaf

    def finish(self, node: Node, reason: str | None) -> None:
        node.status = FINISHED
        node.finish_reason = reason
        node.reason = "finished: " + FINISH_WORDS.get(reason or "", str(reason))
        node.answer = extract_answer(node.text) or extract_answer("\n\n".join(self.trace.steps(node.id)))
        node.correct = is_correct(node.answer, self.gold) if self.gold is not None else None

    def score(self, nodes: Sequence[Node], whole_path: bool = False) -> None:
        """Verifier scores for the given nodes (batched). Sets step_score and agg_score.

        whole_path: score every step of each node's path (for solutions generated in one go);
        otherwise only the node's own (last) step, the parents being scored already.
        """
        if not nodes or self.verifier is None:
            return
        paths = [self.trace.steps(n.id) for n in nodes]
        if whole_path:
            per_step = self.verifier.score(self.question, paths)
            for n, scores in zip(nodes, per_step):
                for anc, s in zip(self.trace.path(n.id), scores):
                    anc.step_score = float(s)
        else:
            for n, s in zip(nodes, self.verifier.score_last(self.question, paths)):
                n.step_score = float(s)
        for n in nodes:
            for anc in self.trace.path(n.id):
                if anc.agg_score is None or anc.id == n.id:
                    anc.agg_score = self.path_score(anc.id)

    def path_score(self, node_id: int) -> float | None:
        return aggregate([a.step_score for a in self.trace.path(node_id)], self.config.aggregation)

    def keep_top(self, candidates: Sequence[Node], k: int, why: str) -> list[Node]:
        """Keep the k best-scored candidates (ties: earlier first), prune the rest, say why."""
        ranked = sorted(candidates, key=lambda n: (-(n.agg_score if n.agg_score is not None else -1.0), n.id))
        kept = ranked[:k]
        cutoff = kept[-1].agg_score if kept else None
        for rank, n in enumerate(ranked, 1):
            if rank <= k:
                if n.status != FINISHED:  # a kept finished solution stays finished
                    n.status = KEPT
                n.reason = f"kept: rank {rank} of {len(ranked)} {why} (score {_fmt(n.agg_score)})"
            else:
                n.status = PRUNED
                n.reason = (
                    f"pruned: rank {rank} of {len(ranked)} {why}; score {_fmt(n.agg_score)} "
                    f"below the cut-off {_fmt(cutoff)} for the top {k}"
                )
        return kept

    def select(self, leaves: Sequence[Node], method: str) -> Node | None:
        """Pick the final answer among finished leaves and mark it selected."""
        leaves = [n for n in leaves if n.status in (FINISHED, SELECTED)]
        if not leaves:
            return None
        chosen, why = pick(leaves, method)
        chosen.status = SELECTED
        chosen.reason = why
        self.trace.final_answer = chosen.answer
        self.trace.correct = is_correct(chosen.answer, self.gold) if self.gold is not None else None
        return chosen


def close_unfinished(ctx: SearchContext, nodes: Sequence[Node]) -> None:
    """Out of rounds: treat the still-active beams as (unfinished) solutions."""
    for n in nodes:
        if n.status == KEPT:
            ctx.finish(n, "max_steps")


def _split_tokens(total: int, steps: Sequence[str]) -> list[int]:
    """Attribute a whole solution's tokens to its steps in proportion to their length."""
    lengths = [max(1, len(s)) for s in steps]
    out = [total * l // sum(lengths) for l in lengths]
    out[-1] += total - sum(out)
    return out


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def now() -> float:
    return time.perf_counter()
