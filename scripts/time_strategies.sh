#!/usr/bin/env bash
# Every strategy x {self-judge, arith} on one GSM8K problem at N=8 with the default 0.5B policy
# (VERIFIERS / STRATEGIES override the lists, e.g. STRATEGIES="particle-filter mcts" VERIFIERS=prm).
# Prints one JSON line per run (seconds, tokens, answer); traces go to $OUT (default runs/strategy-times).
# Usage: scripts/time_strategies.sh [gsm8k.jsonl] [index]
set -u
DATA=${1:-../shared/data/gsm8k_test.jsonl}
INDEX=${2:-3}
OUT=${OUT:-runs/strategy-times}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
for verifier in ${VERIFIERS:-arith self-judge}; do
  for strategy in ${STRATEGIES:-majority best-of-n weighted-best-of-n beam dvts lookahead revisions}; do
    $PY -m tts_viz run --data "$DATA" --index "$INDEX" --strategy "$strategy" --verifier "$verifier" \
      --n 8 --width 4 --revision-length 4 --seed 0 --out "$OUT/$strategy-$verifier.json" 2>/dev/null \
      | sed "s/^/{\"verifier\": \"$verifier\", \"run\": /; s/$/}/"
  done
done
