"""`python -m tts_viz train-prm`: a PRM on the policy's own hidden states, trained for selection.

What selection needs is a score that ranks the samples of ONE problem (prm-eval's within-problem
AUROC). A pointwise head (train-probe) learns mostly which problems are easy. Here the candidates are:

* features: the final layer at the step's end (the probe's), or several layers with the mean over the
  step's tokens, and the token-confidence numbers read in the same pass (verifiers/step_features.py);
  a candidate may read all of them, the states only or the confidence numbers only;
* losses: pointwise (balanced BCE on step labels: the exact process labels of generated problems, or
  outcome labels), pairwise (a right sample's last-step logit above each wrong sample's of the same
  problem: mean softplus of the negative margin) and listwise (softmax over a problem's samples, the
  target spread over its right ones), the ranking losses with a small pointwise term beside them;
* heads: linear, or a small MLP (one tanh layer).

Each is scored out-of-fold by k-fold cross-validation over TRAINING problems only (folds by problem,
seeded); the one with the best within-problem AUROC (then weighted-best-of-N) is refitted on all of
them and written with its card (policy SHA-256, data, features, every candidate's CV figures).
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import torch

from ..verifiers.step_features import head_input

LOSSES = ("pointwise", "pairwise", "listwise")


@dataclass(frozen=True)
class Candidate:
    loss: str = "pairwise"
    labels: str = "process"  # the pointwise term's labels: process (exact step labels) or outcome
    hidden: int = 0  # 0 = linear head, else one tanh layer of this width
    weight_decay: float = 1e-2
    point_weight: float = 0.2  # weight of the pointwise term beside a ranking loss
    epochs: int = 200
    lr: float = 1e-2
    # all, states (hidden states only) or confidence (the token log-probability numbers), each with an
    # optional "+arith" (the exact arithmetic check's columns, step_features.arith_columns)
    features: str = "all"

    @property
    def key(self) -> str:
        return (f"{self.loss}-{self.labels}-h{self.hidden}-wd{self.weight_decay:g}"
                + (f"-pw{self.point_weight:g}" if self.loss != "pointwise" else "")
                + (f"-{self.features}" if self.features != "all" else ""))


@dataclass
class ProblemData:
    """One training problem: its step features, step targets and where each sample's last step is."""
    id: str
    x: torch.Tensor  # [steps of all samples, F]
    step_y: torch.Tensor  # [steps]: target of the pointwise term, NaN where unlabelled
    last: torch.Tensor  # [samples]: row of each sample's last step
    correct: torch.Tensor  # [samples] bool


def problem_data(row: dict, feats: torch.Tensor, labels: str, features: str = "all") -> ProblemData:
    ys, last, i = [], [], 0
    for s in row["samples"]:
        for label in s["labels"]:
            y = float(s["correct"]) if labels == "outcome" else (float("nan") if label is None else float(label))
            ys.append(y)
        i += len(s["steps"])
        last.append(i - 1)
    if i != feats.shape[0]:
        raise ValueError(f"{row['id']}: {feats.shape[0]} feature rows for {i} steps")
    return ProblemData(row["id"], head_input(feats, features, [s["steps"] for s in row["samples"]]), torch.tensor(ys), torch.tensor(last),
                       torch.tensor([bool(s["correct"]) for s in row["samples"]]))


def ranking_loss(logits: torch.Tensor, correct: torch.Tensor, kind: str) -> torch.Tensor | None:
    """Within-problem loss on the samples' solution logits; None when the problem is not mixed."""
    right, wrong = logits[correct], logits[~correct]
    if not len(right) or not len(wrong):
        return None
    if kind == "pairwise":
        return torch.nn.functional.softplus(-(right[:, None] - wrong[None, :])).mean()
    if kind == "listwise":
        return -torch.log_softmax(logits, dim=0)[correct].mean()
    raise ValueError(f"unknown ranking loss {kind!r}; choose pairwise or listwise")


def fit(problems: Sequence[ProblemData], cand: Candidate, seed: int = 0):
    """A ProbeHead (standardise, linear or tanh MLP, logit) fitted to the problems with `cand`'s loss."""
    from ..verifiers.probe import ProbeHead

    torch.manual_seed(seed)
    x = torch.cat([p.x for p in problems])
    head = ProbeHead(x.shape[1], cand.hidden)
    head.mean.copy_(x.mean(0))
    head.std.copy_(x.std(0).clamp(min=1e-4))
    xs = (x - head.mean) / head.std  # standardised once: head(x) = net(xs), without redoing it every epoch
    y = torch.cat([p.step_y for p in problems])
    labelled = ~torch.isnan(y)
    pos = y[labelled].mean().clamp(1e-3, 1 - 1e-3) if labelled.any() else torch.tensor(0.5)
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=(1 - pos) / pos)
    offsets = torch.tensor([0] + [p.x.shape[0] for p in problems]).cumsum(0)
    mixed = [k for k, p in enumerate(problems) if 0 < int(p.correct.sum()) < len(p.correct)]
    opt = torch.optim.Adam(head.net.parameters(), lr=cand.lr, weight_decay=cand.weight_decay)
    for _ in range(cand.epochs):
        opt.zero_grad()
        logits = head.net(xs).squeeze(-1)
        point = bce(logits[labelled], y[labelled]) if labelled.any() else logits.sum() * 0
        if cand.loss == "pointwise" or not mixed:
            loss = point
        else:
            ranks = [ranking_loss(logits[offsets[k] + problems[k].last], problems[k].correct, cand.loss) for k in mixed]
            loss = torch.stack([r for r in ranks if r is not None]).mean() + cand.point_weight * point
        loss.backward()
        opt.step()
    head.eval()
    return head


def score_rows(head, rows: Sequence[dict], feats: dict[str, torch.Tensor], key: str, features: str = "all") -> None:
    """Put the head's step scores (sigmoid) on every sample of the rows under `key` (prm-eval's layout)."""
    with torch.inference_mode():
        for row in rows:
            p = torch.sigmoid(head(head_input(feats[row["id"]], features, [s["steps"] for s in row["samples"]]))).tolist()
            i = 0
            for s in row["samples"]:
                s.setdefault("scores", {})[key] = p[i: i + len(s["steps"])]
                i += len(s["steps"])


def separating_threshold(scores: Sequence[float], right: Sequence[bool]) -> float:
    """The score that best separates right from wrong (Youden's J: true-positive rate minus
    false-positive rate, at most), midway between the two scores it falls between; 0.5 without both."""
    pairs = sorted(zip(scores, right))
    pos = sum(1 for _, y in pairs if y)
    neg = len(pairs) - pos
    if not pos or not neg:
        return 0.5
    best, cut = -1.0, 0.5
    below_pos = below_neg = 0  # right / wrong scores below the cut
    for k in range(len(pairs) + 1):
        if k == len(pairs) or k == 0 or pairs[k][0] != pairs[k - 1][0]:
            j = (pos - below_pos) / pos - (neg - below_neg) / neg
            if j > best:
                lo = pairs[k - 1][0] if k else 0.0
                hi = pairs[k][0] if k < len(pairs) else 1.0
                best, cut = j, (lo + hi) / 2
        if k < len(pairs):
            below_pos += pairs[k][1]
            below_neg += not pairs[k][1]
    return round(cut, 4)


def card_thresholds(head, rows: Sequence[dict], feats: dict[str, torch.Tensor], features: str = "all") -> dict:
    """Where the trained head's scores separate right from wrong on its training problems: for a step
    (exact step labels, the samples' last steps left out) and for a finished solution (its last
    step's score against its outcome). The views mark "fooled" steps against these, not 0.5."""
    key = "_thresholds"
    score_rows(head, rows, feats, key, features)  # the head's step scores, as prm-eval reads them
    step_s, step_y, last_s, last_y = [], [], [], []
    for row in rows:
        for s in row["samples"]:
            mine = s["scores"].pop(key)
            for score, label in zip(mine[:-1], s["labels"][:-1]):
                if label is not None:
                    step_s.append(score)
                    step_y.append(bool(label))
            if mine:
                last_s.append(mine[-1])
                last_y.append(bool(s["correct"]))
    return {"step": separating_threshold(step_s, step_y), "answer": separating_threshold(last_s, last_y),
            "from": "the training problems (in sample): the score that best separates right from wrong "
                    "(Youden's J), for steps (exact step labels) and for finished solutions (outcome)",
            "steps": len(step_s), "solutions": len(last_s)}


def cross_validate(rows: Sequence[dict], feats: dict[str, torch.Tensor], candidates: Sequence[Candidate],
                   folds: int = 5, seed: int = 0, log=None) -> dict[str, dict[str, Any]]:
    """Every candidate scored out-of-fold on every training problem, then evaluated on all at once
    (prm-eval's metrics). Returns {candidate key: {candidate, cv}}; the rows keep no scores."""
    from .prm_eval import evaluate

    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    folds = max(2, min(folds, len(rows)))
    fold_of = {rows[i]["id"]: j % folds for j, i in enumerate(order)}
    out: dict[str, dict[str, Any]] = {}
    for cand in candidates:
        t0 = time.perf_counter()
        data = {r["id"]: problem_data(r, feats[r["id"]], cand.labels, cand.features) for r in rows}
        for f in range(folds):
            train = [data[r["id"]] for r in rows if fold_of[r["id"]] != f]
            held = [r for r in rows if fold_of[r["id"]] == f]
            score_rows(fit(train, cand, seed), held, feats, cand.key, cand.features)
        m = evaluate(rows, cand.key)
        out[cand.key] = {"candidate": asdict(cand), "cv": m}
        if log is not None:
            log(f"{cand.key}: within-problem AUROC {m['within_auroc']}, weighted {m['selection']['weighted']:.3f} "
                f"vs majority {m['selection']['majority']:.3f}, step AUROC {m['step_auroc']} "
                f"({time.perf_counter() - t0:.0f} s)")
    for r in rows:
        for s in r["samples"]:
            s.pop("scores", None)
    return out


def best_candidate(results: dict[str, dict[str, Any]]) -> str:
    """Within-problem AUROC first (what selection needs), then weighted-best-of-N over majority."""
    def rank(k):
        cv = results[k]["cv"]
        return (cv.get("within_auroc") or 0.0, cv["selection"]["weighted"] - cv["selection"]["majority"])
    return max(results, key=rank)


# ------------------------------------------------------------------------------------------------
# the command

TRAIN_SEED = 202  # generator seed of the training problems (prm-eval's held-out sets use others)


def default_candidates() -> list[Candidate]:
    out = [Candidate(loss="pointwise", labels="process"), Candidate(loss="pointwise", labels="outcome"),
           Candidate(loss="pointwise", labels="process", features="states")]
    for loss in ("pairwise", "listwise"):
        for hidden in (0, 64):
            out.append(Candidate(loss=loss, labels="process", hidden=hidden))
    # the token-confidence numbers alone (DeepConf's signal) and the states alone, under the pairwise loss
    out += [Candidate(loss="pairwise", labels="process", features="confidence", weight_decay=0.0),
            Candidate(loss="pairwise", labels="process", features="states")]
    # the arithmetic check's columns beside them: the veto's evidence learned, not imposed
    out += [Candidate(loss="pointwise", labels="process", features="all+arith"),
            Candidate(loss="pairwise", labels="process", features="all+arith"),
            Candidate(loss="pairwise", labels="process", hidden=64, features="all+arith"),
            Candidate(loss="pairwise", labels="process", features="confidence+arith", weight_decay=0.0)]
    return out


def add_train_prm_args(p) -> None:
    from ..models import DEFAULT_POLICY

    p.add_argument("--policy", default=DEFAULT_POLICY)
    p.add_argument("--levels", default="1,2,3,4,5")
    p.add_argument("--arith-per-level", type=int, default=42, help="generated arithmetic stories per level")
    p.add_argument("--word-per-level", type=int, default=42, help="GSM8K-like word problems per level")
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--problems-per-call", type=int, default=4, help="problems sampled in one batched call")
    p.add_argument("--exclude-seeds", default="101,303", help="generator seeds of the evaluation sets: "
                                                              "their questions are dropped from training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--candidates", help="comma list of candidate keys to cross-validate (default: all of "
                                         "default_candidates(); the keys are printed as they are scored)")
    p.add_argument("--sample-only", action="store_true", help="only sample the training pool (an installment)")
    p.add_argument("--cache", default="runs/prm-features", help="folder for the per-problem features")
    p.add_argument("--pools", default="assets/prm-eval-pools", help="folder of the training pool")
    p.add_argument("--assets", default=None, help="where to write the PRM (default: the package's assets/)")


def training_problems(levels, arith_per_level: int, word_per_level: int, exclude_seeds: Sequence[int]):
    """Generated arithmetic stories and word problems at TRAIN_SEED, minus any question of the
    evaluation sets (the same generators at the excluded seeds, far more per level than they use)."""
    from ..problems import arith_problem_set
    from ..word_problems import word_problem_set

    held_out = set()
    for s in exclude_seeds:
        held_out |= {p.question for p in arith_problem_set(levels, 64, s)}
        held_out |= {p.question for p in word_problem_set(levels, 64, s)}
    probs = arith_problem_set(levels, arith_per_level, TRAIN_SEED) + word_problem_set(levels, word_per_level, TRAIN_SEED)
    return [p for p in probs if p.question not in held_out]


def cmd_train_prm(args) -> int:
    import json
    import sys
    from pathlib import Path

    from ..backends.transformers_backend import TransformersBackend
    from ..models import ModelPool
    from ..policy import StepPolicy
    from ..verifiers.learned_prm import save_prm
    from ..verifiers.probe import ASSETS
    from ..verifiers.step_features import default_layers
    from .prm_eval import PoolSpec, StepFeatureCache, build_pool

    lm = ModelPool().get(args.policy)
    backend = TransformersBackend.from_loaded(lm)
    policy = StepPolicy(backend, max_solution_tokens=512)
    sha = str(lm.meta.get("sha256") or args.policy)
    levels = tuple(int(x) for x in args.levels.split(","))
    problems = training_problems(levels, args.arith_per_level, args.word_per_level,
                                 [int(s) for s in args.exclude_seeds.split(",") if s.strip()])
    spec = PoolSpec(policy=args.policy, samples=args.samples, seed=args.seed, problems_per_call=args.problems_per_call)
    pool_file = Path(args.pools) / f"pool-{spec.key(sha)}-train-{TRAIN_SEED}.jsonl"
    rows = build_pool(problems, policy, spec, pool_file)
    print(f"training pool: {len(rows)} problems in {pool_file}", file=sys.stderr)
    if args.sample_only:
        return 0
    layers = default_layers(backend.model.config.num_hidden_layers)
    features = StepFeatureCache(backend, policy.prompt, Path(args.cache), spec.key(sha), layers)
    feats = {}
    for k, row in enumerate(rows):
        feats[row["id"]] = features.matrix(row)[0]
        print(f"features {k + 1}/{len(rows)}", file=sys.stderr)
    candidates = default_candidates()
    if args.candidates:
        wanted = [k.strip() for k in args.candidates.split(",") if k.strip()]
        unknown = [k for k in wanted if k not in {c.key for c in candidates}]
        if unknown:
            print(f"error: unknown candidate(s) {', '.join(unknown)}; choose from {', '.join(c.key for c in candidates)}",
                  file=sys.stderr)
            return 2
        candidates = [c for c in candidates if c.key in wanted]
    results = cross_validate(rows, feats, candidates, folds=args.folds, seed=args.seed,
                             log=lambda m: print(m, file=sys.stderr))
    best = best_candidate(results)
    cand = Candidate(**results[best]["candidate"])
    head = fit([problem_data(r, feats[r["id"]], cand.labels, cand.features) for r in rows], cand, args.seed)
    card = {"policy": args.policy, "policy_sha256": sha, "layers": list(layers),
            "features": "per layer: state at the step's last token and mean over its tokens, then the step's and "
                        "the solution's token-confidence numbers (step_features.py); the candidate's `features` "
                        "says which columns the head reads (+arith: the exact arithmetic check's columns after them)",
            "candidate": results[best]["candidate"], "selected_by":
            f"{args.folds}-fold cross-validation over training problems: within-problem AUROC, then weighted - majority",
            "train_problems": len(rows), "train_generator_seed": TRAIN_SEED, "pool_file": str(pool_file),
            "cross_validation": {k: {"candidate": v["candidate"],
                                     "cv": {m: x for m, x in v["cv"].items() if m != "per_problem"}}
                                 for k, v in results.items()},
            "thresholds": card_thresholds(head, rows, feats, cand.features)}
    path = save_prm(head, card, args.policy, Path(args.assets) if args.assets else ASSETS)
    print(json.dumps({"prm": str(path), "candidate": best, "within_auroc": results[best]["cv"]["within_auroc"]}))
    return 0
