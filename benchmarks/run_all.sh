#!/usr/bin/env bash
# Run every sampling benchmark once and write docs/benchmarks.md.
#
# Usage: benchmarks/run_all.sh [OUT_DIR]
# CausalPy pins PyMC 5, so it is installed into its own virtual environment
# (CAUSALPY_VENV, default /tmp/causalpy-venv) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-/tmp/polygvc-bench}
mkdir -p "$OUT_DIR"
PYTHON=${PYTHON:-.venv/bin/python}
BASE_PYTHON=${BASE_PYTHON:-/root/.pyenv/versions/3.12.1/bin/python}
CAUSALPY_VENV=${CAUSALPY_VENV:-/tmp/causalpy-venv}
DRAWS=${DRAWS:-1000}
TUNE=${TUNE:-1000}

if [ ! -x "$CAUSALPY_VENV/bin/python" ]; then
    "$BASE_PYTHON" -m venv "$CAUSALPY_VENV"
    "$CAUSALPY_VENV/bin/pip" install --quiet causalpy
fi
"$CAUSALPY_VENV/bin/pip" list 2>/dev/null | grep -iE '^(causalpy|pymc|pytensor) ' > "$OUT_DIR.causalpy-versions.txt" || true

"$PYTHON" benchmarks/bench_sampling.py all --out-dir "$OUT_DIR" \
    --causalpy-python "$CAUSALPY_VENV/bin/python" \
    --draws "$DRAWS" --tune "$TUNE" \
    --timeout "${POLYGVC_TIMEOUT:-900}" \
    --causalpy-timeout "${CAUSALPY_TIMEOUT:-1800}" \
    --causalpy-chains "${CAUSALPY_CHAINS:-4}" \
    --causalpy-max-n "${CAUSALPY_MAX_N:-50000}"

# The customs benchmark page of another module is appended when present.
"$PYTHON" benchmarks/bench_sampling.py report --results "$OUT_DIR/results.json" \
    --target docs/benchmarks.md --customs docs/benchmarks_customs.md \
    --versions "$OUT_DIR.causalpy-versions.txt"
