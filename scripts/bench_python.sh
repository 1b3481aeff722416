#!/usr/bin/env bash
# `make bench-python`: lepton's Python package (built by `make python`, release) against
# Gymnasium, EnvPool and DeepRM's own env, env steps/s from Python (bench/python_envs.py; see
# BENCHMARKS.md, "From Python: env steps/s"). EnvPool goes into a virtualenv of its own in the
# per-user cache (pinned; idempotent), so that .venv keeps bootstrap's pins, and runs as a
# subprocess of the one interleaved run; BENCH_NO_ENVPOOL=1 skips it. DeepRM's env is read
# from a checkout of github.com/hongzimao/deeprm named by DEEPRM_SRC (skipped without one).
# Usage: scripts/bench_python.sh [bench/python_envs.py options]
set -euo pipefail
cd "$(dirname "$0")/.."

ENVPOOL_VERSION=1.2.5
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/lepton"
ENVPOOL_VENV="$CACHE_ROOT/venv-envpool-$ENVPOOL_VERSION"
PY=.venv/bin/python

args=("$@")
if [[ "${BENCH_NO_ENVPOOL:-0}" != 1 ]]; then
    if [[ ! -f "$ENVPOOL_VENV/.lepton-envpool-ok" ]]; then
        echo "[bench-python] installing envpool==$ENVPOOL_VERSION into $ENVPOOL_VENV (~1 GB)" >&2
        "$PY" -m venv "$ENVPOOL_VENV"
        "$ENVPOOL_VENV/bin/python" -m pip install --quiet "envpool==$ENVPOOL_VERSION" \
            "numpy==2.4.6" "gymnasium==1.2.2"
        touch "$ENVPOOL_VENV/.lepton-envpool-ok"
    fi
    args=(--envpool-python "$ENVPOOL_VENV/bin/python" "${args[@]}")
fi
if [[ -n "${DEEPRM_SRC:-}" ]]; then args=(--deeprm-src "$DEEPRM_SRC" "${args[@]}"); fi
LEPTON_BENCH_VIA_MAKE=1 exec "$PY" bench/python_envs.py "${args[@]}"
