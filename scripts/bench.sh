#!/usr/bin/env bash
# `make bench` / `make bench-quick`: lepton side by side with Gymnasium and
# Stable-Baselines3 on this machine. Installs the pinned comparison packages into the project's
# virtualenv (idempotent; --no-deps, so torch and gymnasium stay at bootstrap's pins), then runs
# bench/run.py, which builds the release binaries and writes bench/results.json and the
# generated tables in BENCHMARKS.md (quick mode: bench/results-quick.{json,md} only).
# Usage: scripts/bench.sh [--quick] [bench/run.py options]    (BENCH_QUICK=1 = --quick)
set -euo pipefail
cd "$(dirname "$0")/.."

SB3_VERSION=2.9.2    # stable-baselines3 and sb3-contrib; need gymnasium<1.3, torch>=2.3, cloudpickle
./scripts/bootstrap.sh
PY=.venv/bin/python
if ! "$PY" -c "import stable_baselines3 as s, sb3_contrib as c, cloudpickle; \
assert s.__version__ == c.__version__ == '$SB3_VERSION'" 2>/dev/null; then
    echo "[bench] installing stable-baselines3==$SB3_VERSION sb3-contrib==$SB3_VERSION" >&2
    "$PY" -m pip install --quiet --no-deps "stable-baselines3==$SB3_VERSION" \
        "sb3-contrib==$SB3_VERSION" "cloudpickle==3.1.2"
fi

args=("$@")
if [[ "${BENCH_QUICK:-0}" == 1 ]]; then args=(--quick "${args[@]}"); fi
LEPTON_BENCH_VIA_MAKE=1 exec "$PY" bench/run.py "${args[@]}"
