"""RLlib's PPO on a lepton scenario with action masking (RLlib's own action-masking RLModule)
and several env runners, on a local or an existing Ray cluster.

    python python/examples/rllib_ppo.py --scenario deeprm --env-runners 2 --iterations 20
    python python/examples/rllib_ppo.py --address auto --env-runners 32 --iterations 200
    # GPUs: one learner per GPU
    python python/examples/rllib_ppo.py --address auto --learners 2 --gpus-per-learner 1

Prints each iteration's sampled env steps, mean episode return and the scheduling metrics of
the finished episodes (lepton/mean_slowdown, ...); saves the algorithm at the end. See
docs/ray.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import ray
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    EPISODE_RETURN_MEAN,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)

from lepton.rllib import ppo_config


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="deeprm", help="a shipped scenario or a scenario file")
    p.add_argument("--address", default=None, help="Ray cluster ('auto': the running one)")
    p.add_argument("--env-runners", type=int, default=2)
    p.add_argument("--envs-per-runner", type=int, default=1)
    p.add_argument("--learners", type=int, default=0, help="0: learn in the driver process")
    p.add_argument("--gpus-per-learner", type=float, default=0)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--batch", type=int, default=4000, help="env steps per iteration")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default="runs/rllib_ppo", help="where to save the algorithm")
    a = p.parse_args()

    ray.init(address=a.address)
    algo = ppo_config(
        a.scenario,
        num_env_runners=a.env_runners,
        num_envs_per_env_runner=a.envs_per_runner,
        num_learners=a.learners,
        num_gpus_per_learner=a.gpus_per_learner,
        train_batch_size=a.batch,
        seed=a.seed,
    ).build_algo()
    for _ in range(a.iterations):
        r = algo.train()
        runners = r[ENV_RUNNER_RESULTS]
        lepton_metrics = {
            k: round(float(v), 3) for k, v in runners.items() if k.startswith("lepton/")
        }
        print(
            f"iteration {r['training_iteration']}: "
            f"{runners[NUM_ENV_STEPS_SAMPLED_LIFETIME]:.0f} env steps, "
            f"return {runners.get(EPISODE_RETURN_MEAN, float('nan')):.3f}, {lepton_metrics}"
        )
    print(f"saved to {algo.save_to_path(str(Path(a.save).resolve()))}")
    algo.stop()


if __name__ == "__main__":
    main()
