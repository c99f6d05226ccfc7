"""The model-server backend against a real llama.cpp `llama-server` serving the embedded tiny GGUF
(built once per machine by scripts/build-llama-server.sh, which `make test` runs first): a beam
search and a self-judge pass, checked against the same contract as the in-process backend."""

from __future__ import annotations

import pytest

from tts_viz import models
from tts_viz.backends.llama_server import LlamaServer, build_binary
from tts_viz.backends.openai_backend import OpenAIBackend
from tts_viz.backends.transformers_backend import TransformersBackend
from tts_viz.runner import RunConfig, run_search
from tts_viz.strategies.base import SearchConfig
from tts_viz.trace import DONE, Trace
from tts_viz.verifiers import SelfJudgeVerifier

pytestmark = pytest.mark.integration

TINY = "smollm2-135m"
QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"


@pytest.fixture(scope="module")
def server():
    if not models.is_installed(TINY):
        pytest.skip(f"{TINY} is not installed")
    with LlamaServer.start(TINY, slots=4, ctx_per_slot=1024, binary=build_binary()) as srv:
        yield srv


def beam(policy: str, pool=None):
    cfg = RunConfig(question=QUESTION, gold="7", policy=policy, verifier="self-judge", strategy="beam",
                    search=SearchConfig(n=4, width=2, max_rounds=2, seed=1), max_step_tokens=24)
    return run_search(cfg, pool=pool or models.ModelPool())


def test_beam_search_through_llama_server_keeps_the_in_process_contract(server):
    trace = beam(server.policy_name)
    assert trace.status == DONE, trace.error
    assert trace.policy == server.policy_name
    first = trace.children(0)
    assert len(first) == 4  # the round's four rows, sent at once to four slots
    assert all(0.0 <= n.step_score <= 1.0 for n in first)
    assert all(0 < n.tokens <= 24 for n in first)  # token counts from the server's usage
    assert len({n.text for n in first}) > 1  # a seed per row: not four copies of one sample
    assert sum(n.status == "pruned" for n in first if n.finish_reason is None) <= 2
    pol = trace.compute["policy"]
    assert pol.generated_tokens == sum(n.tokens for n in trace.nodes)
    assert pol.prompt_tokens > 0 and trace.compute["verifier"].prompt_tokens > 0
    assert Trace.from_json(trace.to_json()).to_dict() == trace.to_dict()
    # the same run in process has the same shape of record
    local = beam(TINY)
    assert local.status == DONE
    assert set(trace.to_dict()) == set(local.to_dict())
    assert set(trace.compute) == set(local.compute) == {"policy", "verifier"}
    assert len(trace.children(0)) == len(local.children(0))
    # the second round continues the kept partial solutions from the server's slot caches
    assert pol.reused_tokens > 0
    # the CPU share says whether another program slowed a search here; a served policy computes elsewhere
    assert trace.cpu_share is None and (local.cpu_share is not None) == (local.seconds >= 2.0)


def test_self_judge_through_llama_server_agrees_with_the_in_process_judge(server):
    """The server's top-20 next-token logprobs give P(Yes) / (P(Yes) + P(No)) of the same GGUF.
    Not bit-equal: llama.cpp runs the Q4_1 weights with 8-bit activations, transformers the
    dequantised weights in float. Seen: gaps up to 0.017 on this model, 0.05 on the 0.5B; 0.1 allows both."""
    solutions = [["3 + 4 = 7.", "The answer is \\boxed{7}."], ["3 + 4 = 9."]]
    served = SelfJudgeVerifier(OpenAIBackend.from_name(server.policy_name)).score(QUESTION, solutions)
    local = SelfJudgeVerifier(TransformersBackend.from_loaded(models.load_embedded(TINY))).score(QUESTION, solutions)
    assert [len(s) for s in served] == [2, 1]
    assert all(0.0 < x < 1.0 for row in served for x in row)
    assert [x for row in served for x in row] == pytest.approx([x for row in local for x in row], abs=0.1)


def test_deepconf_reads_the_servers_token_logprobs_and_filters_after_writing(server):
    """llama-server returns each sampled token's log-probability; DeepConf reads them (a confidence in
    (0, 1] on every sample, not all equal) and, since a server answers a request whole, filters the
    later samples after they are written instead of abandoning them."""
    import math

    cfg = RunConfig(question=QUESTION, gold="7", policy=server.policy_name, verifier="none", strategy="deepconf",
                    search=SearchConfig(n=4, seed=2), max_solution_tokens=96)
    trace = run_search(cfg, pool=models.ModelPool())
    assert trace.status == DONE, trace.error
    info = trace.root.extra["deepconf"]
    assert info["early_stop"] is False and info["abandoned"] == 0  # nothing is cut mid-way on a server
    confs = [n.extra["confidence"] for n in trace.nodes if "confidence" in n.extra]
    assert len(confs) == 4 and all(0.0 < c <= 1.0 for c in confs) and len(set(confs)) > 1
    assert info["tokens_spent"] == sum(n.extra["tokens_written"] for n in trace.nodes if "tokens_written" in n.extra)
    assert 0 < info["threshold"] <= max(confs) and not math.isnan(info["threshold"])
