"""Verifiers (PRMs): one protocol (base.py), one file per family.

`make_verifier` builds one by name. Model-backed verifiers are cached in the ModelPool so
every run shares one copy; self-judge reuses the policy's backend unless told to use another
model (e.g. the 1.5B judging the 0.5B).
"""

from __future__ import annotations

from .arith import ArithVerifier
from .arith_veto import ArithVetoVerifier
from .base import AGGREGATIONS, Verifier, VerifierBase, aggregate
from .oracle import ORACLE, ORACLE_LABEL, OracleError, OracleVerifier, oracle_label, oracle_name, parse_oracle
from .probe import probe_paths
from .self_judge import SelfJudgeVerifier
from ..models import DEFAULT_POLICY

# name -> (description, hub id of the default checkpoint or None)
VERIFIERS: dict[str, tuple[str, str | None]] = {
    "self-judge": ("a chat model asked 'is the last step correct?' (P(Yes), one prefill)", None),
    "arith": ("recomputes every a op b = c exactly; instant, arithmetic only", None),
    "qwen2.5-math-prm": ("Qwen2.5-Math-PRM-7B (hub, GPU)", "Qwen/Qwen2.5-Math-PRM-7B"),
    "rlhflow": ("RLHFlow Llama3.1-8B PRM (hub, GPU)", "RLHFlow/Llama3.1-8B-PRM-Deepseek-Data"),
    "math-shepherd": ("Math-Shepherd Mistral-7B PRM (hub, GPU)", "peiyi9979/math-shepherd-mistral-7b-prm"),
    "skywork": ("Skywork-o1-Open-PRM-Qwen-2.5-1.5B (hub)", "Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B"),
    "confidence": ("the policy's own token confidence: its weakest 16-token stretch so far (DeepConf; no training)",
                   None),
    "none": ("no verifier (majority vote / revisions only)", None),
}
# The PRM trained for within-problem selection (train-prm), once its head is in assets/.
from .learned_prm import prm_paths  # noqa: E402

if prm_paths(DEFAULT_POLICY)[0].is_file():
    VERIFIERS["prm"] = ("PRM on the policy's own hidden states, trained to rank the samples of one problem", None)
    VERIFIERS["arith+prm"] = ("the trained PRM's scores, set to 0 from the first wrong equation on", None)
# The on-policy probe is offered once a head is trained for the default policy (train-probe).
if probe_paths(DEFAULT_POLICY)[0].is_file():
    VERIFIERS["probe"] = ("value head on the policy's own hidden states (trained on its rollouts)", None)
    VERIFIERS["arith+probe"] = ("the probe's scores, set to 0 from the first wrong equation on", None)
VERIFIERS["arith+self-judge"] = ("self-judge's scores, set to 0 from the first wrong equation on", None)
# Needs the gold answer: a teaching and study device, never a real verifier (oracle.py).
VERIFIERS[ORACLE] = (f"{ORACLE_LABEL}: exact step labels and final correctness; oracle@AUROC adds calibrated noise",
                     None)

# Verifiers that read the policy model in process (its hidden states or token probabilities), and with
# self-judge those that need the policy's backend at all (a caller loads it for them).
READS_POLICY_STATES = ("probe", "prm", "confidence")
NEEDS_POLICY = ("self-judge", *READS_POLICY_STATES)

# The one default verifier of the app, the CLI, RunConfig and the sweep: the PRM trained to rank one
# problem's samples (within-problem AUROC 0.86 on 60 held-out generated problems, 0.84 on GSM8K test
# 0-39, where arith has 0.67 / 0.61 and self-judge 0.56). A policy with no trained PRM in assets/
# falls back to arith (instant, arithmetic only): default_verifier(policy).
DEFAULT_VERIFIER = "prm"
FALLBACK_VERIFIER = "arith"
# verifiers that read a head trained on one policy's states (assets/<kind>-<policy>.*)
TRAINED_ON_POLICY = {"prm": prm_paths, "probe": probe_paths}


def base_verifier(name: str) -> str:
    """The verifier an arithmetic veto wraps (arith+X -> X); any other name as it is."""
    return name[len("arith+"):] if name.startswith("arith+") else name


def trained_for(name: str, policy: str | None) -> bool:
    """Whether `name` can run on `policy`: True unless it (or the verifier its arith veto wraps) reads a
    head trained on a policy's states and none is trained for this one."""
    paths = TRAINED_ON_POLICY.get(base_verifier(name))
    return paths is None or bool(policy) and paths(str(policy))[0].is_file()


def default_verifier(policy: str | None = None) -> str:
    """DEFAULT_VERIFIER where it is trained for `policy` (None = the default policy), else FALLBACK_VERIFIER."""
    return DEFAULT_VERIFIER if trained_for(DEFAULT_VERIFIER, policy or DEFAULT_POLICY) else FALLBACK_VERIFIER


def is_oracle(name: str) -> bool:
    return name == ORACLE or name.startswith(ORACLE + "@")


def check_verifier_name(name: str) -> None:
    """ValueError with a message for the user unless `name` is a verifier make_verifier can build."""
    if is_oracle(name):
        parse_oracle(name)
        return
    base = base_verifier(name)
    if name in VERIFIERS or base in VERIFIERS or base.startswith("self-judge@"):
        return
    if base.startswith("openai:"):  # a PRM on a vLLM pooling server (served_prm.py)
        from ..backends.openai_backend import ServerError, parse_server_name
        from .served_prm import served_family

        try:
            served_family(parse_server_name(base)[0])
        except ServerError as e:
            raise ValueError(str(e)) from None
        return
    raise ValueError(f"Unknown verifier '{name}'. Choose one of: {', '.join(VERIFIERS)} (oracle@AUROC for a noisy oracle).")


def verifier_label(name: str) -> str:
    """How views name a verifier: the oracle says that it knows the answer."""
    try:
        return oracle_label(name) if is_oracle(name) else name
    except ValueError:
        return name


def _hub_class(name: str):
    if name == "qwen2.5-math-prm":
        from .qwen_prm import QwenMathPRM as cls
    elif name == "rlhflow":
        from .rlhflow import RLHFlowPRM as cls
    elif name == "math-shepherd":
        from .math_shepherd import MathShepherdPRM as cls
    elif name == "skywork":
        from .skywork import SkyworkPRM as cls
    else:
        raise KeyError(name)
    return cls


def make_verifier(name: str, pool=None, policy_backend=None, judge: str | None = None, problem=None,
                  seed: int = 0, quant: str | None = None):
    """problem (a problems.Problem) and seed are for the oracle: its labels and its noise; quant
    ("nf4") the precision of a verifier model loaded here (hub PRMs, another judge model)."""
    if is_oracle(name):
        return OracleVerifier(problem, parse_oracle(name), seed)
    if name.startswith("arith+"):  # any verifier with the arithmetic veto (arith_veto.py)
        return ArithVetoVerifier(make_verifier(name[len("arith+"):], pool, policy_backend, judge, problem, seed, quant))
    if name == "arith":
        return ArithVerifier()
    if name.startswith("self-judge@"):  # "self-judge@qwen2.5-coder-1.5b": another model judges the policy
        name, judge = "self-judge", name.split("@", 1)[1]
    if name == "self-judge":
        backend = policy_backend
        if judge and (policy_backend is None or judge != policy_backend.name):
            from ..backends import policy_backend as make_backend

            backend = make_backend(judge, pool, quant=quant)
        if backend is None:
            raise ValueError("self-judge needs a model: pass the policy backend or a judge model name.")
        return SelfJudgeVerifier(backend)
    if name.startswith("openai:"):
        from .served_prm import ServedPRM

        return pool.get_verifier(name, lambda: ServedPRM.from_name(name)) if pool is not None else ServedPRM.from_name(name)
    if name in READS_POLICY_STATES and policy_backend is not None and not hasattr(policy_backend, "last_hidden_states"):
        raise ValueError(f"The {name} verifier reads the policy's hidden states, which a model server does not send: "
                         f"run the policy in process (e.g. {DEFAULT_POLICY}) or pick another verifier.")
    if name == "confidence":
        from ..policy import StepPolicy
        from .confidence import ConfidenceVerifier

        if policy_backend is None:
            raise ValueError("The confidence verifier reads the policy's token probabilities: pass the policy backend.")
        return ConfidenceVerifier(policy_backend, StepPolicy(policy_backend).prompt)
    if name == "probe":
        from ..policy import StepPolicy
        from .probe import ProbeVerifier, load_probe

        if policy_backend is None:
            raise ValueError("The probe reads the policy's hidden states: pass the policy backend.")
        sha = pool.get(policy_backend.name).meta.get("sha256") if pool is not None else None
        head, _ = load_probe(policy_backend.name, sha)
        return ProbeVerifier(policy_backend, head, StepPolicy(policy_backend).prompt)
    if name == "prm":
        from ..policy import StepPolicy
        from .learned_prm import LearnedPRM, load_prm

        if policy_backend is None:
            raise ValueError("The trained PRM reads the policy's hidden states: pass the policy backend.")
        sha = pool.get(policy_backend.name).meta.get("sha256") if pool is not None else None
        head, card = load_prm(policy_backend.name, sha)
        return LearnedPRM(policy_backend, head, card["layers"], StepPolicy(policy_backend).prompt,
                          (card.get("candidate") or {}).get("features", "all"), card.get("thresholds"))
    if name in VERIFIERS and VERIFIERS[name][1]:
        key = name if quant in (None, "none") else f"{name}|{quant}"
        return pool.get_verifier(key, lambda: _hub_class(name).from_hub(VERIFIERS[name][1], quant=quant))
    raise ValueError(f"Unknown verifier '{name}'. Choose one of: {', '.join(VERIFIERS)}.")


__all__ = ["VERIFIERS", "DEFAULT_VERIFIER", "FALLBACK_VERIFIER", "default_verifier", "trained_for", "base_verifier", "AGGREGATIONS", "Verifier", "VerifierBase", "aggregate", "make_verifier",
           "check_verifier_name", "is_oracle", "verifier_label", "oracle_name", "OracleError"]
