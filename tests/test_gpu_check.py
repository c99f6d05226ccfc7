"""scripts/gpu-check.sh, the prepared check for a CUDA machine, run here on the CPU (same code,
device cpu): every strategy through a 4-bit policy and a 4-bit PRM, every PRM family in NF4."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("bitsandbytes")

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_on_the_cpu_and_prints_one_json_line():
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh")], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "TTS_VIZ_DEVICE": "cpu",
                               "HOME": str(Path.home())}, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stdout + proc.stderr[-2000:]
    out = json.loads(lines[0])
    assert proc.returncode == 0 and out["ok"], out.get("failures") or proc.stderr[-2000:]
    assert out["device"] == "cpu"
    from tts_viz.strategies import STRATEGIES

    assert set(out["strategies"]) == set(STRATEGIES)
    assert all(r["status"] == "done" and r["precision"].startswith("nf4") for r in out["strategies"].values())
    assert set(out["prm_precision"]) == {"qwen2.5-math-prm", "rlhflow", "math-shepherd", "skywork"}
    assert all(p.startswith("nf4") for p in out["prm_precision"].values())
    assert all(g == 0.0 for g in out["prm_gap_vs_cpu"].values())  # the CPU against itself: deterministic
