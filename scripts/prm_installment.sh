#!/usr/bin/env bash
# The trained-PRM study (issue: a verifier that pays off within a problem), in resumable stages.
# Every stage caches what it did and picks up where a killed run stopped; run it alone (two torch jobs
# on 2 cores slow each other several-fold). Usage: scripts/prm_installment.sh STAGE
#   sample   the training pool: 414 generated problems (seed 202) x 8 samples of the default policy
#            (train-prm --sample-only; ~3 CPU-hours on 2 cores)
#   heldout  the held-out pools: 60 generated problems (seed 303, 6 arithmetic + 6 word per level) and
#            GSM8K test rows 0-39, 8 samples each, arithmetic scores (~30 CPU-minutes)
#   train    features of every training step (one forward pass per problem, cached in runs/prm-features),
#            cross-validation of the candidates, the winner refitted and written to assets/ with its card
#   eval     prm-eval on both held-out sets for arith, the old probe, the new prm (with and without the
#            arithmetic veto), confidence and self-judge (self-judge: ~14 CPU-minutes for the 60 generated problems)
set -eu
STAGE=${1:?usage: scripts/prm_installment.sh sample|heldout|train|eval}
PY=${PY:-.venv/bin/python}
POOLS=${POOLS:-assets/prm-eval-pools}
HELDOUT="--problem-seed 303 --per-level 6 --word-per-level 6 --problems-per-call 4 --cache $POOLS"
case $STAGE in
  sample) $PY -m tts_viz train-prm --sample-only --pools "$POOLS" ;;
  heldout)
    $PY -m tts_viz prm-eval $HELDOUT --gsm8k-count 0 --verifiers arith --out runs/prm-eval/heldout-303.json
    # the GSM8K slice as the shipped pools sampled it (one problem per call): rows 0-39
    $PY -m tts_viz prm-eval --per-level 0 --gsm8k-count 40 --cache "$POOLS" --verifiers arith \
      --out runs/prm-eval/gsm8k-40.json ;;
  train) $PY -m tts_viz train-prm --pools "$POOLS" ;;
  eval)
    # the heads on the policy's states first (one shared feature pass per problem), the slow judge last
    V=arith,probe,prm,arith+prm,confidence
    $PY -m tts_viz prm-eval $HELDOUT --gsm8k-count 0 --verifiers $V --out assets/prm-eval-heldout-303.json
    $PY -m tts_viz prm-eval --per-level 0 --gsm8k-count 40 --cache "$POOLS" --verifiers $V,self-judge \
      --out assets/prm-eval-gsm8k-40.json
    $PY -m tts_viz prm-eval $HELDOUT --gsm8k-count 0 --verifiers $V,self-judge --out assets/prm-eval-heldout-303.json ;;
  *) echo "unknown stage $STAGE: sample, heldout, train or eval" >&2; exit 2 ;;
esac
