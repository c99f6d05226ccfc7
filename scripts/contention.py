"""How much a search slows down when another torch process shares the CPU, per GOMP_SPINCOUNT.

Why: libgomp's idle threads spin before they sleep; two torch processes on 2 cores then starve each
other and a search runs several times slower than the CPU share alone explains. This runs one beam
search (N=8, M=4, an arithmetic level-2 problem, the embedded 0.5B, arith verifier) in a fresh
process alone and beside a busy torch process (small matmuls in a loop, as a decoder's many small
parallel regions), for each spin count asked for. Ratios within one run are what count.

    .venv/bin/python scripts/contention.py --spins default,20000
Needs an otherwise idle machine (the "alone" runs are the baseline). Takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SEARCH = r"""
import json, time
from tts_viz.models import ModelPool
from tts_viz.problems import get_problem
from tts_viz.runner import RunConfig, run_search
from tts_viz.strategies.base import SearchConfig
pool = ModelPool(); pool.get(RunConfig(question="x").policy)
prob = get_problem("arith", 0, level=2, seed=0)
cfg = RunConfig(question=prob.question, gold=prob.gold, strategy="beam", verifier="arith",
                search=SearchConfig(n=8, width=4, seed=0))
t = run_search(cfg, pool=pool)
print(json.dumps({"seconds": round(t.seconds, 1), "tokens": t.totals().generated_tokens}))
"""

HOG = r"""
import torch
a = torch.randn(64, 896); w = torch.randn(896, 4864)
while True:
    (a @ w).relu_()
"""


def search_seconds(spin: str) -> dict:
    # "default" = libgomp's own 300,000 (tts_viz sets 20,000 on import only where none is set)
    env = {**os.environ, "GOMP_SPINCOUNT": "300000" if spin == "default" else spin}
    out = subprocess.run([sys.executable, "-c", SEARCH], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spins", default="default,20000", help="GOMP_SPINCOUNT values; default = libgomp's 300000")
    args = ap.parse_args()
    rows = []
    for spin in [s.strip() for s in args.spins.split(",") if s.strip()]:
        alone = search_seconds(spin)
        hog = subprocess.Popen([sys.executable, "-c", HOG], env={**os.environ, "GOMP_SPINCOUNT": "300000"})
        try:
            time.sleep(3)
            shared = search_seconds(spin)
        finally:
            hog.kill()
            hog.wait()
        rows.append({"spin": spin, "alone_s": alone["seconds"], "beside_busy_torch_s": shared["seconds"],
                     "slowdown": round(shared["seconds"] / alone["seconds"], 2)})
        print(json.dumps(rows[-1]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
