"""`python -m tts_viz train-probe`: fit the on-policy value probe (verifiers/probe.py) from a seed.

1. Sample solutions of the policy on generated arithmetic problems (generator seed 202; prm-eval
   evaluates on seed 101 and any question shared with it is dropped, so train and evaluation are
   disjoint), cached like prm-eval's pool.
2. Features: the policy's hidden state at the end of every step, read right after sampling so the
   prefix store makes it nearly free; cached per problem.
3. Two label kinds: outcome (every step of a solution gets its final correctness) and process
   (the exact step label from the problem's known intermediate values; unlabelled steps skipped).
   Each kind, with each of a few weight decays, is scored out-of-fold (5-fold cross-validation by
   problem); the best weighted-best-of-N (then solution AUROC) wins and is refitted on all of them.
4. The head and a card (policy SHA-256, labels, data, validation figures) go to assets/.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path


import torch

from .prm_eval import PROBLEM_SEED, PoolSpec, build_pool, evaluate
from ..problems import arith_problem_set

TRAIN_SEED = 202


def add_train_probe_args(p: argparse.ArgumentParser) -> None:
    from ..models import DEFAULT_POLICY

    p.add_argument("--policy", default=DEFAULT_POLICY)
    p.add_argument("--levels", default="1,2,3,4,5")
    p.add_argument("--per-level", type=int, default=8)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--hidden", type=int, default=0, help="0: linear head; else one tanh layer of this width")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (by problem) for choosing labels and weight decay")
    p.add_argument("--cache", default="runs/probe", help="folder for the per-problem features (recomputable)")
    p.add_argument("--pools", default="assets/prm-eval-pools",
                   help="folder for the training pool (sampled solutions; shipped so a rerun need not resample)")
    p.add_argument("--assets", default=None, help="where to write the head (default: the package's assets/)")


def step_features(backend, policy, row: dict) -> torch.Tensor:
    """[steps in the pool row, d]: hidden state after each step of each sample, level by level."""
    feats = []
    for s in row["samples"]:
        steps = s["steps"]
        feats.append(backend.last_hidden_states([policy.prompt(row["question"], steps[: k + 1]) for k in range(len(steps))]))
    return torch.cat(feats, dim=0)


def fit_head(x: torch.Tensor, y: torch.Tensor, hidden: int, seed: int, epochs: int = 300, weight_decay: float = 1e-3):
    from ..verifiers.probe import ProbeHead

    torch.manual_seed(seed)
    head = ProbeHead(x.shape[1], hidden)
    head.mean.copy_(x.mean(0))
    head.std.copy_(x.std(0).clamp(min=1e-4))
    opt = torch.optim.Adam(head.net.parameters(), lr=1e-2, weight_decay=weight_decay)
    pos = y.mean().clamp(1e-3, 1 - 1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=(1 - pos) / pos)  # balance the classes
    for _ in range(epochs):
        opt.zero_grad()
        loss = loss_fn(head(x), y)
        loss.backward()
        opt.step()
    head.eval()
    return head


def _rows_xy(rows: list[dict], feats: dict[str, torch.Tensor], kind: str):
    xs, ys = [], []
    for row in rows:
        f = feats[row["id"]]
        i = 0
        for s in row["samples"]:
            for label in s["labels"]:
                y = float(s["correct"]) if kind == "outcome" else (None if label is None else float(label))
                if y is not None:
                    xs.append(f[i])
                    ys.append(y)
                i += 1
    return torch.stack(xs), torch.tensor(ys)


def _score_rows(head, rows: list[dict], feats: dict[str, torch.Tensor], key: str) -> None:
    with torch.inference_mode():
        for row in rows:
            p = torch.sigmoid(head(feats[row["id"]])).tolist()
            i = 0
            for s in row["samples"]:
                s.setdefault("scores", {})[key] = p[i : i + len(s["steps"])]
                i += len(s["steps"])


WEIGHT_DECAYS = (1e-3, 1e-2, 1e-1)


def cross_validate(rows: list[dict], feats: dict[str, torch.Tensor], hidden: int, seed: int, folds: int = 5,
                   kinds=("outcome", "process"), weight_decays=WEIGHT_DECAYS) -> dict[str, dict]:
    """Every (label kind, weight decay) scored out-of-fold on every training problem (folds by
    problem, seeded), then evaluated on all of them at once: 20 problems' selections are a steadier
    signal than one 20% split's 4. Returns {candidate: {labels, weight_decay, cv: evaluate()}}."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    folds = max(2, min(folds, len(rows)))
    fold_of = {rows[i]["id"]: j % folds for j, i in enumerate(order)}
    out: dict[str, dict] = {}
    for kind in kinds:
        for wd in weight_decays:
            key = f"{kind}-wd{wd:g}"
            for f in range(folds):
                fit = [r for r in rows if fold_of[r["id"]] != f]
                held = [r for r in rows if fold_of[r["id"]] == f]
                x, y = _rows_xy(fit, feats, kind)
                _score_rows(fit_head(x, y, hidden, seed, weight_decay=wd), held, feats, key)
            m = evaluate(rows, key)
            out[key] = {"labels": kind, "weight_decay": wd, "cv": {k: v for k, v in m.items() if k != "per_problem"}}
            print(f"{key}: weighted-best {m['selection']['weighted']:.3f}, solution AUROC {m['solution_auroc']}, "
                  f"step AUROC {m['step_auroc']}", file=sys.stderr)
    for r in rows:  # the out-of-fold scores are not part of the training rows
        for s in r["samples"]:
            s.pop("scores", None)
    return out


def cmd_train_probe(args) -> int:
    from ..backends.transformers_backend import TransformersBackend
    from ..models import ModelPool
    from ..policy import StepPolicy
    from ..verifiers.probe import ASSETS, save_probe

    lm = ModelPool().get(args.policy)
    backend = TransformersBackend.from_loaded(lm)
    policy = StepPolicy(backend, max_solution_tokens=512)
    sha = str(lm.meta.get("sha256") or args.policy)
    levels = tuple(int(x) for x in args.levels.split(","))
    held_out = {p.question for p in arith_problem_set(levels, 64, PROBLEM_SEED)}
    problems = [p for p in arith_problem_set(levels, args.per_level, TRAIN_SEED) if p.question not in held_out]
    spec = PoolSpec(policy=args.policy, samples=args.samples, seed=args.seed)
    cache = Path(args.cache)
    pool_file = Path(args.pools) / f"pool-{spec.key(sha)}-arith-{TRAIN_SEED}.jsonl"
    rows, feats = [], {}
    for k, prob in enumerate(problems):
        backend.prefix_store.clear()
        row = build_pool([prob], policy, spec, pool_file)[0]  # samples it (store warm) or reads it back
        fpath = cache / f"feat-{spec.key(sha)}-{prob.id}.pt"
        if fpath.is_file():
            feats[prob.id] = torch.load(fpath)
        else:
            feats[prob.id] = step_features(backend, policy, row)
            torch.save(feats[prob.id], fpath)
        rows.append(row)
        print(f"features {k + 1}/{len(problems)}", file=sys.stderr)
    results = cross_validate(rows, feats, args.hidden, args.seed, folds=args.folds)
    best = max(results, key=lambda k: (results[k]["cv"]["selection"]["weighted"], results[k]["cv"]["solution_auroc"] or 0,
                                       results[k]["cv"]["step_auroc"] or 0))
    kind, wd = results[best]["labels"], results[best]["weight_decay"]
    x, y = _rows_xy(rows, feats, kind)
    head = fit_head(x, y, args.hidden, args.seed, weight_decay=wd)
    card = {
        "policy": args.policy, "policy_sha256": sha, "labels": kind, "weight_decay": wd, "selected_by":
        f"{args.folds}-fold cross-validation over training problems: weighted-best-of-N, then solution AUROC", "train_problems": len(rows),
        "train_generator_seed": TRAIN_SEED, "levels": list(levels), "samples": args.samples, "seed": args.seed,
        "cross_validation": results, "features": "final normed hidden state after each step's blank line",
    }
    path = save_probe(head, card, args.policy, Path(args.assets) if args.assets else ASSETS)
    print(json.dumps({"probe": str(path), "labels": kind, "weight_decay": wd, "train_steps": len(y)}))
    return 0
