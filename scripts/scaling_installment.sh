#!/usr/bin/env bash
# One installment of the scaling study (README "Scaling study"): grow the problem set to
# PER_LEVEL problems per level (pairs per level split val/test, so an even number keeps the halves
# equal), then: validation sweep -> strategy table -> 1.5B baseline -> held-out sweep with auto ->
# report. Every stage resumes; a refitted table makes the held-out auto rows re-evaluated (only those:
# auto reads the pool, and only a search it newly chooses runs).
# Run it alone: two torch jobs on 2 cores slow each other down many times over.
# Usage: scripts/scaling_installment.sh PER_LEVEL   (e.g. 4, then 6, ... up to 30)
set -eu
PER_LEVEL=${1:?usage: scripts/scaling_installment.sh PER_LEVEL}
PY=${PY:-.venv/bin/python}
R=${RESULTS:-assets/scaling/results.jsonl}
S="$PY -m tts_viz sweep --problem-set arith --levels 1-5 --results $R --per-level $PER_LEVEL"
ALL=majority,best-of-n,weighted-best-of-n,beam,dvts,revisions
$S --split val --verifier arith --strategies $ALL --budgets 1,2,4,8,16 --run-budgets 1,4,16
$PY -m tts_viz fit-table --results "$R" --split val --binning quantile
$S --split test --policy qwen2.5-coder-1.5b --verifier none --strategies majority,majority:temperature=0 \
   --budgets 1,2,4 --run-budgets 1
$S --split test --verifier arith --strategies $ALL,auto --budgets 1,2,4,8,16 --run-budgets 1,4,16
$PY -m tts_viz scaling-report --results "$R"
