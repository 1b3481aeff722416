#!/usr/bin/env bash
# PPO learning benchmark on CartPole-v1: for each seed, trains with
# configs/ppo_cartpole.toml (CleanRL's defaults, 500k env steps) and prints the env step at
# which the mean return of the last 20 training episodes first reached 475, plus wall time and
# steps per second. Usage: scripts/bench_ppo_cartpole.sh [SEEDS...]   (default: 1 2 3)
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=("${@:-1 2 3}")
# shellcheck disable=SC2206
SEEDS=(${SEEDS[*]})
RUNS="${RUNS_DIR:-runs/bench}"
cargo build --release -p lepton-train >&2
mkdir -p "$RUNS"
printf '| seed | first step with 20-episode mean return >= 475 | final 20-episode mean | best eval return | wall s | SPS |\n'
printf '|---|---|---|---|---|---|\n'
for seed in "${SEEDS[@]}"; do
    name="ppo_cartpole_seed${seed}_$(date +%s)"
    target/release/lepton-train --config configs/ppo_cartpole.toml --seed "$seed" --device cpu \
        --run-name "$name" --runs-dir "$RUNS" --no-progress > /dev/null 2> "$RUNS/$name.log"
    python3 - "$RUNS/$name/summary.json" "$seed" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
first = next((step for step, mean in s["return_highs_20"] if mean >= 475), None)
print(f"| {sys.argv[2]} | {first if first is not None else 'not reached'} | {s['mean_return_last_20']:.1f} "
      f"| {s['best_eval_score']:.1f} | {s['session_seconds']:.1f} | {s['session_sps']:.0f} |")
PY
done
