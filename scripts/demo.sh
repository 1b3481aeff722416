#!/usr/bin/env bash
# `make demo`: the product's main job on the default scenario's tasks (configs/scenarios/cloud.toml)
# with batch-scheduler decisions (configs/scenarios/cloud-easy.toml: commit to one of the ten
# shortest queued tasks or wait, EASY backfilling over the whole queue, a 60 s hold limit).
# Trains the project's recipe on the CPU (configs/ppo_cloud_easy.toml: a clone of `sjf+easy`,
# then PPO with the kernel network and same-workload groups), scores the best checkpoint
# against the heuristic schedulers on held-out seeds, and prints where the logs, checkpoints
# and report are.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:-demo}"
STEPS="${2:-1228800}"
BIN=target/release

echo "==> cloning sjf+easy, then PPO on cloud's tasks ('cloud-easy') for $STEPS env steps (run '$RUN')"
rm -rf "runs/$RUN"
"$BIN/lepton-train" --config configs/ppo_cloud_easy.toml --total-steps "$STEPS" --run-name "$RUN"

echo "==> evaluating the best checkpoint against the heuristics on held-out seeds"
"$BIN/lepton-eval" --suite configs/eval/demo-easy.toml \
    --checkpoint "runs/$RUN/checkpoints/best" --out "runs/$RUN/eval"

cat <<EOT

Done.
  TensorBoard logs : runs/$RUN            (tensorboard --logdir runs; '.venv/bin/tensorboard' has it)
  checkpoints      : runs/$RUN/checkpoints/
  eval report      : runs/$RUN/eval/report.md  (+ report.json, *.svg plots)
EOT
