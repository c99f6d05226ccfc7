#!/usr/bin/env bash
# One installment of the verifier-quality study (README "Verifier quality"): grow the generated
# problem set to PER_LEVEL problems per level (pairs per level split val/test) and run, at each oracle
# quality (exact, AUROC 0.9, 0.75, 0.6): majority / best-of-n / weighted-best-of-n from one pool per
# problem (sampled once, re-scored for each quality: --pool-traces), beam and DVTS at 4 and 16;
# held-out first, then the validation twins, a strategy table per quality, and auto on held-out.
# At N=1 no verifier chooses anything (one sample), so beam/DVTS run at 4 and 16 only; the pool rules
# give the N=1 column. Every stage resumes. Run it alone: two torch jobs on 2 cores slow each other.
# CONCURRENCY=4 runs four problems at once (decode steps merged): 1.47x on arith; under prm 4 problems
# grew to about 11 GB over 86 min, mostly malloc arenas; with MALLOC_ARENA_MAX=2 (set here unless given)
# 8.8 GB at most over 135 min (README, Speed on a CPU). Default: one at a time.
# Usage: scripts/oracle_installment.sh PER_LEVEL   (2, 4, 6, 8: 8 gives 40 held-out problems)
set -eu
# glibc makes a 64 MB arena per thread that touches malloc; the problem threads fragmented ~115 of them
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
PER_LEVEL=${1:?usage: scripts/oracle_installment.sh PER_LEVEL}
PY=${PY:-.venv/bin/python}
R=${RESULTS:-assets/scaling/verifier-quality.jsonl}
POOLS=${POOLS:-assets/scaling/pools}
QUALITIES=${QUALITIES:-"oracle oracle@0.9 oracle@0.75 oracle@0.6"}
S="$PY -m tts_viz sweep --problem-set arith --levels 1-5 --results $R --per-level $PER_LEVEL --pool-traces $POOLS --problem-concurrency ${CONCURRENCY:-1}"
RULES=majority,best-of-n,weighted-best-of-n,beam,dvts
for Q in $QUALITIES; do
  $S --split test --verifier "$Q" --strategies $RULES --budgets 1,4,16 --run-budgets 4,16
done
for Q in $QUALITIES; do
  $S --split val --verifier "$Q" --strategies $RULES --budgets 1,4,16 --run-budgets 4,16
  $PY -m tts_viz fit-table --results "$R" --split val --binning quantile --verifier "$Q" --policy qwen2.5-coder-0.5b
done
for Q in $QUALITIES; do
  $S --split test --verifier "$Q" --strategies auto --budgets 1,4,16 --run-budgets 1,4,16
done
