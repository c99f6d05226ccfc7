#!/usr/bin/env bash
# One installment of the newer methods on the study's held-out generated problems (issue: particle
# filtering, MCTS, adaptive budgets): particle-filter, particle-gibbs, mcts, early-stop-vote and deepconf
# at budgets 1, 4 and 16 under VERIFIER (default prm, the default verifier: particle weights and MCTS
# values are its scores; under arith the weights are nearly even), appended to the shipped results file
# beside the other strategies under that verifier (the Scaling tab then draws them; the FLOPs view shows
# what the adaptive ones actually spent). early-stop-vote is read off each problem's stored pool of 16
# (no sampling: under arith the 75 held-out problems already have their rows); the other four run live.
# PER_LEVEL grows the held-out set as the study installments do (the split is stable when it grows:
# 2 gives 5 held-out problems, 16 the prm study's 40, 30 the arith study's 75). Every run resumes;
# run it alone.
# Usage: [VERIFIER=arith] [CONCURRENCY=4] scripts/methods_installment.sh PER_LEVEL
set -eu
# glibc makes a 64 MB arena per thread that touches malloc; the problem threads fragmented ~115 of them
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
PER_LEVEL=${1:?usage: scripts/methods_installment.sh PER_LEVEL}
PY=${PY:-.venv/bin/python}
R=${RESULTS:-assets/scaling/results.jsonl}
$PY -m tts_viz sweep --problem-set arith --levels 1-5 --per-level "$PER_LEVEL" --split test --verifier ${VERIFIER:-prm} --problem-concurrency ${CONCURRENCY:-1} \
  --results "$R" --strategies particle-filter,particle-gibbs,mcts,early-stop-vote,deepconf \
  --budgets 1,4,16 --run-budgets 1,4,16
