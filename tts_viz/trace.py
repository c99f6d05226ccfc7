"""The Trace: the one contract between the search engine and every view.

A strategy writes nodes into a Trace as it searches; figure functions and the app read it.
It serialises to versioned JSON and reopens with no model loaded.

Tree shape: node 0 is the root (the question, no text). Every other node is one solution step;
its parent is the previous step of the same partial solution (or the root). A whole solution is
the path from the root to a finished leaf. Revision attempts are separate root-to-leaf paths
linked by RevisionLinks.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterable

TRACE_VERSION = 1

# Node statuses. "kept": survived selection (or still active); "pruned": dropped by selection;
# "finished": a complete solution (hit \boxed{}, EOS or a limit); "selected": the leaf whose
# answer the strategy returned (a finished leaf, promoted).
KEPT, PRUNED, FINISHED, SELECTED = "kept", "pruned", "finished", "selected"
NODE_STATUSES = (KEPT, PRUNED, FINISHED, SELECTED)

# Trace statuses
RUNNING, DONE, CANCELLED, FAILED = "running", "done", "cancelled", "error"


# Where the verifier's score disagrees with a node's true label (Node.true_label):
FOOLED_HIGH = "rated high, wrong"  # the verifier scored a wrong step at or above the threshold
FOOLED_LOW = "rated low, right"  # ... or a right step below it


def fooled_kind(score: float | None, label: bool | None, threshold: float = 0.5) -> str | None:
    """Whether the verifier's score of a node disagrees with its true label, and how. A score exactly at
    the threshold is no opinion (arith's 0.5: nothing checkable yet), so it fools no one."""
    if score is None or label is None:
        return None
    if label is False and score > threshold:
        return FOOLED_HIGH
    if label is True and score < threshold:
        return FOOLED_LOW
    return None


class TraceFormatError(ValueError):
    """A trace file that cannot be read; the message says what is wrong, for the user."""


@dataclass
class Node:
    id: int
    parent: int | None
    depth: int
    text: str = ""
    tokens: int = 0  # policy tokens generated for this step
    step_score: float | None = None  # verifier score of this step
    agg_score: float | None = None  # aggregated score of the path root..this node
    status: str = KEPT
    answer: str | None = None  # extracted final answer, on finished leaves
    correct: bool | None = None  # answer vs gold, when gold is known
    round: int = 0  # search round that created the node
    chain: int | None = None  # revisions: which chain; dvts: which subtree
    attempt: int | None = None  # revisions: attempt index within the chain
    reason: str = ""  # why it was kept / pruned / selected, in words
    finish_reason: str | None = None  # "boxed", "eos", "max_tokens", "max_steps"
    # the step's true label where the problem allows one (step_truth.py): False = the path so far holds
    # an error (or a finished wrong answer), True = checked and right so far, None = nothing to check
    true_label: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. lookahead rollout text


@dataclass
class RevisionLink:
    chain: int
    src: int  # leaf node id of the earlier attempt
    dst: int  # leaf node id of the revised attempt


@dataclass
class ModelCompute:
    params: int = 0
    prompt_tokens: int = 0  # prompt tokens run through the model (prefill)
    generated_tokens: int = 0  # tokens decoded
    flops: float = 0.0  # 2 x params x (prompt + generated), the usual inference estimate
    seconds: float = 0.0
    reused_tokens: int = 0  # prompt tokens whose KV came from the prefix cache: not run, not in flops

    def add(self, prompt_tokens: int = 0, generated_tokens: int = 0, seconds: float = 0.0, reused_tokens: int = 0) -> None:
        self.prompt_tokens += int(prompt_tokens)
        self.generated_tokens += int(generated_tokens)
        self.reused_tokens += int(reused_tokens)
        self.flops += 2.0 * self.params * (int(prompt_tokens) + int(generated_tokens))
        self.seconds += seconds


@dataclass
class Trace:
    question: str
    strategy: str
    gold: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    policy: str = ""
    verifier: str = ""
    nodes: list[Node] = field(default_factory=list)
    revisions: list[RevisionLink] = field(default_factory=list)
    decision: dict[str, Any] | None = None  # allocator record (auto strategy)
    compute: dict[str, ModelCompute] = field(default_factory=dict)  # per model role name
    # what each model role's weights ran in: "bfloat16", "float32 + int8 weights", "nf4 (bitsandbytes, ...)",
    # "served" for a model server
    precision: dict[str, str] = field(default_factory=dict)
    final_answer: str | None = None
    correct: bool | None = None
    status: str = RUNNING
    rounds: int = 0
    seconds: float = 0.0  # wall time of the search itself
    load_seconds: float = 0.0  # wall time spent loading models for this run (0 when already loaded)
    # share of the cores this process kept busy during the search (CPU time / wall time / threads); low
    # when another program shared the CPU, which is what makes a run's seconds long. None: not measured
    cpu_share: float | None = None
    error: str | None = None
    # where the verifier's score turns from "wrong" to "right", for the fooled marks (fooled_kind): a
    # trained PRM's scores need not be centred on 0.5 (verifiers.base.VerifierBase); a step that states
    # a final answer has its own (a ranking loss moves the last step's scores)
    step_threshold: float = 0.5
    answer_threshold: float = 0.5
    version: int = TRACE_VERSION

    def __post_init__(self) -> None:
        if not self.nodes:
            self.nodes.append(Node(id=0, parent=None, depth=0, text="", status=KEPT))

    def threshold_for(self, node: Node) -> float:
        """The threshold a node's score is read against: the answer's for a finished solution (also one
        that beam search or a filter pruned afterwards: it keeps its finish reason)."""
        finished = node.status in (FINISHED, SELECTED) or node.finish_reason is not None
        return self.answer_threshold if finished else self.step_threshold

    # ----- building -------------------------------------------------------------------------
    @property
    def root(self) -> Node:
        return self.nodes[0]

    def add_node(self, parent: int, text: str, **kw: Any) -> Node:
        node = Node(id=len(self.nodes), parent=parent, depth=self.nodes[parent].depth + 1, text=text, **kw)
        self.nodes.append(node)
        return node

    def model_compute(self, role: str, params: int = 0) -> ModelCompute:
        mc = self.compute.get(role)
        if mc is None:
            mc = self.compute[role] = ModelCompute(params=params)
        return mc

    # ----- reading --------------------------------------------------------------------------
    def node(self, node_id: int) -> Node:
        return self.nodes[node_id]

    def children(self, node_id: int) -> list[Node]:
        return [n for n in self.nodes if n.parent == node_id]

    def path(self, node_id: int) -> list[Node]:
        """Nodes from the first step down to node_id (root excluded)."""
        out = []
        n: Node | None = self.nodes[node_id]
        while n is not None and n.parent is not None:
            out.append(n)
            n = self.nodes[n.parent]
        return out[::-1]

    def steps(self, node_id: int) -> list[str]:
        return [n.text for n in self.path(node_id)]

    def leaves(self) -> list[Node]:
        has_child = {n.parent for n in self.nodes}
        return [n for n in self.nodes if n.id not in has_child and n.parent is not None]

    def finished(self) -> list[Node]:
        return [n for n in self.nodes if n.status in (FINISHED, SELECTED)]

    def selected(self) -> Node | None:
        for n in self.nodes:
            if n.status == SELECTED:
                return n
        return None

    def selected_path_ids(self) -> set[int]:
        sel = self.selected()
        if sel is None:
            return set()
        return {0} | {n.id for n in self.path(sel.id)}

    def totals(self) -> ModelCompute:
        t = ModelCompute()
        for mc in self.compute.values():
            t.prompt_tokens += mc.prompt_tokens
            t.generated_tokens += mc.generated_tokens
            t.flops += mc.flops
            t.seconds += mc.seconds
            t.reused_tokens += mc.reused_tokens
        return t

    def to_networkx(self):
        import networkx as nx

        g = nx.DiGraph()
        for n in self.nodes:
            g.add_node(n.id, **asdict(n))
        for n in self.nodes:
            if n.parent is not None:
                g.add_edge(n.parent, n.id, kind="step")
        for link in self.revisions:
            g.add_edge(link.src, link.dst, kind="revision", chain=link.chain)
        return g

    # ----- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return _json_safe(d)

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def save(self, path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json(indent=1))

    @classmethod
    def from_dict(cls, d: Any) -> "Trace":
        if not isinstance(d, dict):
            raise TraceFormatError("A trace must be a JSON object, got %s." % type(d).__name__)
        version = d.get("version")
        if version != TRACE_VERSION:
            raise TraceFormatError(
                f"Unsupported trace version {version!r}; this tts-viz reads version {TRACE_VERSION}."
            )
        for key in ("question", "strategy", "nodes"):
            if key not in d:
                raise TraceFormatError(f"Not a tts-viz trace: the field '{key}' is missing.")
        try:
            nodes = [_build(Node, nd, f"node {i}") for i, nd in enumerate(d["nodes"])]
            revisions = [_build(RevisionLink, r, "revision link") for r in d.get("revisions") or []]
            compute = {str(k): _build(ModelCompute, v, f"compute[{k}]") for k, v in (d.get("compute") or {}).items()}
        except TypeError as e:
            raise TraceFormatError(f"Malformed trace: {e}") from None
        _check_tree(nodes, revisions)
        top = {f.name for f in fields(cls)} - {"nodes", "revisions", "compute"}
        kw = {k: d[k] for k in top if k in d}
        _check_top(kw)
        return cls(nodes=nodes, revisions=revisions, compute=compute, **kw)

    @classmethod
    def from_json(cls, text: str | bytes) -> "Trace":
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TraceFormatError(f"Not valid JSON: {e}") from None
        return cls.from_dict(d)

    @classmethod
    def load(cls, path) -> "Trace":
        with open(path, "rb") as f:
            return cls.from_json(f.read())


def truth_summary(trace: Trace) -> dict[str, Any] | None:
    """How often the verifier disagreed with the step truth, and whether that changed a choice.

    None when no node carries a true label. Counts: labelled (scored nodes with a label),
    rated_high_wrong / rated_low_right (fooled_kind), fooled_rounds (rounds in which a pruned
    candidate was right while a kept one of the same round was wrong, i.e. selection preferred a wrong
    step), rounds (rounds that pruned something), final_fooled (the chosen solution is wrong though a
    finished right one was there to choose)."""
    scored = [n for n in trace.nodes[1:] if n.true_label is not None and n.step_score is not None]
    if not scored:
        return None
    kinds = [fooled_kind(n.step_score, n.true_label, trace.threshold_for(n)) for n in scored]
    by_round: dict[int, list[Node]] = {}
    for n in trace.nodes[1:]:
        by_round.setdefault(n.round, []).append(n)
    pruning = fooled = 0
    for nodes in by_round.values():
        pruned = [n for n in nodes if n.status == PRUNED]
        if not pruned:
            continue
        pruning += 1
        kept_wrong = any(n.status != PRUNED and n.true_label is False for n in nodes)
        fooled += bool(kept_wrong and any(n.true_label is True for n in pruned))
    sel = trace.selected()
    final_fooled = bool(sel is not None and sel.correct is False and any(n.correct for n in trace.finished()))
    return {"labelled": len(scored), "rated_high_wrong": kinds.count(FOOLED_HIGH),
            "rated_low_right": kinds.count(FOOLED_LOW), "fooled_rounds": fooled, "rounds": pruning,
            "final_fooled": final_fooled, "threshold": trace.step_threshold,
            "answer_threshold": trace.answer_threshold}


def _build(klass, d: Any, what: str):
    if not isinstance(d, dict):
        raise TraceFormatError(f"Malformed trace: {what} is not an object.")
    names = {f.name for f in fields(klass)}
    unknown = set(d) - names
    if unknown:
        raise TraceFormatError(f"Malformed trace: {what} has unknown fields {sorted(unknown)}.")
    return klass(**d)


def _check_tree(nodes: list[Node], revisions: Iterable[RevisionLink]) -> None:
    if not nodes or nodes[0].parent is not None:
        raise TraceFormatError("Malformed trace: the first node must be the root (parent null).")
    for i, n in enumerate(nodes):
        if n.id != i:
            raise TraceFormatError(f"Malformed trace: node at position {i} has id {n.id}.")
        if i and not (isinstance(n.parent, int) and 0 <= n.parent < i):
            raise TraceFormatError(f"Malformed trace: node {i} has an invalid parent {n.parent!r}.")
        if n.status not in NODE_STATUSES:
            raise TraceFormatError(f"Malformed trace: node {i} has unknown status {n.status!r}.")
        if not isinstance(n.text, str):
            raise TraceFormatError(f"Malformed trace: node {i} text is not a string.")
        if n.true_label is not None and not isinstance(n.true_label, bool):
            raise TraceFormatError(f"Malformed trace: node {i} true_label is not true, false or null.")
        for attr in ("step_score", "agg_score"):
            v = getattr(n, attr)
            if v is not None and not isinstance(v, (int, float)):
                raise TraceFormatError(f"Malformed trace: node {i} {attr} is not a number.")
    for r in revisions:
        if not (0 <= r.src < len(nodes) and 0 <= r.dst < len(nodes)):
            raise TraceFormatError("Malformed trace: a revision link points outside the tree.")


_TEXT = ("question", "strategy", "policy", "verifier")
_OPTIONAL_TEXT = ("gold", "final_answer", "error")
_NUMBERS = ("rounds", "seconds", "load_seconds")


def _check_top(kw: dict[str, Any]) -> None:
    """Every top-level field of an uploaded trace has the type the views expect."""
    for k in _TEXT:
        if k in kw and not isinstance(kw[k], str):
            raise TraceFormatError(f"Malformed trace: '{k}' is not text.")
    for k in _OPTIONAL_TEXT:
        if kw.get(k) is not None and not isinstance(kw[k], str):
            raise TraceFormatError(f"Malformed trace: '{k}' is not text or null.")
    for k in _NUMBERS:
        if k in kw and (isinstance(kw[k], bool) or not isinstance(kw[k], (int, float))):
            raise TraceFormatError(f"Malformed trace: '{k}' is not a number.")
    if "params" in kw and not isinstance(kw["params"], dict):
        raise TraceFormatError("Malformed trace: 'params' is not an object.")
    if "precision" in kw and not (isinstance(kw["precision"], dict)
                                  and all(isinstance(v, str) for v in kw["precision"].values())):
        raise TraceFormatError("Malformed trace: 'precision' is not an object of texts.")
    if kw.get("decision") is not None and not isinstance(kw["decision"], dict):
        raise TraceFormatError("Malformed trace: 'decision' is not an object or null.")
    if kw.get("cpu_share") is not None and (isinstance(kw["cpu_share"], bool)
                                            or not isinstance(kw["cpu_share"], (int, float))):
        raise TraceFormatError("Malformed trace: 'cpu_share' is not a number or null.")
    if kw.get("correct") is not None and not isinstance(kw["correct"], bool):
        raise TraceFormatError("Malformed trace: 'correct' is not true, false or null.")
    for k in ("step_threshold", "answer_threshold"):
        v = kw.get(k, 0.5)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise TraceFormatError(f"Malformed trace: '{k}' is not a number from 0 to 1.")
    if "status" in kw and kw["status"] not in (RUNNING, DONE, CANCELLED, FAILED):
        raise TraceFormatError(f"Malformed trace: unknown run status {str(kw['status'])[:40]!r}.")


def _json_safe(x: Any) -> Any:
    """NaN/inf are not JSON; store them as null (a score that could not be computed)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x
