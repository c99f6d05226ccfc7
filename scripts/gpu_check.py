"""The 4-bit path end to end on whatever device there is (scripts/gpu-check.sh runs it).

Builds tiny random models of each architecture (tests/tiny_models.py: no network, no weights to
carry), loads them in bitsandbytes NF4 on the device, runs every strategy with a 4-bit policy and a
4-bit PRM, scores fixed solutions with every PRM family in 4-bit on the device and on the CPU (the
same saved weights) and prints ONE JSON line: what ran, the largest device-vs-CPU score gap per
family, and peak GPU memory. On a machine without CUDA the same code runs on the CPU (how it is
tested), and the gaps compare the CPU with itself.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

# device-vs-CPU gap allowed on a step score: two bitsandbytes kernels (CUDA and CPU) on the same NF4
# weights, bf16 compute both; the wide-init tiny networks amplify rounding (see tests/test_nf4.py)
TOLERANCE = 0.1


def main() -> int:
    import torch

    from tests import tiny_models as tiny
    from tts_viz.models import ModelPool, default_device, precision_label
    from tts_viz.runner import RunConfig, run_search
    from tts_viz.strategies import STRATEGIES
    from tts_viz.strategies.base import SearchConfig
    from tts_viz.verifiers.math_shepherd import MathShepherdPRM
    from tts_viz.verifiers.qwen_prm import QwenMathPRM
    from tts_viz.verifiers.rlhflow import RLHFlowPRM
    from tts_viz.verifiers.skywork import SkyworkPRM

    device = os.environ.get("TTS_VIZ_DEVICE") or default_device()
    t0 = time.perf_counter()
    out: dict = {"device": device, "torch": torch.__version__, "cuda": torch.cuda.is_available(),
                 "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        import bitsandbytes

        out["bitsandbytes"] = bitsandbytes.__version__
    except ImportError as e:
        out.update(ok=False, error=f"bitsandbytes is not importable: {e}")
        print(json.dumps(out))
        return 1
    classes = {"qwen2.5-math-prm": QwenMathPRM, "rlhflow": RLHFlowPRM, "math-shepherd": MathShepherdPRM,
               "skywork": SkyworkPRM}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tts-viz-gpu-check-") as tmp:
        policy = tiny.save_policy(Path(tmp) / "policy")
        folders = {name: build(Path(tmp) / name) for name, build in tiny.PRM_BUILDERS.items()}
        # every PRM family in 4-bit: on the device and on the CPU, same weights, same solutions
        gaps, precisions = {}, {}
        for name, cls in classes.items():
            on_device = cls.from_hub(folders[name], device=device, quant="nf4")
            on_cpu = cls.from_hub(folders[name], device="cpu", quant="nf4")
            a = on_device.score(tiny.QUESTION, tiny.SOLUTIONS)
            b = on_cpu.score(tiny.QUESTION, tiny.SOLUTIONS)
            gaps[name] = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
            precisions[name] = precision_label(on_device.model)
            if not precisions[name].startswith("nf4") or gaps[name] > TOLERANCE:
                failures.append(f"{name}: {precisions[name]}, device-vs-cpu gap {gaps[name]:.3f}")
        out["prm_precision"], out["prm_gap_vs_cpu"] = precisions, {k: round(v, 4) for k, v in gaps.items()}
        # every strategy end to end: the 4-bit policy, the 4-bit Qwen PRM as the verifier
        pool = ModelPool()
        prm = QwenMathPRM.from_hub(folders["qwen2.5-math-prm"], device=device, quant="nf4")
        runs = {}
        for strategy in STRATEGIES:
            cfg = RunConfig(question=tiny.QUESTION, gold="7", policy=policy, verifier="qwen2.5-math-prm",
                            strategy=strategy, quant="nf4", max_step_tokens=8, max_solution_tokens=24,
                            search=SearchConfig(n=4, width=2, max_rounds=2, revision_length=2, seed=0))
            trace = run_search(cfg, pool=pool, verifier=prm)
            runs[strategy] = {"status": trace.status, "nodes": len(trace.nodes), "precision": trace.precision.get("policy")}
            if trace.status != "done" or len(trace.nodes) < 2 or not str(trace.precision.get("policy")).startswith("nf4"):
                failures.append(f"{strategy}: {trace.status} {trace.error or ''} {trace.precision}")
        out["strategies"] = runs
    if torch.cuda.is_available():
        out["gpu_peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["ok"] = not failures
    if failures:
        out["failures"] = failures
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
