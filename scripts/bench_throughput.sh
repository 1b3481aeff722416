#!/usr/bin/env bash
# `make bench-throughput`: training throughput (bench/throughput.py; see BENCHMARKS.md "PPO at
# large batch"). With CLEANRL_SRC naming a checkout of github.com/vwxyzjn/cleanrl, CleanRL's
# `ppo.py` on EnvPool joins the CartPole table (bench/cleanrl_envpool.py), run by the EnvPool
# virtualenv of scripts/envpool_venv.sh.
# Usage: scripts/bench_throughput.sh [bench/throughput.py options]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/envpool_venv.sh

args=("$@")
if [[ -n "${CLEANRL_SRC:-}" ]]; then
    args=(--cleanrl-python "$(envpool_venv bench-throughput)" --cleanrl-src "$CLEANRL_SRC" "${args[@]}")
fi
exec .venv/bin/python bench/throughput.py "${args[@]}"
