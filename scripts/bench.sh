#!/usr/bin/env bash
# `make bench` / `make bench-quick`: lepton side by side with Gymnasium and
# Stable-Baselines3 on this machine. The bootstrap installs the pinned comparison packages into
# the project's virtualenv (idempotent), then this runs
# bench/run.py, which builds the release binaries and writes bench/results.json and the
# generated tables in BENCHMARKS.md (quick mode: bench/results-quick.{json,md} only).
# Usage: scripts/bench.sh [--quick] [bench/run.py options]    (BENCH_QUICK=1 = --quick)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/bootstrap.sh    # also installs stable-baselines3 and sb3-contrib
PY=.venv/bin/python

args=("$@")
if [[ "${BENCH_QUICK:-0}" == 1 ]]; then args=(--quick "${args[@]}"); fi
LEPTON_BENCH_VIA_MAKE=1 exec "$PY" bench/run.py "${args[@]}"
