"""A Ray Tune search over lepton-train's hyperparameters: every trial is one lepton-train run,
reported to Tune at each of its evaluations; ASHA stops the weak ones early, or PBT copies the
strong ones' weights into the weak ones and perturbs their hyperparameters.

    # on this machine (a local Ray cluster of its cores)
    python python/examples/tune_search.py --config configs/ppo_quick.toml --num-samples 4
    # on a running cluster (ray start --head on one node, ray start --address=HEAD:6379 on
    # the others; the same clone and lepton-train build at the same path on every node)
    python python/examples/tune_search.py --address auto --config configs/ppo_deeprm.toml \
        --total-steps 500000 --num-samples 32 --scheduler pbt --storage-path /shared/ray_results

The search space is ppo.lr (log-uniform) and ppo.ent_coef (uniform); edit SEARCH_SPACE for
others (any `lepton-train --set` key). Prints the best trial's overrides and metric. See
docs/ray.md.
"""

from __future__ import annotations

import argparse

import ray
from ray import tune

from lepton.tune import build_tuner

SEARCH_SPACE = {
    "ppo.lr": tune.loguniform(5e-5, 3e-3),
    "ppo.ent_coef": tune.uniform(0.0, 0.05),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/ppo_quick.toml", help="lepton-train config")
    p.add_argument("--address", default=None, help="Ray cluster ('auto': the running one)")
    p.add_argument("--scheduler", choices=["asha", "pbt", "fifo"], default="asha")
    p.add_argument("--search", choices=["random", "optuna"], default="random",
                   help="search algorithm (optuna needs `pip install optuna`)")
    p.add_argument("--num-samples", type=int, default=4, help="trials")
    p.add_argument("--total-steps", type=int, default=None, help="env steps per trial")
    p.add_argument("--metric", default="completion_slowdown",
                   help="an evaluations.jsonl name (episodic_return on CartPole, with --mode max)")
    p.add_argument("--mode", choices=["min", "max"], default="min")
    p.add_argument("--cpus-per-trial", type=float, default=1)
    p.add_argument("--gpus-per-trial", type=float, default=0,
                   help="with > 0, also pass --device cuda (see docs/ray.md)")
    p.add_argument("--device", default=None, help="lepton-train --device for every trial")
    p.add_argument("--max-concurrent", type=int, default=None)
    p.add_argument("--storage-path", default=None,
                   help="results and checkpoints (shared or cloud storage on a multi-node cluster)")
    p.add_argument("--name", default=None, help="experiment name under the storage path")
    a = p.parse_args()

    search_alg = None
    if a.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch()
    ray.init(address=a.address)
    tuner = build_tuner(
        a.config,
        SEARCH_SPACE,
        scheduler=a.scheduler,
        num_samples=a.num_samples,
        metric=a.metric,
        mode=a.mode,
        total_steps=a.total_steps,
        cpus_per_trial=a.cpus_per_trial,
        gpus_per_trial=a.gpus_per_trial,
        args=["--device", a.device] if a.device else None,
        search_alg=search_alg,
        storage_path=a.storage_path,
        name=a.name,
        max_concurrent_trials=a.max_concurrent,
    )
    grid = tuner.fit()
    best = grid.get_best_result()
    print(f"best trial: {best.path}")
    print(f"  overrides: {best.config['set']}")
    print(f"  {a.metric} = {best.metrics[a.metric]} at env step {best.metrics['env_steps']}")
    print(f"  its lepton runs: {best.path}/lepton_*/ (checkpoints/, evaluations.jsonl, ...)")


if __name__ == "__main__":
    main()
