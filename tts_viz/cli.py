"""`python -m tts_viz run ...`: one search from the command line (also `sweep` and `fit-table`, see
study/sweep.py; `bench`, `prm-eval`, `train-probe`: the study/ package).

Progress goes to stderr; stdout gets exactly one JSON line (answer, correct, strategy, n,
tokens, flops, seconds, trace path), so the command composes with shell pipelines.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path



def _problem_from_args(args):
    from .problems import Problem, get_problem, load_jsonl

    if args.question is not None:
        return Problem(id="custom", question=args.question, gold=args.gold, source="custom")
    if args.data:
        rows = load_jsonl(args.data)
        if not 0 <= args.index < len(rows):
            raise ValueError(f"--index {args.index} is out of range: {args.data} has {len(rows)} problems.")
        return rows[args.index]
    return get_problem(args.problem_set, args.index, level=args.level, seed=args.problem_seed)


def add_run_args(p: argparse.ArgumentParser) -> None:
    from .strategies import STRATEGIES
    from .strategies.base import SearchConfig
    from .strategies.mcts import EVALUATIONS as MCTS_EVALUATIONS
    from .study.args import add_generation_args

    src = p.add_argument_group("problem (one of)")
    src.add_argument("--question", help="problem text")
    src.add_argument("--gold", help="gold answer for --question (optional)")
    src.add_argument("--data", help="local JSONL file (GSM8K or MATH-500 rows)")
    src.add_argument("--problem-set", default="arith", choices=["arith", "word", "example", "gsm8k", "math500"])
    src.add_argument("--level", type=int, help="difficulty level 1-5 (arith, math500)")
    src.add_argument("--index", type=int, default=0)
    src.add_argument("--problem-seed", type=int, default=0, help="seed of the arith / word generators")
    add_generation_args(p)
    p.add_argument("--strategy", default="beam", choices=list(STRATEGIES))
    p.add_argument("--n", type=int, default=8, help="budget: number of full generations")
    p.add_argument("--width", type=int, default=4, help="beam width M (beam, dvts, lookahead)")
    p.add_argument("--lookahead", type=int, default=1)
    p.add_argument("--revision-length", type=int, default=4)
    search_defaults = SearchConfig()
    p.add_argument("--particle-temperature", type=float, default=search_defaults.particle_temperature,
                   help="particle-filter / particle-gibbs: weights are softmax(score / T)")
    p.add_argument("--ess-threshold", type=float, default=search_defaults.ess_threshold,
                   help="particle-filter / particle-gibbs: resample when ESS < this x the open particles")
    p.add_argument("--exploration", type=float, default=search_defaults.exploration, help="mcts: UCT's c")
    p.add_argument("--mcts-evaluation", choices=tuple(MCTS_EVALUATIONS), default=search_defaults.mcts_evaluation,
                   help="mcts: value a new step by a sampled rollout to a finished solution, or by its path score")
    p.add_argument("--confidence-keep", type=float, default=search_defaults.confidence_keep,
                   help="deepconf: share of the warm-up samples that sets the confidence threshold")
    p.add_argument("--vote-confidence", type=float, default=search_defaults.vote_confidence,
                   help="early-stop-vote: also stop when the leader beats the runner-up with this posterior "
                        "probability (1 = only when the vote can no longer change)")
    p.add_argument("--out", help="write the trace JSON here")


def cmd_run(args) -> int:
    from tqdm import tqdm

    from .runner import RunConfig, run_search
    from .strategies.base import SearchConfig

    problem = _problem_from_args(args)
    cfg = RunConfig(
        question=problem.question,
        gold=problem.gold,
        policy=args.policy,
        verifier=args.verifier,
        judge=args.judge,
        quant=args.quant,
        intermediates=list(problem.intermediates),
        strategy=args.strategy,
        search=SearchConfig(
            n=args.n, width=args.width, lookahead=args.lookahead, revision_length=args.revision_length,
            temperature=args.temperature, seed=args.seed, aggregation=args.aggregation, max_rounds=args.max_rounds,
            particle_temperature=args.particle_temperature, ess_threshold=args.ess_threshold,
            exploration=args.exploration, mcts_evaluation=args.mcts_evaluation, confidence_keep=args.confidence_keep,
            vote_confidence=args.vote_confidence,
        ),
        max_step_tokens=args.max_step_tokens,
        max_solution_tokens=args.max_solution_tokens,
    )
    cfg.validate()
    bar = tqdm(desc=f"{args.strategy} N={args.n}", unit="round", file=sys.stderr)

    def progress(trace):
        t = trace.totals()
        bar.set_postfix(nodes=len(trace.nodes), tokens=t.generated_tokens, finished=len(trace.finished()))
        bar.update(1)

    trace = run_search(cfg, on_progress=progress)
    bar.close()
    out = args.out
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        trace.save(out)
    totals = trace.totals()
    result = {
        "problem": problem.id,
        "answer": trace.final_answer,
        "gold": trace.gold,
        "correct": trace.correct,
        "strategy": trace.strategy,
        "n": cfg.search.n,
        "status": trace.status,
        "tokens": totals.prompt_tokens + totals.generated_tokens,
        "generated_tokens": totals.generated_tokens,
        "flops": totals.flops,
        "seconds": round(trace.seconds, 2),
        "load_seconds": round(trace.load_seconds, 2),
        "trace": out,
    }
    if trace.error:
        result["error"] = trace.error
    print(json.dumps(result))
    return 0 if trace.status in ("done", "cancelled") else 1


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("TTS_VIZ_LOG", "WARNING"))
    parser = argparse.ArgumentParser(prog="python -m tts_viz", description="tts-viz: test-time compute explorer")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one search and write its trace")
    add_run_args(run)
    run.set_defaults(func=cmd_run)
    from .imports import command as import_command
    from .study import bench, prm_eval, sweep, train_probe, train_prm

    for name, add_args, command, what in [
        ("sweep", sweep.add_sweep_args, sweep.cmd_sweep, "run strategies x budgets on a problem split; append results to JSONL"),
        ("fit-table", sweep.add_fit_args, sweep.cmd_fit_table, "fit the compute-optimal strategy table from sweep results"),
        ("scaling-report", sweep.add_report_args, sweep.cmd_scaling_report, "the scaling study's tables as Markdown (README)"),
        ("bench", bench.add_bench_args, bench.cmd_bench, "measure harness throughput, prefix reuse, batched scoring, start time, memory"),
        ("prm-eval", prm_eval.add_prm_eval_args, prm_eval.cmd_prm_eval, "evaluate verifiers on a cached pool of sampled solutions"),
        ("train-probe", train_probe.add_train_probe_args, train_probe.cmd_train_probe, "train the on-policy value probe verifier from a seed"),
        ("export", import_command.add_export_args, import_command.cmd_export, "write a trace as llm-reasoners TreeLog JSON or a search-and-learn row"),
        ("import", import_command.add_import_args, import_command.cmd_import, "open search-and-learn or ProcessBench rows as traces (one JSON per problem)"),
        ("train-prm", train_prm.add_train_prm_args, train_prm.cmd_train_prm, "train the PRM for within-problem selection (features, ranking losses, CV)"),
    ]:
        sub_parser = sub.add_parser(name, help=what)
        add_args(sub_parser)
        sub_parser.set_defaults(func=command)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, IndexError, RuntimeError) as e:  # RunError, ModelError, bad data: a message, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
