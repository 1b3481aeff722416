#!/usr/bin/env bash
# `make bench-throughput`: training throughput (bench/throughput.py; see BENCHMARKS.md "PPO at
# large batch"). With CLEANRL_SRC naming a checkout of github.com/vwxyzjn/cleanrl, CleanRL's
# `ppo.py` on EnvPool joins the CartPole table (bench/cleanrl_envpool.py). It runs in a
# virtualenv of its own in the per-user cache (pinned; idempotent) with EnvPool, tyro and
# TensorBoard; torch comes from lepton's .venv (a .pth line, after the venv's own packages),
# so PyTorch 2.13.0 is not installed twice.
# Usage: scripts/bench_throughput.sh [bench/throughput.py options]
set -euo pipefail
cd "$(dirname "$0")/.."

ENVPOOL_VERSION=1.2.5
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/lepton"
CLEANRL_VENV="$CACHE_ROOT/venv-cleanrl-envpool-$ENVPOOL_VERSION"
PY=.venv/bin/python

args=("$@")
if [[ -n "${CLEANRL_SRC:-}" ]]; then
    if [[ ! -f "$CLEANRL_VENV/.lepton-cleanrl-ok" ]]; then
        echo "[bench-throughput] installing envpool==$ENVPOOL_VERSION, tyro and tensorboard into $CLEANRL_VENV" >&2
        "$PY" -m venv "$CLEANRL_VENV"
        "$CLEANRL_VENV/bin/python" -m pip install --quiet "envpool==$ENVPOOL_VERSION" \
            "numpy==2.4.6" "gymnasium==1.2.2" "tyro==1.0.17" "tensorboard==2.21.0"
        torch_site="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
        own_site="$("$CLEANRL_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
        echo "$torch_site" > "$own_site/lepton-torch.pth"
        "$CLEANRL_VENV/bin/python" -c 'import envpool, torch, tyro'
        touch "$CLEANRL_VENV/.lepton-cleanrl-ok"
    fi
    args=(--cleanrl-python "$CLEANRL_VENV/bin/python" --cleanrl-src "$CLEANRL_SRC" "${args[@]}")
fi
exec "$PY" bench/throughput.py "${args[@]}"
