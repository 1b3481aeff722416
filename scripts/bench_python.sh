#!/usr/bin/env bash
# `make bench-python`: lepton's Python package (built by `make python`, release) against
# Gymnasium, EnvPool and DeepRM's own env, env steps/s from Python (bench/python_envs.py; see
# BENCHMARKS.md, "From Python: env steps/s"). EnvPool runs as a subprocess of the one
# interleaved run, from the virtualenv of scripts/envpool_venv.sh; BENCH_NO_ENVPOOL=1 skips
# it. DeepRM's env is read from a checkout of github.com/hongzimao/deeprm named by DEEPRM_SRC
# (skipped without one).
# Usage: scripts/bench_python.sh [bench/python_envs.py options]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/envpool_venv.sh

args=("$@")
if [[ "${BENCH_NO_ENVPOOL:-0}" != 1 ]]; then
    args=(--envpool-python "$(envpool_venv bench-python)" "${args[@]}")
fi
if [[ -n "${DEEPRM_SRC:-}" ]]; then args=(--deeprm-src "$DEEPRM_SRC" "${args[@]}"); fi
LEPTON_BENCH_VIA_MAKE=1 exec .venv/bin/python bench/python_envs.py "${args[@]}"
