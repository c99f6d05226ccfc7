"""`python -m tts_viz bench`: one run that measures what makes search fast on this machine.

1. harness vs raw: the backend's batched generation against transformers' model.generate on the
   same prompts, batch size and token count;
2. prefix reuse: beam search N=16, width 4 on a GSM8K problem, with the prefix KV store vs
   re-prefilling every partial solution each round; the re-prefill run replays the tokens the
   reuse run sampled, so the tree is the same (the bench checks it); a forward hook counts the tokens the model really ran, to check the trace's
   token and FLOP accounting;
3. verifier scoring of 16 solutions (self-judge on the policy): one batched call vs one per solution;
4. cold vs warm start, each in a fresh process: first load from the packaged GGUF (into an empty
   cache folder) vs a later load from the warm cache;
5. peak resident memory of a process holding what the app holds: gradio, the policy, the verifiers;
7. with --nf4 (or --only-nf4): bitsandbytes NF4 against the default precision, each in a fresh
   process: decode tok/s at batch 1 and 16, peak resident memory, and the next-token KL and top-1
   agreement over a GSM8K prompt and solution (teacher-forced, every position);
8. with --attention (or --only-attention): the same beam search decoding with the grouped-query
   kernel (backends/grouped_attention.py, the CPU default) against transformers' sdpa, replaying one
   run's tokens so both build the same tree; and decode tok/s at 16 rows after a long prompt;
9. with --merge (or --only-merge): a small sweep (generated problems, a pool of 4, beam and DVTS
   at 4, arith) run one problem at a time and then all at once (--problem-concurrency: the
   problems' decode steps share one batch, backends/merged_decode.py), seconds and accuracy of each;
   and the Compare tab's pair (beam and DVTS at N=8) one after the other vs at once;
6. with --server: the same beam search through llama.cpp's llama-server (16 slots, prompt cache on,
   the same GGUF) against the in-process backend, and single-stream decode tok/s of both.

Prints a table of ratios and writes every figure to JSON. Timings are wall seconds on this
machine; run it on a quiet machine (another busy process on 2 cores halves every figure).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {
    "harness_vs_raw": ">= 0.9",
    "prefix_reuse_speedup": ">= 1.5",
    "warm_start_seconds": "<= 10",
}


def add_bench_args(p: argparse.ArgumentParser) -> None:
    from ..models import DEFAULT_POLICY

    p.add_argument("--policy", default=DEFAULT_POLICY)
    p.add_argument("--data", default="../shared/data/gsm8k_test.jsonl",
                   help="GSM8K JSONL for the beam case (a built-in GSM8K-style example when absent)")
    p.add_argument("--index", type=int, default=3)
    p.add_argument("--batch", type=int, default=16, help="rows for harness vs raw generate")
    p.add_argument("--tokens", type=int, default=64, help="new tokens per row for harness vs raw generate")
    p.add_argument("--beam-n", type=int, default=16)
    p.add_argument("--beam-width", type=int, default=4)
    p.add_argument("--rounds", type=int, default=4, help="beam rounds (both paths run the same number)")
    p.add_argument("--skip-start", action="store_true", help="skip cold/warm start (needs ~4 GB of temp disk)")
    p.add_argument("--server", action="store_true", help="also: llama-server against the in-process backend")
    p.add_argument("--only-server", action="store_true", help="only the llama-server comparison")
    p.add_argument("--slots", type=int, default=16, help="llama-server parallel slots")
    p.add_argument("--nf4", action="store_true", help="also: NF4 (bitsandbytes 4-bit) against the default precision")
    p.add_argument("--only-nf4", action="store_true", help="only the NF4 comparison")
    p.add_argument("--prm", action="store_true", help="also: beam under the trained PRM, features reused vs whole passes")
    p.add_argument("--only-prm", action="store_true", help="only the PRM comparison")
    p.add_argument("--attention", action="store_true", help="also: grouped-query decode kernel vs sdpa")
    p.add_argument("--only-attention", action="store_true", help="only the attention comparison")
    p.add_argument("--merge", action="store_true",
                   help="also: a small sweep with problems run at once (decode steps merged) vs one at a time")
    p.add_argument("--only-merge", action="store_true", help="only the merged-decoding sweep comparison")
    p.add_argument("--merge-problems", type=int, default=4,
                   help="generated problems in the merged-decoding sweep (0: only the Compare pair)")
    p.add_argument("--out", default="runs/bench.json")


# ------------------------------------------------------------------------------------------------
class ForwardTokenCounter:
    """Counts the real (unpadded) input positions of every forward pass of a model."""

    def __init__(self, model) -> None:
        self.tokens = 0
        self.calls = 0
        # on the decoder: every pass goes through it (prefill calls it directly, decoding via the LM)
        self._handle = model.get_decoder().register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        width = ids.shape[1]
        self.tokens += int(mask[:, -width:].sum()) if mask is not None else ids.numel()
        self.calls += 1

    def close(self) -> None:
        self._handle.remove()


class ReplayBackend:
    """Wraps a backend to record the tokens each generate call sampled, or to replay them.

    The re-prefill baseline replays the reuse run's tokens, so both runs build the same tree by
    construction (with int8 weights the two prefill paths differ in the last bits and a freshly
    sampled tree would branch differently); it does every forward pass a real run would."""

    def __init__(self, backend, script: list | None = None) -> None:
        self.backend, self.script, self.recorded, self._call = backend, script, [], 0
        self._forced: list[list[int]] = []
        self._decode, self._choose = backend._decode, backend._choose_tokens

    def __enter__(self):
        import torch

        b = self.backend

        def decode(rows, *a, **kw):
            if self.script is not None:
                self._forced = self.script[self._call]
                self._call += 1
            out, merged_seconds = self._decode(rows, *a, **kw)
            self.recorded.append([list(r) for r in out])
            return out, merged_seconds

        def choose(logits, active, step, temperature, top_p, **kw):
            if self.script is None:
                return self._choose(logits, active, step, temperature, top_p, **kw)
            return torch.tensor([self._forced[r][step] for r in active], device=logits.device)

        b._decode, b._choose_tokens = decode, choose
        return self

    def __exit__(self, *exc) -> None:
        del self.backend._decode, self.backend._choose_tokens  # back to the class methods


def _beam_problem(args):
    from ..problems import EXAMPLES, load_jsonl

    if args.data and Path(args.data).is_file():
        rows = load_jsonl(args.data)
        return rows[args.index], f"{args.data}#{args.index}"
    return EXAMPLES[0], f"built-in example {EXAMPLES[0].id} ({args.data} not found)"


def bench_harness_vs_raw(backend, policy, batch: int, tokens: int) -> dict:
    import torch

    from ..backends.prefix_cache import PrefixKVStore
    from ..problems import generate_arith

    questions = [generate_arith(1 + i % 5, i, seed=7).question for i in range(batch)]  # distinct prompts
    prompts = [policy.prompt(q) for q in questions]
    backend.prefix_store = PrefixKVStore()
    t0 = time.perf_counter()
    gens = backend.generate(prompts, max_new_tokens=tokens, min_new_tokens=tokens, temperature=0.8, seed=0)
    harness_s = time.perf_counter() - t0
    harness_tokens = sum(g.tokens for g in gens)
    enc = backend.encode(prompts)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.inference_mode():
        seqs = backend.model.generate(
            **enc, do_sample=True, temperature=0.8, top_k=0, top_p=1.0, max_new_tokens=tokens,
            min_new_tokens=tokens, pad_token_id=backend.pad_id, eos_token_id=backend.eos_ids,
        )
    raw_s = time.perf_counter() - t0
    raw_tokens = int((seqs[:, enc["input_ids"].shape[1]:] != backend.pad_id).sum())
    return {
        "batch": batch, "new_tokens_per_row": tokens, "prompt_tokens": int(enc["attention_mask"].sum()),
        "harness_seconds": harness_s, "harness_tokens": harness_tokens, "harness_tok_s": harness_tokens / harness_s,
        "raw_seconds": raw_s, "raw_tokens": raw_tokens, "raw_tok_s": raw_tokens / raw_s,
        "ratio": (harness_tokens / harness_s) / (raw_tokens / raw_s),
    }


def _beam_config(args, verifier: str):
    """Beam N x width for args.rounds rounds on the bench's problem: (RunConfig, where it came from)."""
    from ..runner import RunConfig
    from ..strategies.base import SearchConfig

    problem, where = _beam_problem(args)
    cfg = RunConfig(question=problem.question, gold=problem.gold, policy=args.policy, verifier=verifier,
                    strategy="beam", search=SearchConfig(n=args.beam_n, width=args.beam_width, seed=0,
                                                         max_rounds=args.rounds))
    return cfg, where


def _replayed_beam(backend, cfg, script, what: str, store: bool = True, verifier_for=None, count_tokens: bool = False):
    """One beam run of cfg on backend, replaying `script` (the tokens of an earlier run; None samples):
    (trace, the tokens it drew, a ForwardTokenCounter of the model's passes when count_tokens). A fresh
    prefix store unless store=False (every prompt prefilled in full); verifier_for(backend) builds
    the verifier (None: cfg.verifier from the pool)."""
    from ..backends.prefix_cache import PrefixKVStore
    from ..policy import StepPolicy
    from ..runner import run_search

    backend.prefix_store = PrefixKVStore() if store else None
    policy = StepPolicy(backend, max_step_tokens=cfg.max_step_tokens, max_steps=cfg.search.max_rounds,
                        max_solution_tokens=cfg.max_solution_tokens)
    verifier = verifier_for(backend) if verifier_for is not None else None  # built on this backend
    counter = ForwardTokenCounter(backend.model) if count_tokens else None
    try:
        with ReplayBackend(backend, script) as replay:
            trace = run_search(cfg, policy=policy, verifier=verifier)
    finally:
        if counter is not None:
            counter.close()
    if trace.error:
        raise RuntimeError(f"beam search failed ({what}): {trace.error}")
    return trace, replay.recorded, counter


def bench_prefix_reuse(backend, args) -> tuple[dict, object]:
    cfg, where = _beam_config(args, "arith")
    runs, script = {}, None
    for mode in ("reuse", "re-prefill"):
        trace, script, counter = _replayed_beam(backend, cfg, script, mode, store=mode == "reuse",
                                                count_tokens=True)
        mc = trace.compute["policy"]
        rows = len(trace.nodes) - 1  # one generated row per node
        runs[mode] = {
            "seconds": trace.seconds, "rounds": trace.rounds, "nodes": len(trace.nodes),
            "answer": trace.final_answer, "correct": trace.correct,
            "trace_prompt_tokens": mc.prompt_tokens, "trace_generated_tokens": mc.generated_tokens,
            "trace_reused_tokens": mc.reused_tokens, "trace_flops": mc.flops,
            "forward_tokens_counted": counter.tokens, "forward_calls": counter.calls,
            # every row's last sampled token is never run through the model
            "accounting_gap": mc.prompt_tokens + mc.generated_tokens - rows - counter.tokens,
            "texts": [n.text for n in trace.nodes],
        }
        runs[mode]["_trace"] = trace
    same_tree = runs["reuse"]["texts"] == runs["re-prefill"]["texts"]
    reuse_trace = runs["reuse"].pop("_trace")
    runs["re-prefill"].pop("_trace")
    for r in runs.values():
        r.pop("texts")
    per_token = {m: r["seconds"] / r["trace_generated_tokens"] for m, r in runs.items()}
    return {
        "problem": where, "n": args.beam_n, "width": args.beam_width, "max_rounds": args.rounds,
        "verifier": "arith", "same_tree": same_tree, **{k.replace("-", "_"): v for k, v in runs.items()},
        "speedup": runs["re-prefill"]["seconds"] / runs["reuse"]["seconds"],
        "speedup_per_generated_token": per_token["re-prefill"] / per_token["reuse"],
    }, reuse_trace


def bench_prm(backend, args) -> dict:
    """Beam search N x width under the trained PRM: its features reused across rounds (step memo +
    the policy's prefix store) against one whole pass per candidate each round. The baseline replays
    tokens of a first (warm-up) run, so both score the very same tree; the largest step-score difference
    between the two says what reuse changes in the numbers (bf16 / int8 paths differ in the last bits)."""
    from ..verifiers import make_verifier

    cfg, where = _beam_config(args, "prm")
    runs, script, scores = {}, None, {}
    # the first run samples (and warms the process up); the compared two replay its tokens
    for mode in ("first", "whole-pass", "reuse"):
        def prm(backend, reuse=mode != "whole-pass"):
            verifier = make_verifier("prm", policy_backend=backend)
            verifier.reuse = reuse
            return verifier

        trace, script, _ = _replayed_beam(backend, cfg, script, f"prm, {mode}", verifier_for=prm)
        vc, pc = trace.compute["verifier"], trace.compute["policy"]
        scores[mode] = [n.step_score for n in trace.nodes]
        runs[mode] = {"seconds": trace.seconds, "verifier_seconds": vc.seconds, "policy_seconds": pc.seconds,
                      "verifier_tokens_run": vc.prompt_tokens, "verifier_tokens_reused": vc.reused_tokens,
                      "nodes": len(trace.nodes), "answer": trace.final_answer, "correct": trace.correct,
                      "texts": [n.text for n in trace.nodes]}
    runs.pop("first")
    same_tree = runs["reuse"].pop("texts") == runs["whole-pass"].pop("texts")
    diffs = [abs(a - b) for a, b in zip(scores["reuse"], scores["whole-pass"]) if a is not None and b is not None]
    r, w = runs["reuse"], runs["whole-pass"]
    return {"problem": where, "n": args.beam_n, "width": args.beam_width, "max_rounds": args.rounds,
            "same_tree": same_tree, "reuse": r, "whole_pass": w, "max_step_score_diff": max(diffs, default=0.0),
            "speedup": w["seconds"] / r["seconds"],
            "verifier_speedup": w["verifier_seconds"] / max(r["verifier_seconds"], 1e-9)}


def _prm_rows(pr: dict) -> list:
    r, w = pr["reuse"], pr["whole_pass"]
    return [
        ("beam N=%d M=%d, %d rounds, prm: whole pass / reuse" % (pr["n"], pr["width"], pr["max_rounds"]),
         f"{w['seconds']:.1f} s / {r['seconds']:.1f} s (same tree: {pr['same_tree']})", pr["speedup"], ""),
        ("  the PRM's own seconds: whole pass / reuse",
         f"{w['verifier_seconds']:.1f} s / {r['verifier_seconds']:.1f} s "
         f"({w['verifier_tokens_run']} / {r['verifier_tokens_run']} tokens run)", pr["verifier_speedup"],
         f"max step-score diff {pr['max_step_score_diff']:.4f}"),
    ]


def bench_attention(backend, args) -> dict:
    """Decoding with the grouped-query kernel against sdpa: beam N x width with the arith verifier
    (a warm-up run samples; the two compared runs replay its tokens, so the tree is the same), and
    generation of 64 tokens on 16 rows after a long prompt (the question 6 times: 269 tokens for
    GSM8K #3). Prefill runs sdpa in both."""
    from ..backends.grouped_attention import NAME, use_grouped_decode
    from ..backends.prefix_cache import PrefixKVStore
    from ..policy import StepPolicy

    model = backend.model
    if model.config._attn_implementation != NAME and not use_grouped_decode(model):
        return {"skipped": f"{args.policy} has no grouped KV heads or does not run on sdpa"}
    cfg, where = _beam_config(args, "arith")
    long_prompt = StepPolicy(backend).prompt(" ".join([cfg.question] * 6))
    beam, decode, script = {}, {}, None
    try:
        for mode, impl in (("warm-up", NAME), ("sdpa", "sdpa"), ("grouped", NAME)):
            model.set_attn_implementation(impl)
            trace, recorded, _ = _replayed_beam(backend, cfg, script, mode)
            script = script or recorded
            if mode == "warm-up":
                continue
            beam[mode] = {"seconds": trace.seconds, "generated_tokens": trace.compute["policy"].generated_tokens,
                          "texts": [n.text for n in trace.nodes]}
            backend.prefix_store = PrefixKVStore()
            t0 = time.perf_counter()
            gens = backend.generate([long_prompt] * 16, max_new_tokens=64, min_new_tokens=64, seed=0)
            dt = time.perf_counter() - t0
            decode[mode] = {"seconds": dt, "tok_s": sum(g.tokens for g in gens) / dt,
                            "prompt_tokens": backend.count_tokens(long_prompt)}
    finally:
        model.set_attn_implementation(NAME)
    same_tree = beam["sdpa"].pop("texts") == beam["grouped"].pop("texts")
    return {"problem": where, "n": args.beam_n, "width": args.beam_width, "max_rounds": args.rounds,
            "same_tree": same_tree, "beam": beam, "decode_16_rows": decode,
            "beam_speedup": beam["sdpa"]["seconds"] / beam["grouped"]["seconds"],
            "decode_speedup": decode["grouped"]["tok_s"] / decode["sdpa"]["tok_s"]}


def _attention_rows(at: dict) -> list:
    if "skipped" in at:
        return [("grouped-query decode vs sdpa", at["skipped"], None, "")]
    b, d = at["beam"], at["decode_16_rows"]
    return [
        ("beam N=%d M=%d, %d rounds: sdpa / grouped decode" % (at["n"], at["width"], at["max_rounds"]),
         f"{b['sdpa']['seconds']:.1f} s / {b['grouped']['seconds']:.1f} s (same tree: {at['same_tree']})",
         at["beam_speedup"], ""),
        ("16 rows x 64 tokens after a %d-token prompt: grouped / sdpa" % d["grouped"]["prompt_tokens"],
         f"{d['grouped']['tok_s']:.1f} / {d['sdpa']['tok_s']:.1f} tok/s", at["decode_speedup"], ""),
    ]


def bench_server(backend, args) -> dict:
    """Beam search N, width M through llama-server vs in process, same problem, seed and verifier
    (arith: instant, so the policy is what is timed). The trees differ (each samples its own way),
    so seconds per generated token are reported beside the wall seconds. Then single-stream decode
    of 128 tokens on each (EOS ignored)."""
    import httpx

    from ..backends.llama_server import LlamaServer
    from ..backends.prefix_cache import PrefixKVStore
    from ..models import ModelPool
    from ..policy import StepPolicy
    from ..runner import RunConfig, run_search
    from ..strategies.base import SearchConfig

    problem, where = _beam_problem(args)
    out: dict = {"problem": where, "n": args.beam_n, "width": args.beam_width, "max_rounds": args.rounds,
                 "slots": args.slots}
    with LlamaServer.start(args.policy, slots=args.slots) as srv:
        out["llama_server"] = {"binary": str(srv.proc.args[0]), "policy": srv.policy_name}
        for mode, policy_name in (("in_process", args.policy), ("llama_server", srv.policy_name)):
            cfg = RunConfig(question=problem.question, gold=problem.gold, policy=policy_name, verifier="arith",
                            strategy="beam", search=SearchConfig(n=args.beam_n, width=args.beam_width, seed=0,
                                                                 max_rounds=args.rounds))
            if mode == "in_process":
                backend.prefix_store = PrefixKVStore()
                trace = run_search(cfg, policy=StepPolicy(backend, max_step_tokens=cfg.max_step_tokens,
                                                          max_steps=cfg.search.max_rounds,
                                                          max_solution_tokens=cfg.max_solution_tokens))
            else:
                trace = run_search(cfg, pool=ModelPool())
            if trace.error:
                raise RuntimeError(f"beam search failed ({mode}): {trace.error}")
            mc = trace.compute["policy"]
            out.setdefault(mode, {}).update({
                "seconds": trace.seconds, "nodes": len(trace.nodes), "answer": trace.final_answer,
                "correct": trace.correct, "generated_tokens": mc.generated_tokens, "prompt_tokens": mc.prompt_tokens,
                "reused_tokens": mc.reused_tokens, "generated_tok_s": mc.generated_tokens / trace.seconds})
        prompt = StepPolicy(backend).prompt("Write a long story about a cat.")
        backend.generate([prompt], 4)
        t0 = time.perf_counter()
        g = backend.generate([prompt], 128, min_new_tokens=128)
        out["in_process"]["single_stream_tok_s"] = g[0].tokens / (time.perf_counter() - t0)
        body = {"model": args.policy, "prompt": prompt, "max_tokens": 128, "ignore_eos": True, "temperature": 0.8,
                "seed": 1, "cache_prompt": True}
        httpx.post(srv.url + "/v1/completions", json=dict(body, max_tokens=4), timeout=300)
        t0 = time.perf_counter()
        r = httpx.post(srv.url + "/v1/completions", json=body, timeout=300).json()
        out["llama_server"]["single_stream_tok_s"] = r["usage"]["completion_tokens"] / (time.perf_counter() - t0)
        out["llama_server"]["server_decode_tok_s"] = (r.get("timings") or {}).get("predicted_per_second")
    a, b = out["in_process"], out["llama_server"]
    out["beam_seconds_ratio_server_over_in_process"] = b["seconds"] / a["seconds"]
    out["beam_per_token_ratio_server_over_in_process"] = (b["seconds"] / b["generated_tokens"]) / (
        a["seconds"] / a["generated_tokens"])
    out["single_stream_ratio_server_over_in_process"] = b["single_stream_tok_s"] / a["single_stream_tok_s"]
    return out


def bench_verifier(backend, trace) -> dict:
    from ..backends.prefix_cache import PrefixKVStore
    from ..verifiers import SelfJudgeVerifier

    leaves = sorted((n for n in trace.nodes if n.id and not trace.children(n.id)), key=lambda n: -n.depth)[:16]
    solutions = [trace.steps(n.id) for n in leaves]
    judge = SelfJudgeVerifier(backend)
    out = {"solutions": len(solutions), "steps_scored": sum(len(s) for s in solutions)}
    for mode in ("batched", "per_solution", "per_solution_no_reuse"):
        backend.prefix_store = None if mode == "per_solution_no_reuse" else PrefixKVStore()
        t0 = time.perf_counter()
        if mode == "batched":
            scores = judge.score(trace.question, solutions)
        else:
            scores = [judge.score(trace.question, [s])[0] for s in solutions]
        out[mode + "_seconds"] = time.perf_counter() - t0
        out[mode + "_scores"] = scores
    diff = max(abs(a - b) for sa, sb in zip(out["batched_scores"], out["per_solution_no_reuse_scores"])
               for a, b in zip(sa, sb))
    for mode in ("batched", "per_solution", "per_solution_no_reuse"):
        out.pop(mode + "_scores")
    out["max_score_difference"] = diff
    out["speedup_vs_per_solution"] = out["per_solution_seconds"] / out["batched_seconds"]
    out["speedup_vs_per_solution_no_reuse"] = out["per_solution_no_reuse_seconds"] / out["batched_seconds"]
    return out


_LOAD_SNIPPET = """
import json, resource, sys, time
t0 = time.perf_counter()
from tts_viz import models
t1 = time.perf_counter()
lm = models.load_embedded(sys.argv[1])
print(json.dumps({"source": lm.source, "load_seconds": lm.load_seconds, "import_seconds": t1 - t0,
                  "process_seconds": time.perf_counter() - t0, "meta": lm.meta,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_PRECISION_SNIPPET = """
import json, resource, sys, time
import torch
from tts_viz import models
from tts_viz.backends.transformers_backend import TransformersBackend
from tts_viz.policy import StepPolicy
name, quant, text_file, out_file = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
lm = models.load_embedded(name, quant=None if quant == "default" else quant)
b = TransformersBackend.from_loaded(lm)
b.prefix_store = None  # decode speed of the model itself
prompt = StepPolicy(b).prompt("Write a long story about a cat.")
out = {"precision": models.precision_label(lm.model)}
b.generate([prompt], 4)
for batch in (1, 16):
    t0 = time.perf_counter()
    g = b.generate([prompt] * batch, 64, min_new_tokens=64, seed=1)
    out[f"decode_tok_s_batch{batch}"] = sum(x.tokens for x in g) / (time.perf_counter() - t0)
ids = lm.tokenizer(open(text_file).read(), return_tensors="pt", add_special_tokens=False)["input_ids"]
with torch.inference_mode():
    logits = lm.model(input_ids=ids.to(b.device)).logits[0].float().cpu()
torch.save(torch.log_softmax(logits, -1), out_file)
out["tokens_scored"] = int(ids.shape[1])
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def bench_nf4(args) -> dict:
    """NF4 against the default precision of the policy, each in a fresh process (clean memory)."""
    import torch

    from .. import models
    from ..policy import StepPolicy

    problem, where = _beam_problem(args)
    tok = models.embedded_tokenizer(args.policy)

    class _TokOnly:  # chat_prompt for the text, without loading a model here
        name, params = args.policy, 0

        def chat_prompt(self, messages, continuation=""):
            return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) + continuation

    solution = None
    if args.data and Path(args.data).is_file():  # GSM8K's own worked solution, its "#### x" as \boxed{x}
        raw = json.loads(Path(args.data).read_text().splitlines()[args.index]).get("answer", "")
        if "####" in raw:
            work, ans = raw.rsplit("####", 1)
            solution = work.strip().replace("\n", "\n\n") + "\n\nTherefore, the final answer is: $\\boxed{" + ans.strip() + "}$."
    text = StepPolicy(_TokOnly()).prompt(problem.question) + (solution or
        "Let's compute step by step.\n\nFirst, we find the total.\n\nTherefore, the final answer is: $\\boxed{"
        + str(problem.gold) + "}$.")
    out: dict = {"problem": where}
    with tempfile.TemporaryDirectory(prefix="tts-viz-nf4-") as tmp:
        Path(tmp, "text.txt").write_text(text)
        for quant in ("default", "nf4"):
            out[quant] = _child(_PRECISION_SNIPPET, args.policy, extra_args=[quant, f"{tmp}/text.txt", f"{tmp}/{quant}.pt"])
        p, q = torch.load(f"{tmp}/default.pt"), torch.load(f"{tmp}/nf4.pt")
    kl = (p.exp() * (p - q)).sum(-1)  # KL(default || nf4) at each position
    out["next_token_kl_mean"] = float(kl.mean())
    out["next_token_kl_max"] = float(kl.max())
    out["top1_agreement"] = float((p.argmax(-1) == q.argmax(-1)).float().mean())
    out["positions"] = int(p.shape[0])
    for k in ("decode_tok_s_batch1", "decode_tok_s_batch16", "peak_rss_mb"):
        out[k + "_ratio_nf4_over_default"] = out["nf4"][k] / out["default"][k]
    return out


def _nf4_rows(nv: dict) -> list:
    a, b = nv["default"], nv["nf4"]
    return [
        (f"decode batch 1: nf4 / default ({a['precision']})", f"{b['decode_tok_s_batch1']:.1f} / {a['decode_tok_s_batch1']:.1f} tok/s",
         nv["decode_tok_s_batch1_ratio_nf4_over_default"], ""),
        ("decode batch 16: nf4 / default", f"{b['decode_tok_s_batch16']:.1f} / {a['decode_tok_s_batch16']:.1f} tok/s",
         nv["decode_tok_s_batch16_ratio_nf4_over_default"], ""),
        ("peak RSS: nf4 / default", f"{b['peak_rss_mb']:,.0f} / {a['peak_rss_mb']:,.0f} MB", nv["peak_rss_mb_ratio_nf4_over_default"], ""),
        (f"next-token KL(default || nf4), {nv['positions']} positions", f"mean {nv['next_token_kl_mean']:.4f}, max {nv['next_token_kl_max']:.3f} nats",
         None, ""),
        ("top-1 agreement", f"{nv['top1_agreement']:.3f}", None, ""),
    ]


_APP_SNIPPET = """
import json, resource, sys
import gradio  # what the app imports
from tts_viz.models import ModelPool
from tts_viz.runner import RunConfig, run_search
from tts_viz.strategies.base import SearchConfig
pool = ModelPool()
out = {}
for verifier in ("arith", "self-judge"):
    cfg = RunConfig(question="A shop sells 12 pens at 3 dollars each and 5 books at 7 dollars each. How much is that?",
                    gold="71", policy=sys.argv[1], verifier=verifier, strategy="beam",
                    search=SearchConfig(n=8, width=4, max_rounds=2))
    trace = run_search(cfg, pool=pool)
    out[verifier] = trace.status
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def _child(snippet: str, policy: str, env: dict | None = None, extra_args: list[str] | None = None) -> dict:
    proc = subprocess.run([sys.executable, "-c", snippet, policy, *(extra_args or [])], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=Path(__file__).resolve().parents[2])
    if proc.returncode != 0:
        raise RuntimeError(f"child process failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_start(policy: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="tts-viz-bench-cache-") as tmp:
        cold = _child(_LOAD_SNIPPET, policy, {"TTS_VIZ_CACHE": tmp})
        warm = _child(_LOAD_SNIPPET, policy, {"TTS_VIZ_CACHE": tmp})
    return {"cold": cold, "warm": warm, "cold_seconds": cold["load_seconds"], "warm_seconds": warm["load_seconds"],
            "speedup": cold["load_seconds"] / warm["load_seconds"]}


def _fmt(x, digits=2) -> str:
    return f"{x:,.{digits}f}" if isinstance(x, float) else str(x)


def cmd_bench(args) -> int:
    import torch

    from .. import models
    from ..backends.transformers_backend import TransformersBackend
    from ..policy import StepPolicy

    report: dict = {"policy": args.policy, "cpu_count": os.cpu_count(), "torch_threads": None, "targets": TARGETS}
    started = time.perf_counter()
    if args.only_server:
        return _server_only(args, report, started)
    if args.only_prm:
        lm = models.load_embedded(args.policy)
        report["torch_threads"] = torch.get_num_threads()
        report["prm"] = bench_prm(TransformersBackend.from_loaded(lm), args)
        return _finish_one_part(args, report, started, _prm_rows(report["prm"]))
    if args.only_attention:
        lm = models.load_embedded(args.policy)
        report["torch_threads"] = torch.get_num_threads()
        report["attention"] = bench_attention(TransformersBackend.from_loaded(lm), args)
        return _finish_one_part(args, report, started, _attention_rows(report["attention"]))
    if args.only_merge:
        report["torch_threads"] = torch.get_num_threads()
        report["merge"] = bench_merged_sweep(args)
        return _finish_one_part(args, report, started, _merge_rows(report["merge"]))
    if args.only_nf4:
        report["nf4"] = bench_nf4(args)
        return _finish_one_part(args, report, started, _nf4_rows(report["nf4"]))
    if not args.skip_start:
        print("cold / warm start (fresh processes, empty cache folder)...", file=sys.stderr)
        report["start"] = bench_start(args.policy)
    lm = models.load_embedded(args.policy)
    report["torch_threads"] = torch.get_num_threads()
    report["model"] = {"dtype": lm.meta.get("dtype"), "cpu_quant": lm.meta.get("cpu_quant"), "params": lm.params}
    backend = TransformersBackend.from_loaded(lm)  # on a CPU this switches decoding to the grouped kernel
    report["model"]["attn_implementation"] = lm.model.config._attn_implementation
    policy = StepPolicy(backend)
    print(f"harness vs raw generate at batch {args.batch}...", file=sys.stderr)
    report["harness"] = bench_harness_vs_raw(backend, policy, args.batch, args.tokens)
    print(f"beam N={args.beam_n} width {args.beam_width}: prefix reuse vs re-prefill...", file=sys.stderr)
    report["prefix_reuse"], trace = bench_prefix_reuse(backend, args)
    print("verifier: batched vs per solution...", file=sys.stderr)
    report["verifier"] = bench_verifier(backend, trace)
    if args.prm:
        print("beam under the trained PRM: reuse vs whole passes...", file=sys.stderr)
        report["prm"] = bench_prm(backend, args)
    if args.attention:
        print("grouped-query decode vs sdpa...", file=sys.stderr)
        report["attention"] = bench_attention(backend, args)
    if args.merge:
        print("sweep: problems at once (merged decoding) vs one at a time...", file=sys.stderr)
        report["merge"] = bench_merged_sweep(args)
    if args.server:
        print("beam through llama-server vs in process...", file=sys.stderr)
        report["server"] = bench_server(backend, args)
    del backend, policy, lm
    if args.nf4:
        print("nf4 vs the default precision (fresh processes)...", file=sys.stderr)
        report["nf4"] = bench_nf4(args)
    print("peak memory of an app-like process...", file=sys.stderr)
    report["app_memory"] = _child(_APP_SNIPPET, args.policy)
    report["bench_seconds"] = time.perf_counter() - started

    h, p, v = report["harness"], report["prefix_reuse"], report["verifier"]
    rows = [
        ("harness vs raw generate, batch %d x %d tokens" % (h["batch"], h["new_tokens_per_row"]),
         f"{h['harness_tok_s']:.1f} vs {h['raw_tok_s']:.1f} tok/s", h["ratio"], TARGETS["harness_vs_raw"]),
        ("beam N=%d M=%d, %d rounds: re-prefill / reuse" % (p["n"], p["width"], p["max_rounds"]),
         f"{p['re_prefill']['seconds']:.1f} s / {p['reuse']['seconds']:.1f} s (same tree: {p['same_tree']})",
         p["speedup"], TARGETS["prefix_reuse_speedup"]),
    ]
    rows += [
        ("self-judge on %d solutions: per-solution / batched" % v["solutions"],
         f"{v['per_solution_seconds']:.1f} s / {v['batched_seconds']:.1f} s", v["speedup_vs_per_solution"], ""),
        ("  same, per-solution without prefix reuse", f"{v['per_solution_no_reuse_seconds']:.1f} s",
         v["speedup_vs_per_solution_no_reuse"], ""),
    ]
    if "start" in report:
        s = report["start"]
        rows.append(("cold (GGUF) / warm start to a loaded model",
                     f"{s['cold_seconds']:.1f} s / {s['warm_seconds']:.1f} s (warm process {s['warm']['process_seconds']:.1f} s)",
                     s["speedup"],
                     "warm " + TARGETS["warm_start_seconds"] + " s"))
    rows.append(("peak RSS, app-like process (policy + verifiers)", f"{report['app_memory']['peak_rss_mb']:,.0f} MB", None, ""))
    acct = p["reuse"]
    rows.append(("token accounting: trace - hook (= rows never run)",
                 f"{acct['trace_prompt_tokens'] + acct['trace_generated_tokens']} - {acct['forward_tokens_counted']}",
                 None, f"gap {acct['accounting_gap']} (0 = exact)"))
    if "prm" in report:
        rows += _prm_rows(report["prm"])
    if "attention" in report:
        rows += _attention_rows(report["attention"])
    if "merge" in report:
        rows += _merge_rows(report["merge"])
    if "server" in report:
        rows += _server_rows(report["server"])
    if "nf4" in report:
        rows += _nf4_rows(report["nf4"])
    _print_rows(rows)
    print(f"\nmodel: {report['model']}, torch threads {report['torch_threads']}, bench {report['bench_seconds']:.0f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    print(f"JSON: {args.out}")
    return 0


def bench_merged_sweep(args) -> dict:
    """The same small sweep run one problem at a time and with every problem at once (their decode
    steps merged into one batch), each into its own results file: wall seconds, generated tokens,
    accuracy. Samples may differ between the two (bf16 rounds differently at another batch size)."""
    from .sweep import SweepConfig, parse_strategies, run_sweep
    from ..results import load_results

    if args.merge_problems <= 0:  # only the Compare pair
        return {"compare": bench_compare_pair(args)}
    k = max(2, args.merge_problems)
    out: dict = {"problems": k, "strategies": "pool x4, beam:width=4 and dvts at 4", "verifier": "arith"}
    with tempfile.TemporaryDirectory() as tmp:
        for name, concurrency in (("one_at_a_time", 1), ("at_once", k)):
            cfg = SweepConfig(results=f"{tmp}/{name}.jsonl", problem_set="arith", levels=(1, 2, 3, 4, 5), per_level=2,
                              split="test", strategies=parse_strategies("beam,dvts"), budgets=(4,), policy=args.policy,
                              verifier="arith", limit=k, concurrency=concurrency)
            t0 = time.perf_counter()
            summary = run_sweep(cfg, progress=False)
            seconds = time.perf_counter() - t0
            written = load_results(cfg.results)
            rows = [r for r in written if r.get("strategy") != "pool"]
            gen = sum(int(r.get("generated_tokens") or 0) for r in written)
            out[name] = {"seconds": round(seconds, 1), "runs": summary["runs"], "generated_tokens": gen,
                         "generated_tok_s": round(gen / seconds, 1), "correct": sum(bool(r.get("correct")) for r in rows),
                         "rows": len(rows), "merged_decodes": summary.get("merged_decodes"),
                         "merged_requests": summary.get("merged_requests")}
            print(f"  {name}: {out[name]}", file=sys.stderr)
    out["speedup"] = round(out["one_at_a_time"]["seconds"] / out["at_once"]["seconds"], 2)
    out["per_token_speedup"] = round(out["at_once"]["generated_tok_s"] / out["one_at_a_time"]["generated_tok_s"], 2)
    out["compare"] = bench_compare_pair(args)
    return out


def bench_compare_pair(args) -> dict:
    """The Compare tab's case: beam and DVTS at N=8 (width 4, arith) on the bench's problem, one after
    the other and then at once (runner.iter_searches), wall seconds of the pair."""
    from ..runner import iter_searches, run_search
    from ..strategies.base import SearchConfig

    cfg, where = _beam_config(args, "arith")
    cfgs = [dataclasses.replace(cfg, strategy=s, search=SearchConfig(n=8, width=4, seed=0)) for s in ("beam", "dvts")]
    t0 = time.perf_counter()
    alone = [run_search(c) for c in cfgs]
    seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    together = {i: t for i, t, final in iter_searches(cfgs) if final}
    both = time.perf_counter() - t0
    return {"problem": where, "pair": "beam and dvts, N=8, width 4, arith", "one_after_the_other_seconds": round(seq, 1),
            "at_once_seconds": round(both, 1), "speedup": round(seq / both, 2),
            "answers_alone": [t.final_answer for t in alone], "answers_at_once": [together[i].final_answer for i in (0, 1)]}


def _merge_rows(m: dict) -> list:
    if "one_at_a_time" not in m:
        return _compare_rows(m)
    a, b = m["one_at_a_time"], m["at_once"]
    return [
        ("sweep of %d problems: one at a time / at once (merged decode)" % m["problems"],
         f"{a['seconds']:.0f} s / {b['seconds']:.0f} s (correct {a['correct']}/{a['rows']} vs {b['correct']}/{b['rows']})",
         m["speedup"], ""),
        ("  same, generated tok/s", f"{a['generated_tok_s']:.1f} / {b['generated_tok_s']:.1f}", m["per_token_speedup"], ""),
    ] + _compare_rows(m)


def _compare_rows(m: dict) -> list:
    if "compare" not in m:
        return []
    c = m["compare"]
    return [("Compare's pair (%s): one after the other / at once" % c["pair"],
             f"{c['one_after_the_other_seconds']:.0f} s / {c['at_once_seconds']:.0f} s", c["speedup"], "")]


def _finish_one_part(args, report: dict, started: float, rows: list) -> int:
    """A bench of one part (--only-prm, --only-nf4, --only-attention): its rows printed, the report written."""
    report["bench_seconds"] = time.perf_counter() - started
    _print_rows(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    print(f"JSON: {args.out}")
    return 0


def _server_rows(sv: dict) -> list:
    a, b = sv["in_process"], sv["llama_server"]
    return [
        ("beam N=%d M=%d, %d rounds: llama-server / in process" % (sv["n"], sv["width"], sv["max_rounds"]),
         f"{b['seconds']:.1f} s / {a['seconds']:.1f} s ({b['generated_tokens']} / {a['generated_tokens']} tokens)",
         sv["beam_seconds_ratio_server_over_in_process"], "<= 1 favours the server"),
        ("  same, seconds per generated token", f"{b['generated_tok_s']:.1f} / {a['generated_tok_s']:.1f} tok/s",
         sv["beam_per_token_ratio_server_over_in_process"], ""),
        ("single-stream decode: llama-server / in process",
         f"{b['single_stream_tok_s']:.1f} / {a['single_stream_tok_s']:.1f} tok/s",
         sv["single_stream_ratio_server_over_in_process"], ""),
    ]


def _server_only(args, report: dict, started: float) -> int:
    import torch

    from .. import models
    from ..backends.transformers_backend import TransformersBackend

    lm = models.load_embedded(args.policy)
    report["torch_threads"] = torch.get_num_threads()
    report["model"] = {"dtype": lm.meta.get("dtype"), "cpu_quant": lm.meta.get("cpu_quant"), "params": lm.params}
    report["server"] = bench_server(TransformersBackend.from_loaded(lm), args)
    report["bench_seconds"] = time.perf_counter() - started
    _print_rows(_server_rows(report["server"]))
    print(f"\nmodel: {report['model']}, bench {report['bench_seconds']:.0f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    print(f"JSON: {args.out}")
    return 0


def _print_rows(rows) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure'.ljust(width)}  {'figures'.ljust(44)}  {'ratio':>6}  target")
    for name, figures, ratio, target in rows:
        print(f"{name.ljust(width)}  {figures.ljust(44)}  {_fmt(ratio) if ratio is not None else '':>6}  {target}")
