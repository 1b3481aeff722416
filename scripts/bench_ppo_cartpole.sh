#!/usr/bin/env bash
# PPO learning benchmark on CartPole-v1: for each seed, trains with $CONFIG (default
# configs/ppo_cartpole.toml, CleanRL's defaults, 500k env steps; configs/ppo_cartpole_fast.toml
# is the large-batch preset) and prints the env step at which the mean return of the last 20
# training episodes first reached 475, the training seconds to that step, plus wall time, steps
# per second and the time shares. No evaluation or checkpoints run, so the time is training's.
# Usage: [CONFIG=...] scripts/bench_ppo_cartpole.sh [SEEDS...]   (default: 1 2 3)
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=("${@:-1 2 3}")
# shellcheck disable=SC2206
SEEDS=(${SEEDS[*]})
RUNS="${RUNS_DIR:-runs/bench}"
CONFIG="${CONFIG:-configs/ppo_cartpole.toml}"
cargo build --release -p lepton-train >&2
mkdir -p "$RUNS"
printf '| seed | first step with 20-episode mean return >= 475 | training s to it | final 20-episode mean | wall s | SPS | env / inference / update |\n'
printf '|---|---|---|---|---|---|---|\n'
for seed in "${SEEDS[@]}"; do
    name="ppo_cartpole_seed${seed}_$(date +%s)"
    target/release/lepton-train --config "$CONFIG" --seed "$seed" --device cpu \
        --set eval.every_steps=0 --set run.checkpoint_every_steps=0 \
        --run-name "$name" --runs-dir "$RUNS" --no-progress > /dev/null 2> "$RUNS/$name.log"
    python3 - "$RUNS/$name/summary.json" "$seed" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
first = next((step for step, mean in s["return_highs_20"] if mean >= 475), None)
# The run's rate is steady (no evaluation), so the time to a step is step / SPS.
to_475 = f"{first / s['session_sps']:.1f}" if first is not None else "—"
share = s["time_share"]
total = sum(share.values())
shares = " / ".join(f"{100 * share[k] / total:.0f}%" for k in ("env", "inference", "update"))
print(f"| {sys.argv[2]} | {first if first is not None else 'not reached'} | {to_475} "
      f"| {s['mean_return_last_20']:.1f} | {s['session_seconds']:.1f} | {s['session_sps']:,.0f} | {shares} |")
PY
done
