#!/usr/bin/env bash
# `make demo`: the product's main job on the default scenario (configs/scenarios/cloud.toml)
# with a hold limit (configs/scenarios/cloud-hold.toml: a task that fits may not be held back
# for more than 60 s, so a briefly trained policy cannot leave the work waiting forever).
# Trains the project's recipe briefly on the CPU (configs/ppo_cloud_hold.toml: a short Tetris
# clone, then PPO with the kernel network), scores the best checkpoint against the heuristic
# schedulers on held-out seeds, and prints where the logs, checkpoints and report are.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:-demo}"
STEPS="${2:-60000}"
BIN=target/release

echo "==> cloning Tetris, then PPO on the 'cloud-hold' scenario for $STEPS env steps (run '$RUN')"
rm -rf "runs/$RUN"
"$BIN/lepton-train" --config configs/ppo_cloud_hold.toml --total-steps "$STEPS" --run-name "$RUN" \
    --set imitation.steps=5000 --set imitation.kl_anneal_steps=$((STEPS / 2))

echo "==> evaluating the best checkpoint against the heuristics on held-out seeds"
"$BIN/lepton-eval" --suite configs/eval/demo-hold.toml \
    --checkpoint "runs/$RUN/checkpoints/best" --out "runs/$RUN/eval"

cat <<EOT

Done.
  TensorBoard logs : runs/$RUN            (tensorboard --logdir runs; '.venv/bin/tensorboard' has it)
  checkpoints      : runs/$RUN/checkpoints/
  eval report      : runs/$RUN/eval/report.md  (+ report.json, *.svg plots)
EOT
