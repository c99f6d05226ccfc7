"""`python -m tts_viz prm-eval`: how good is each verifier at finding wrong steps and right samples?

A fixed pool of sampled solutions (seeded, cached to disk: every verifier sees the same pool) is
scored by each verifier. Reported per problem set:

* step level (generated arithmetic problems, whose intermediate values are known, so every step
  with an equation is labelled right or wrong by `problems.label_steps`): AUROC of step scores
  against step labels; first-error-step accuracy on erroneous and on correct solutions and their
  harmonic mean F1, as in ProcessBench (predicted first error = first step scored below 0.5);
* solution level: AUROC of the aggregated score (last step) against final-answer correctness;
* selection over each problem's samples: best-of-N and weighted-best-of-N accuracy against
  majority@N, pass@1 and pass@N (the ceiling a perfect verifier reaches).

    python -m tts_viz prm-eval --verifiers arith,self-judge --per-level 8 --samples 8
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..grading import extract_answer, is_correct
from ..problems import Problem, arith_problem_set, label_steps, load_jsonl
from ..strategies.select import pick
from ..trace import Node
from ..verifiers.base import aggregate

if TYPE_CHECKING:
    import torch

PROBLEM_SEED = 101  # the arith generator seed of the evaluation problems (sweeps and training use others)


# ------------------------------------------------------------------------------------------------
# metrics (pure)


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Probability that a random positive outscores a random negative (ties count half).
    None when one class is missing."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return None
    # rank-sum (Mann-Whitney U) with average ranks for ties: O(n log n)
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    rank_pos = sum(r for r, y in zip(ranks, labels) if y)
    return (rank_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def within_problem_auroc(pool: Sequence[dict], key: str) -> tuple[float | None, int]:
    """(mean AUROC of the solution score against correctness among the samples of ONE problem, over the
    problems that have both right and wrong samples; how many such problems). What selection needs:
    a verifier that only knows which problems are easy scores 0.5 here however high its pooled AUROC."""
    per_problem = []
    for p in pool:
        sol = [(aggregate(s["scores"][key], "last"), bool(s["correct"])) for s in p["samples"] if s["scores"].get(key)]
        a = auroc([x for x, _ in sol], [c for _, c in sol])
        if a is not None:
            per_problem.append(a)
    return (sum(per_problem) / len(per_problem) if per_problem else None), len(per_problem)


def true_first_error(labels: Sequence[bool | None], correct: bool) -> int | None:
    """Index of the first wrong step; -1 for a correct solution with no wrong step; None when the
    error cannot be located (wrong answer but no checkable wrong step)."""
    for i, y in enumerate(labels):
        if y is False:
            return i
    return -1 if correct else None


def predicted_first_error(scores: Sequence[float], threshold: float = 0.5) -> int:
    return next((i for i, s in enumerate(scores) if s < threshold), -1)


def first_error_metrics(samples: Sequence[dict], key: str, threshold: float = 0.5) -> dict[str, Any]:
    err_hits, err_n, ok_hits, ok_n = 0, 0, 0, 0
    for s in samples:
        truth = true_first_error(s["labels"], s["correct"])
        if truth is None:
            continue
        pred = predicted_first_error(s["scores"][key], threshold)
        if truth == -1:
            ok_n += 1
            ok_hits += pred == -1
        else:
            err_n += 1
            err_hits += pred == truth
    acc_err = err_hits / err_n if err_n else None
    acc_ok = ok_hits / ok_n if ok_n else None
    f1 = (2 * acc_err * acc_ok / (acc_err + acc_ok)) if acc_err is not None and acc_ok is not None and acc_err + acc_ok > 0 else None
    return {"erroneous": err_n, "correct": ok_n, "acc_erroneous": acc_err, "acc_correct": acc_ok, "f1": f1}


def selection_metrics(problems: Sequence[dict], key: str, n: int | None = None) -> dict[str, float]:
    """Accuracy of majority / best / weighted selection over each problem's first n samples."""
    out = {"majority": 0, "best": 0, "weighted": 0, "pass@1": 0.0, "pass@n": 0}
    for p in problems:
        samples = p["samples"][:n] if n else p["samples"]
        nodes = [Node(id=i + 1, parent=0, depth=1, text="", answer=s["answer"], correct=s["correct"],
                      agg_score=aggregate(s["scores"][key], "last")) for i, s in enumerate(samples)]
        for method in ("best", "weighted"):
            out[method] += bool(pick(nodes, method)[0].correct)
        # majority@N is the verifier-free baseline: a tied vote goes to the earlier sample, not the
        # higher score, so it is the same number in every verifier's row
        for node in nodes:
            node.agg_score = None
        out["majority"] += bool(pick(nodes, "majority")[0].correct)
        out["pass@1"] += sum(bool(s["correct"]) for s in samples) / len(samples)
        out["pass@n"] += any(s["correct"] for s in samples)
    return {k: v / len(problems) for k, v in out.items()} if problems else out


def evaluate(pool: Sequence[dict], key: str) -> dict[str, Any]:
    """All metrics of one verifier (scores under `key` in every sample) on one pool."""
    samples = [s for p in pool for s in p["samples"]]
    step_scores, step_labels = [], []
    for s in samples:
        for sc, y in zip(s["scores"][key], s["labels"]):
            if y is not None:
                step_scores.append(sc)
                step_labels.append(y)
    sol = [(aggregate(s["scores"][key], "last"), bool(s["correct"])) for s in samples if s["scores"][key]]
    within, mixed = within_problem_auroc(pool, key)
    return {
        "within_auroc": within,
        "mixed_problems": mixed,
        "step_auroc": auroc(step_scores, step_labels),
        "labelled_steps": len(step_labels),
        "first_error": first_error_metrics(samples, key),
        "solution_auroc": auroc([a for a, _ in sol], [c for _, c in sol]),
        "selection": selection_metrics(pool, key),
    }


# ------------------------------------------------------------------------------------------------
# the pool


@dataclass
class PoolSpec:
    policy: str
    samples: int = 8
    temperature: float = 0.8
    seed: int = 0
    max_solution_tokens: int = 512
    problems_per_call: int = 1  # problems sampled together in one batched call (their samples differ from 1's)
    extra: dict[str, Any] = field(default_factory=dict)

    def key(self, policy_sha: str) -> str:
        parts = [policy_sha, self.samples, self.temperature, self.seed, self.max_solution_tokens]
        if self.problems_per_call != 1:  # the shipped pools (1 per call) keep their names
            parts.append(self.problems_per_call)
        text = json.dumps(parts)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _problem_seed(problem_id: str, seed: int) -> int:
    return int(hashlib.sha256(f"{seed}:{problem_id}".encode()).hexdigest()[:8], 16)


def build_pool(problems: Sequence[Problem], policy, spec: PoolSpec, cache: Path, progress: bool = True) -> list[dict]:
    """Sample spec.samples whole solutions per problem, label them, and append each problem's row to the
    cache file; problems already there are read back. spec.problems_per_call problems share one batched
    call (1: each problem alone, as the shipped pools were sampled)."""
    done: dict[str, dict] = {}
    if cache.is_file():
        for line in cache.read_text().splitlines():
            try:
                row = json.loads(line)
                done[row["id"]] = row
            except (json.JSONDecodeError, KeyError):
                continue  # a truncated last line from a killed run
    cache.parent.mkdir(parents=True, exist_ok=True)
    per_call = max(1, int(spec.problems_per_call))
    todo = [p for p in problems if p.id not in done]
    for start in range(0, len(todo), per_call):
        group = todo[start: start + per_call]
        t0 = time.perf_counter()
        if per_call == 1:
            sols_of = [policy.full_solutions(group[0].question, spec.samples, spec.temperature,
                                             _problem_seed(group[0].id, spec.seed))]
        else:  # one seed per call, from its problems: the same groups give the same samples
            sols_of = policy.full_solutions_many([p.question for p in group], spec.samples, spec.temperature,
                                                 _problem_seed("+".join(p.id for p in group), spec.seed))
        seconds = (time.perf_counter() - t0) / len(group)
        for prob, sols in zip(group, sols_of):
            samples = []
            for steps, tokens, reason in sols:
                answer = extract_answer("\n\n".join(steps))
                correct = bool(is_correct(answer, prob.gold))
                samples.append({"steps": steps, "tokens": tokens, "finish": reason, "answer": answer,
                                "correct": correct, "labels": label_steps(prob, steps)})
            row = {"id": prob.id, "question": prob.question, "gold": prob.gold, "source": prob.source,
                   "level": prob.level, "samples": samples, "seconds": seconds}
            with open(cache, "a") as f:
                f.write(json.dumps(row) + "\n")
            done[prob.id] = row
            if progress:
                print(f"pool {len(done)}/{len(problems)} {prob.id}: {sum(s['correct'] for s in samples)}/{len(samples)} "
                      f"correct, {row['seconds']:.0f} s", file=sys.stderr)
    return [done[p.id] for p in problems]


def score_pool(pool: list[dict], key: str, verifier, after_each=None, problems: dict | None = None) -> float:
    """Every sample's per-step scores under `key` (one verifier call per problem). Returns seconds.
    after_each(row, seconds so far) runs after each problem (prm-eval saves there, so a killed
    run resumes). problems (id -> Problem): a verifier that reads the problem (the oracle's `bind`)
    gets each row's own."""
    t0 = time.perf_counter()
    for row in pool:
        if problems is not None and hasattr(verifier, "bind") and row["id"] in problems:
            verifier = verifier.bind(problems[row["id"]])
        scores = verifier.score(row["question"], [s["steps"] for s in row["samples"]])
        for s, sc in zip(row["samples"], scores):
            s.setdefault("scores", {})[key] = [float(x) for x in sc]
        if after_each is not None:
            after_each(row, time.perf_counter() - t0)
    return time.perf_counter() - t0


class StepFeatureCache:
    """Every step's features of a pool's rows (verifiers/step_features.py), one forward pass per row, kept
    on disk: the probe and the trained PRM read the same pass, and train-prm keeps its training rows the
    same way. A file holds the row's [steps of all samples, F] and the seconds its pass took."""

    def __init__(self, backend, prompt_fn, folder: Path, key: str, layers: Sequence) -> None:
        self.backend, self.prompt_fn, self.folder, self.key, self.layers = backend, prompt_fn, Path(folder), key, tuple(layers)

    def path(self, row_id: str) -> Path:
        return self.folder / f"feat-v2-{self.key}-{'-'.join(map(str, self.layers))}-{row_id}.pt"

    def get(self, row: dict) -> tuple[list[torch.Tensor], float]:
        """(per sample [its steps, F], seconds of the pass: 0 when read back from a file without them)."""
        import torch

        x, seconds = self.matrix(row)
        return list(torch.split(x, [len(s["steps"]) for s in row["samples"]])), seconds

    def matrix(self, row: dict) -> tuple[torch.Tensor, float]:
        """The row's [steps of all samples, F] in sample order, and the seconds of its pass."""
        import torch

        path = self.path(row["id"])
        x, seconds = None, 0.0
        if path.is_file():
            try:
                got = torch.load(path)
                x, seconds = (got["features"], float(got.get("seconds", 0.0))) if isinstance(got, dict) else (got, 0.0)
            except Exception:  # noqa: BLE001 - a file cut short by a kill (any unpickling error): computed again
                x = None
        lengths = [len(s["steps"]) for s in row["samples"]]
        if x is None or x.shape[0] != sum(lengths):
            from ..verifiers.step_features import step_features

            t0 = time.perf_counter()
            per = step_features(self.backend, self.prompt_fn, row["question"], [s["steps"] for s in row["samples"]],
                                self.layers)
            seconds = time.perf_counter() - t0
            x = torch.cat(per) if per else torch.zeros((0, 1))
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            torch.save({"features": x, "seconds": seconds}, tmp)
            tmp.replace(path)
        return x, seconds


def score_pool_from_features(pool: list[dict], key: str, verifier, features: StepFeatureCache, after_each=None) -> float:
    """score_pool for a head on the policy's states (probe, prm): each row's scores read off its cached
    step features. Returns seconds: the rows' feature passes (once each, whoever ran them) plus the head."""
    total = 0.0
    for row in pool:
        per, seconds = features.get(row)
        t0 = time.perf_counter()
        scores = verifier.score_from_features(per, features.layers, [s["steps"] for s in row["samples"]])
        total += seconds + time.perf_counter() - t0
        for s, sc in zip(row["samples"], scores):
            s.setdefault("scores", {})[key] = [float(x) for x in sc]
        if after_each is not None:
            after_each(row, total)
    return total


def verifier_fingerprint(name: str, policy: str) -> str:
    """What identifies a verifier's version beyond its name: a trained head's weights (retrained = new)."""
    from ..verifiers.learned_prm import prm_paths
    from ..verifiers.probe import probe_paths

    base = name.split("+")[-1]
    if base not in ("probe", "prm"):
        return ""
    weights = (probe_paths if base == "probe" else prm_paths)(policy)[0]
    return hashlib.sha256(weights.read_bytes()).hexdigest()[:16] if weights.is_file() else "missing"


class ScoreStore:
    """Every verifier's step scores on a pool, beside the pool file (<pool>.scores.json), so a later
    prm-eval adds verifiers without rescoring the others, and `arith+X` combines stored scores."""

    def __init__(self, pool_file: Path) -> None:
        self.path = Path(pool_file).with_suffix(".scores.json")
        try:
            self.data: dict[str, Any] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}

    def _entry(self, name: str, fingerprint: str = "") -> dict | None:
        """The stored entry of `name`; None if never scored or scored by another version of the
        verifier (a retrained probe)."""
        got = self.data.get(name)
        return got if isinstance(got, dict) and got.get("fingerprint", "") == fingerprint else None

    def _valid(self, pool: list[dict], name: str, fingerprint: str = "") -> dict[str, list] | None:
        """Stored scores of the pool's problems that have them, shaped like their samples; None if
        there is no entry for this verifier version."""
        got = self._entry(name, fingerprint)
        if got is None:
            return None
        by_id = got.get("scores", {})
        out = {}
        for row in pool:
            sc = by_id.get(row["id"])
            if isinstance(sc, list) and len(sc) == len(row["samples"]) and all(
                    len(x) == len(s["steps"]) for x, s in zip(sc, row["samples"])):
                out[row["id"]] = sc
        return out

    def _complete(self, pool: list[dict], name: str, fingerprint: str = "") -> dict | None:
        valid = self._valid(pool, name, fingerprint)
        return self.data[name] if valid is not None and len(valid) == len(pool) else None

    def attach(self, pool: list[dict], name: str, fingerprint: str = "") -> float | None:
        """Put the stored scores of `name` on the pool's samples; their scoring seconds, or None if
        any problem lacks them or they came from another version (`fingerprint`) of the verifier."""
        got = self._complete(pool, name, fingerprint)
        if got is None:
            return None
        for row in pool:
            for s, sc in zip(row["samples"], got["scores"][row["id"]]):
                s.setdefault("scores", {})[name] = sc
        return float(got.get("seconds", 0.0))

    def attach_veto(self, pool: list[dict], name: str, fingerprint: str = "") -> float | None:
        """`arith+X` from stored arith and X scores (the same numbers ArithVetoVerifier computes)."""
        from ..verifiers.arith_veto import veto

        inner = name[len("arith+"):]
        if self._complete(pool, inner, fingerprint) is None:
            return None
        from ..verifiers.arith import ArithVerifier

        arith = ArithVerifier()
        for row in pool:
            a = arith.score(row["question"], [s["steps"] for s in row["samples"]])
            for s, sc, ar in zip(row["samples"], self.data[inner]["scores"][row["id"]], a):
                s.setdefault("scores", {})[name] = veto([ar], [sc])[0]
        return float(self.data[inner].get("seconds", 0.0))

    def resume(self, pool: list[dict], name: str, fingerprint: str = "") -> tuple[float, list[dict]]:
        """Attach the stored scores of the problems that have them; (their seconds, the rows still
        to score). A slow verifier (the 1.5B judge) then continues where a killed run stopped."""
        valid = self._valid(pool, name, fingerprint)
        if not valid:
            return 0.0, list(pool)
        todo = [row for row in pool if row["id"] not in valid]
        for row in pool:
            for s, x in zip(row["samples"], valid.get(row["id"], ())):
                s.setdefault("scores", {})[name] = x
        return float(self.data[name].get("seconds", 0.0)), todo

    def save(self, rows: list[dict], name: str, seconds: float, fingerprint: str = "") -> None:
        """Store these rows' scores (merged with the others stored for the same verifier version);
        `seconds` = all scoring time so far."""
        got = self._entry(name, fingerprint) or {"scores": {}}
        got.update(seconds=seconds, fingerprint=fingerprint)
        got["scores"].update({row["id"]: [s["scores"][name] for s in row["samples"]] for row in rows})
        self.data[name] = got
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        tmp.replace(self.path)


# ------------------------------------------------------------------------------------------------
# command


def add_prm_eval_args(p: argparse.ArgumentParser) -> None:
    from ..models import DEFAULT_POLICY

    p.add_argument("--policy", default=DEFAULT_POLICY)
    p.add_argument("--verifiers", default="arith,self-judge",
                   help="comma list; self-judge@MODEL uses another judge model, e.g. self-judge@qwen2.5-coder-1.5b")
    p.add_argument("--levels", default="1,2,3,4,5")
    p.add_argument("--per-level", type=int, default=8, help="generated arithmetic stories per level")
    p.add_argument("--import", dest="import_file", help="instead: ProcessBench's metric on a local ProcessBench "
                                                         "file (.jsonl / .json / .parquet) for each verifier")
    p.add_argument("--limit", type=int, help="with --import: at most this many rows")
    p.add_argument("--word-per-level", type=int, default=0,
                   help="generated GSM8K-like word problems per level (same seed), a set of their own")
    p.add_argument("--problems-per-call", type=int, default=1,
                   help="problems sampled in one batched call (faster on a CPU; another pool than 1)")
    p.add_argument("--problem-seed", type=int, default=PROBLEM_SEED)
    p.add_argument("--gsm8k", default="../shared/data/gsm8k_test.jsonl", help="GSM8K JSONL for the slice (skipped if absent)")
    p.add_argument("--gsm8k-count", type=int, default=16)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--rescore", action="store_true", help="score again even where the pool's .scores.json has them")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default="runs/prm-eval", help="folder for the cached pools")
    p.add_argument("--features", default="runs/prm-features",
                   help="folder for the per-problem step features the probe and the trained PRM read")
    p.add_argument("--out", default="runs/prm-eval/report.json")


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


def processbench_eval(rows: Sequence[dict], verifiers: dict[str, Any], threshold: float = 0.5) -> dict[str, Any]:
    """ProcessBench's metric for each verifier on imported rows (imports/processbench.py): every row's
    steps scored in one call, the predicted earliest error = the first step below the threshold."""
    from ..imports.processbench import processbench_metric, processbench_trace

    traces = [processbench_trace(r, where=f"row {i}") for i, r in enumerate(rows)]
    labels = [t.root.extra["imported"]["label"] for t in traces]
    out: dict[str, Any] = {"rows": len(rows), "verifiers": {}}
    for name, v in verifiers.items():
        t0 = time.perf_counter()
        scores = [v.score(t.question, [t.steps(t.nodes[-1].id)])[0] for t in traces]
        out["verifiers"][name] = {**processbench_metric(labels, scores, threshold),
                                  "seconds": time.perf_counter() - t0}
    return out


def cmd_prm_eval_import(args) -> int:
    """prm-eval --import FILE: ProcessBench's F1 for each named verifier on a local ProcessBench file."""
    from ..imports.rows import read_rows
    from ..verifiers import make_verifier

    names = [v.strip() for v in args.verifiers.split(",") if v.strip()]
    backend, pool_models = None, None
    if any(n not in ("arith",) for n in names):  # a model-backed verifier needs the policy loaded
        from ..backends.transformers_backend import TransformersBackend
        from ..models import ModelPool

        pool_models = ModelPool()
        backend = TransformersBackend.from_loaded(pool_models.get(args.policy))
    verifiers = {n: make_verifier(n, pool_models, backend) for n in names}
    report = processbench_eval(read_rows(args.import_file, args.limit), verifiers)
    for name, m in report["verifiers"].items():
        print(f"{name}: F1 {_fmt(m['f1'])} (erroneous {_fmt(m['acc_erroneous'])} of {m['erroneous']}, "
              f"correct {_fmt(m['acc_correct'])} of {m['correct']})", file=sys.stderr)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps({"rows": report["rows"], **{k: v["f1"] for k, v in report["verifiers"].items()}}))
    return 0


def cmd_prm_eval(args) -> int:
    if getattr(args, "import_file", None):
        return cmd_prm_eval_import(args)
    from ..backends.transformers_backend import TransformersBackend
    from ..models import ModelPool
    from ..policy import StepPolicy
    from ..verifiers import make_verifier
    from ..verifiers.step_features import default_layers

    pool_models = ModelPool()
    lm = pool_models.get(args.policy)
    backend = TransformersBackend.from_loaded(lm)
    policy = StepPolicy(backend, max_solution_tokens=512)
    spec = PoolSpec(policy=args.policy, samples=args.samples, seed=args.seed, problems_per_call=args.problems_per_call)
    sha = str(lm.meta.get("sha256") or args.policy)
    sets: dict[str, list[Problem]] = {}
    levels = tuple(int(x) for x in args.levels.split(","))
    sets["arith"] = arith_problem_set(levels, args.per_level, args.problem_seed)
    if args.word_per_level > 0:
        from ..word_problems import word_problem_set

        sets["word"] = word_problem_set(levels, args.word_per_level, args.problem_seed)
    if args.gsm8k and Path(args.gsm8k).is_file() and args.gsm8k_count > 0:
        sets["gsm8k"] = load_jsonl(args.gsm8k)[: args.gsm8k_count]
    else:
        why = "--gsm8k-count is 0" if args.gsm8k_count <= 0 else f"{args.gsm8k} not found"
        print(f"GSM8K slice skipped: {why}", file=sys.stderr)
    try:  # an earlier report on the same pools keeps the verifiers (and sets) this run does not redo
        earlier_report = json.loads(Path(args.out).read_text())
        earlier = earlier_report.get("sets", {}) if earlier_report.get("policy_sha256") == sha else {}
    except (OSError, ValueError, AttributeError):
        earlier = {}
    report: dict[str, Any] = {"policy": args.policy, "policy_sha256": sha, "pool": spec.__dict__,
                              "sets": {k: v for k, v in earlier.items() if k not in sets}}
    names = [v.strip() for v in args.verifiers.split(",") if v.strip()]
    scored: dict[str, list[dict]] = {}
    for set_name, problems in sets.items():
        if not problems:
            continue
        tag = f"{set_name}-{args.problem_seed if set_name in ('arith', 'word') else 'test'}-{len(problems)}"
        cache = Path(args.cache) / f"pool-{spec.key(sha)}-{tag}.jsonl"
        pool = build_pool(problems, policy, spec, cache)
        entry: dict[str, Any] = {"problems": len(pool), "samples": sum(len(p["samples"]) for p in pool),
                                 "pool_file": str(cache), "verifiers": {}}
        if earlier.get(set_name, {}).get("pool_file") == str(cache):
            entry["verifiers"].update(earlier[set_name].get("verifiers", {}))
        stored = ScoreStore(cache)
        features = StepFeatureCache(backend, policy.prompt, Path(args.features), spec.key(sha),
                                    default_layers(backend.model.config.num_hidden_layers))
        for name in names:
            how = "read back"
            fp = verifier_fingerprint(name, args.policy)
            seconds = None if args.rescore else stored.attach(pool, name, fp)
            if seconds is None and name.startswith("arith+") and not args.rescore:
                seconds = stored.attach_veto(pool, name, fp)
                how = "combined from stored scores"
            if seconds is None:
                prior, todo = (0.0, pool) if args.rescore else stored.resume(pool, name, fp)
                backend.prefix_store.clear()
                save = lambda row, t, name=name, prior=prior, fp=fp: stored.save([row], name, prior + t, fp)  # noqa: E731
                by_id = {p.id: p for p in problems}
                verifier = make_verifier(name, pool_models, backend, problem=problems[0] if problems else None)
                if hasattr(verifier, "score_from_features"):  # probe / prm: one shared pass per problem
                    seconds = prior + score_pool_from_features(todo, name, verifier, features, after_each=save)
                    how = "read off the shared step features: "
                else:
                    seconds = prior + score_pool(todo, name, verifier, after_each=save, problems=by_id)
                    how = ""
                how += f"scored {len(todo)} problems" + (f" (the other {len(pool) - len(todo)} read back)" if len(todo) < len(pool) else "")
            entry["verifiers"][name] = {**evaluate(pool, name), "seconds": seconds}
            print(f"{set_name}: {how} with {name} ({seconds:.0f} s of scoring)", file=sys.stderr)
        report["sets"][set_name] = entry
        scored[set_name] = pool
    if "arith" in scored and "word" in scored:  # the generated held-out set as one: stories and word problems
        both = scored["arith"] + scored["word"]
        report["sets"]["generated"] = {
            "problems": len(both), "samples": sum(len(p["samples"]) for p in both),
            "pool_file": " + ".join(report["sets"][k]["pool_file"] for k in ("arith", "word")),
            "verifiers": {name: {**evaluate(both, name), "seconds": sum(report["sets"][k]["verifiers"][name]["seconds"]
                                                                         for k in ("arith", "word"))}
                          for name in names}}
    _print_table(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"JSON: {args.out}")
    return 0


def _print_table(report: dict) -> None:
    head = ["set", "verifier", "within AUROC (mixed)", "step AUROC", "1st-err F1", "sol AUROC", "best@N", "wbest@N", "maj@N", "pass@1", "pass@N"]
    lines = [head]
    for set_name, entry in report["sets"].items():
        for name, m in entry["verifiers"].items():
            sel = m["selection"]
            within = f"{_fmt(m.get('within_auroc'))} ({m.get('mixed_problems', '-')})"
            lines.append([f"{set_name} ({entry['problems']}x{entry['samples'] // max(entry['problems'], 1)})", name,
                          within, _fmt(m["step_auroc"]), _fmt(m["first_error"]["f1"]), _fmt(m["solution_auroc"]),
                          _fmt(sel["best"]), _fmt(sel["weighted"]), _fmt(sel["majority"]),
                          _fmt(sel["pass@1"]), _fmt(sel["pass@n"])])
    widths = [max(len(str(r[i])) for r in lines) for i in range(len(head))]
    for r in lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
