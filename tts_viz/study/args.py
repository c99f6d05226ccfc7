"""Command-line options shared by `run` (cli.py) and `sweep`: model and sampling settings."""

from __future__ import annotations

import argparse

from ..models import DEFAULT_POLICY, EMBEDDED


def add_generation_args(p: argparse.ArgumentParser) -> None:
    """Model and sampling options shared by `run` and `sweep`; defaults come from RunConfig/SearchConfig."""
    from ..runner import RunConfig
    from ..strategies.base import SearchConfig
    from ..verifiers import DEFAULT_VERIFIER, FALLBACK_VERIFIER, VERIFIERS, check_verifier_name

    def verifier_arg(text: str) -> str:
        try:
            check_verifier_name(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return text

    run_defaults, search_defaults = RunConfig(question=""), SearchConfig()
    p.add_argument("--policy", default=DEFAULT_POLICY, help=f"embedded: {', '.join(EMBEDDED)}; a hub id (GPU); or a model server, openai:MODEL@URL")
    p.add_argument("--verifier", default=None, type=verifier_arg,
                   help=f"{', '.join(VERIFIERS)}; arith+X (arithmetic veto); oracle@AUROC (noisy oracle, e.g. oracle@0.75). "
                        f"Default: {DEFAULT_VERIFIER} where one is trained for the policy, else {FALLBACK_VERIFIER}")
    p.add_argument("--judge", help="model for self-judge (default: the policy itself)")
    p.add_argument("--quant", choices=["nf4", "none"], default=run_defaults.quant,
                   help="precision of the models loaded here: nf4 = bitsandbytes 4-bit (CPU or CUDA); "
                        "default: bf16 / int8 weights on a CPU, nf4 for hub models on CUDA ($TTS_VIZ_QUANT)")
    p.add_argument("--temperature", type=float, default=search_defaults.temperature)
    p.add_argument("--seed", type=int, default=search_defaults.seed)
    p.add_argument("--aggregation", default=search_defaults.aggregation, choices=["last", "min", "prod"])
    p.add_argument("--max-rounds", type=int, default=search_defaults.max_rounds)
    p.add_argument("--max-step-tokens", type=int, default=run_defaults.max_step_tokens)
    p.add_argument("--max-solution-tokens", type=int, default=run_defaults.max_solution_tokens)
