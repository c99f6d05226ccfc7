#!/usr/bin/env bash
# One installment of the scaling study re-run with the trained PRM (`prm`, README "Scaling study"):
# grow the generated problem set to PER_LEVEL problems per level (the same problems and val/test
# split as the arith study, so the two compare problem by problem) and run, under `--verifier prm`,
# majority / best-of-n / weighted-best-of-n at 1,2,4,8,16 from one pool of 16 per problem (kept in
# assets/scaling/pools and shared with the oracle study: a pool sampled under any verifier is
# re-scored, not re-sampled), beam and DVTS at 4 and 16; held-out first, then the validation twins,
# the prm strategy table, and auto on the held-out problems. Revisions are left out of these
# installments (the costliest strategy, never chosen by the arith table); adding it later to the same
# command runs only its rows. Every stage resumes. Run it alone: two torch jobs on 2 cores slow each other.
# CONCURRENCY=4 runs four problems at once (decode steps merged): 1.47x on arith; under prm 4 problems
# grew to about 11 GB over 86 min, mostly malloc arenas; with MALLOC_ARENA_MAX=2 (set here unless given)
# 8.8 GB at most over 135 min (README, Speed on a CPU). Default: one at a time.
# Usage: scripts/prm_study_installment.sh PER_LEVEL [PER_LEVEL ...]   (2, 4, ... 30 = the arith study's 150)
set -eu
# glibc makes a 64 MB arena per thread that touches malloc; the problem threads fragmented ~115 of them
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
[ $# -ge 1 ] || { echo "usage: scripts/prm_study_installment.sh PER_LEVEL [PER_LEVEL ...]" >&2; exit 2; }
PY=${PY:-.venv/bin/python}
R=${RESULTS:-assets/scaling/results.jsonl}
POOLS=${POOLS:-assets/scaling/pools}
RULES=majority,best-of-n,weighted-best-of-n,beam,dvts
for PER_LEVEL in "$@"; do
  S="$PY -m tts_viz sweep --problem-set arith --levels 1-5 --results $R --per-level $PER_LEVEL --pool-traces $POOLS --verifier prm --problem-concurrency ${CONCURRENCY:-1}"
  echo "== per-level $PER_LEVEL: test $(date -u +%H:%M:%S)" >&2
  $S --split test --strategies $RULES --budgets 1,2,4,8,16 --run-budgets 4,16
  echo "== per-level $PER_LEVEL: val $(date -u +%H:%M:%S)" >&2
  $S --split val --strategies $RULES --budgets 1,2,4,8,16 --run-budgets 4,16
  $PY -m tts_viz fit-table --results "$R" --split val --binning quantile --verifier prm --policy qwen2.5-coder-0.5b
  echo "== per-level $PER_LEVEL: auto $(date -u +%H:%M:%S)" >&2
  $S --split test --strategies auto --budgets 1,4,16 --run-budgets 1,4,16
  echo "== per-level $PER_LEVEL: done $(date -u +%H:%M:%S)" >&2
done
