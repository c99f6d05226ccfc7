"""The 4-bit path on the CPU: tiny randomly initialised models of each architecture, saved to a
folder (the same loading code as a hub id: from_pretrained on a local path), loaded in bitsandbytes
NF4. A beam round through the 4-bit policy, and every PRM adapter's scores read at the right
positions of the 4-bit model and close to the full-precision scores of the same weights."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("bitsandbytes")

from transformers import Qwen2Config, Qwen2ForCausalLM  # noqa: E402

from tests import test_hub_prms as ref  # each family's reference procedure  # noqa: E402
from tests import tiny_models as tiny  # noqa: E402
from tts_viz.models import ModelPool, precision_label  # noqa: E402
from tts_viz.runner import RunConfig, run_search  # noqa: E402
from tts_viz.strategies.base import SearchConfig  # noqa: E402
from tts_viz.trace import DONE, Trace  # noqa: E402
from tts_viz.verifiers.math_shepherd import MathShepherdPRM  # noqa: E402
from tts_viz.verifiers.qwen_prm import QwenMathPRM  # noqa: E402
from tts_viz.verifiers.rlhflow import RLHFlowPRM  # noqa: E402
from tts_viz.verifiers.skywork import SkyworkPRM  # noqa: E402
from tts_viz.viz.panels import summary_html  # noqa: E402

# What these tests pin, and what they cannot:
# - the positions: the 4-bit adapter equals its family's reference procedure run on the same 4-bit
#   model (SAME_MODEL: batching and bf16 rounding), and reading one token off gives other numbers;
# - that 4-bit changes nothing but the weights: the full-precision adapter on a float copy whose
#   weights are the NF4 weights dequantised gives the same scores, up to DEQUANTISED: bitsandbytes'
#   CPU kernel rounds differently from a plain bf16 matmul, and these chaotic wide-init networks
#   amplify it (seen: up to 0.013, 0.015, 0.042, 0.009 for qwen, rlhflow, math-shepherd, skywork);
# - not closeness to the original weights: on random tiny networks (wide init, so positions show)
#   NF4 rounding moves a step score by up to 0.4 (measured), which says nothing about a trained
#   model. The 0.5B's next-token KL and top-1 agreement (bench --nf4) are the real-model figures.
SAME_MODEL = 2e-3
DEQUANTISED = 8e-2


def _is_4bit(model) -> bool:
    return any(type(m).__name__ == "Linear4bit" for m in model.modules())


def _dequantise_into(model4, model_full) -> int:
    """Copy the NF4 weights, dequantised, into the float model's Linear layers (before any 4-bit
    forward: bitsandbytes repacks CPU weights on the first one). Returns the layers copied."""
    import bitsandbytes.functional as bf

    n = 0
    for name, m in model4.named_modules():
        if type(m).__name__ == "Linear4bit":
            w = bf.dequantize_4bit(m.weight.data, m.weight.quant_state).float()
            model_full.get_submodule(name).weight.data.copy_(w.to(model_full.get_submodule(name).weight.dtype))
            n += 1
    return n


def _compare(prm4, prm_full, ref_fn, shifted_fn):
    assert _is_4bit(prm4.model) and not _is_4bit(prm_full.model)
    assert _dequantise_into(prm4.model, prm_full.model) >= 14  # 7 per decoder layer
    got = prm4.score(tiny.QUESTION, tiny.SOLUTIONS)
    same_weights = prm_full.score(tiny.QUESTION, tiny.SOLUTIONS)
    shift_gaps = []
    for sol, g, f in zip(tiny.SOLUTIONS, got, same_weights):
        assert len(g) == len(sol) and all(0.0 <= x <= 1.0 for x in g)
        r = ref_fn(prm4.model, sol)
        assert max(abs(a - b) for a, b in zip(g, r)) <= SAME_MODEL, (g, r)
        # read one token off, the 4-bit scores would be other numbers: the positions are pinned
        off = max(abs(a - b) for a, b in zip(g, shifted_fn(prm4.model, sol)))
        assert off > 2 * SAME_MODEL
        shift_gaps.append(off)
        assert max(abs(a - b) for a, b in zip(g, f)) <= DEQUANTISED, (g, f)
    assert max(shift_gaps) > 0.2


def test_beam_round_through_a_4bit_policy(tmp_path):
    folder = tiny.save_policy(tmp_path / "policy")
    pool = ModelPool()
    cfg = RunConfig(question=tiny.QUESTION, gold="7", policy=folder, verifier="self-judge", strategy="beam",
                    quant="nf4", search=SearchConfig(n=4, width=2, max_rounds=1, seed=1), max_step_tokens=12)
    trace = run_search(cfg, pool=pool)
    assert trace.status == DONE, trace.error
    assert _is_4bit(pool.get(folder, quant="nf4").model)
    assert trace.precision["policy"].startswith("nf4 (bitsandbytes")
    assert trace.precision["verifier"] == trace.precision["policy"]  # self-judge on the same 4-bit model
    first = trace.children(0)
    assert len(first) == 4 and all(0 < n.tokens <= 12 for n in first) and all(0 <= n.step_score <= 1 for n in first)
    assert sum(n.status == "pruned" for n in first if n.finish_reason is None) <= 2
    assert Trace.from_json(trace.to_json()).precision == trace.precision
    assert "nf4 (bitsandbytes" in summary_html(trace)
    # the full-precision run of the same folder says so, and is another model in the pool
    full = run_search(RunConfig(**{**cfg.__dict__, "quant": "none"}), pool=pool)
    assert full.status == DONE and full.precision["policy"] in ("bfloat16", "float32")


def _pair(cls, folder):
    return cls.from_hub(folder, device="cpu", quant="nf4"), cls.from_hub(folder, device="cpu", quant="none")


# family: (adapter, tiny model builder, reference read at the step positions, the same read one token off)
FAMILIES = {
    "qwen2.5-math-prm": (QwenMathPRM, tiny.save_qwen_prm, lambda m, t, s: ref._qwen_card(m, t, s),
                         lambda m, t, s: ref._qwen_card(m, t, s, shift=-1)),
    "rlhflow": (RLHFlowPRM, tiny.save_rlhflow, lambda m, t, s: ref._rlhflow_reference(m, t, s),
                lambda m, t, s: ref._rlhflow_reference(m, t, s, at=-4)),
    "math-shepherd": (MathShepherdPRM, tiny.save_math_shepherd, lambda m, t, s: ref._shepherd_card(m, t, s),
                      lambda m, t, s: ref._shepherd_card(m, t, s, shift=-1)),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_prm_family_in_4bit(tmp_path, family):
    cls, build, read, read_off = FAMILIES[family]
    prm4, full = _pair(cls, build(tmp_path / family))
    _compare(prm4, full, lambda m, s: read(m, prm4.tokenizer, s), lambda m, s: read_off(m, prm4.tokenizer, s))


def test_skywork_prm_in_4bit(tmp_path):
    prm4, full = _pair(SkyworkPRM, tiny.save_skywork(tmp_path / "skywork"))
    assert type(prm4.model.v_head.summary).__name__ == "Linear"  # the head stays float32
    assert torch.equal(prm4.model.v_head.summary.weight, full.model.v_head.summary.weight.float())

    def per_step(m, steps, which=0):
        per_line = ref._skywork_reference(m, prm4.tokenizer, "\n".join(steps))[which]
        ends, n = [], 0
        for s in steps:
            n += len(s.split("\n"))
            ends.append(n - 1)
        return [per_line[i] for i in ends]

    _compare(prm4, full, per_step, lambda m, s: per_step(m, s, which=1))


def test_precision_labels():
    m = Qwen2ForCausalLM(tiny.small_config(Qwen2Config, 64)).eval()
    assert precision_label(m) == "float32"
    assert precision_label(m.to(torch.bfloat16)) == "bfloat16"
