"""tts-viz: an interactive explorer of test-time compute scaling (see README.md)."""

import os

# libgomp (torch's OpenMP on Linux) spins an idle thread up to 300,000 times before it sleeps. When
# another process shares the 2 cores (a study job, a second app), the spinning threads take turns
# starving each other: a beam search (N=8, M=4) measured 34 s alone and 212 s beside a sampling job.
# 20,000 spins kept it at 34 s alone and cut it to 115 s beside the same job (scripts/contention.py).
# Set before torch loads libgomp; the environment's own value wins.
os.environ.setdefault("GOMP_SPINCOUNT", "20000")
