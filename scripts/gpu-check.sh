#!/usr/bin/env bash
# The 4-bit path on a CUDA machine that has torch and transformers but no network and no room for
# our model files: tiny models of each architecture built in place, loaded in bitsandbytes NF4,
# every strategy end to end, every PRM family's scores against the CPU run of the same weights.
# Prints one JSON line (ok, per-family gaps, strategies, GPU memory); exit status 0 when ok.
# Runs on the CPU as well (same code, device cpu): that is how `make test` checks it.
#
#   bash scripts/gpu-check.sh                 # with the python on PATH (or $PYTHON)
#   BNB_WHEEL=/path/bitsandbytes-0.50.2-*.whl bash scripts/gpu-check.sh   # install it first, offline
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
if ! "$PY" -c "import bitsandbytes" 2>/dev/null && [ -n "${BNB_WHEEL:-}" ]; then
  "$PY" -m pip install -q --no-deps --no-index "$BNB_WHEEL" >&2
fi
exec timeout "${GPU_CHECK_TIMEOUT:-290}" "$PY" scripts/gpu_check.py
