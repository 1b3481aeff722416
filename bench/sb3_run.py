"""One Stable-Baselines3 training run on CartPole-v1 with CleanRL's hyperparameters.

Prints one JSON object: the env step and wall time (from just before the env is built, imports
excluded) at which the mean return of the last 20 finished training episodes first reached the
target, the wall time at `--mark-steps` env steps, and where the time went (cProfile, optional).

    python bench/sb3_run.py ppo --seed 1 --budget 500000 --mark-steps 100000
    python bench/sb3_run.py dqn --seed 1 --budget 500000 --stop-at 50000

The run stops when the target is reached and `--mark-steps` has passed, at `--stop-at`, or at
`--budget` (which, as in CleanRL, is also the horizon of the learning-rate and ε schedules).
Launched by bench/run.py; one process per run so that runs share no state.
"""

import argparse
import collections
import cProfile
import json
import pstats
import time
import types

import torch

torch.set_num_threads(1)  # lepton's run.torch_threads = 1

import gymnasium as gym  # noqa: E402
from stable_baselines3 import DQN, PPO  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
import stable_baselines3.dqn.dqn as sb3_dqn  # noqa: E402


class Tracker(BaseCallback):
    """Keeps the last 20 episode returns; records when their mean first reaches the target."""

    def __init__(self, target, mark_steps, stop_at, t0):
        super().__init__()
        self.returns = collections.deque(maxlen=20)
        self.target, self.mark_steps, self.stop_at, self.t0 = target, mark_steps, stop_at, t0
        self.reached_step = self.reached_s = self.mark_s = None
        self.num_episodes = 0

    def _on_step(self):
        for info in self.locals["infos"]:
            if "episode" in info:
                self.returns.append(info["episode"]["r"])
                self.num_episodes += 1
                if (self.reached_step is None and len(self.returns) == 20
                        and sum(self.returns) / 20 >= self.target):
                    self.reached_step = self.num_timesteps
                    self.reached_s = time.perf_counter() - self.t0
        if self.mark_s is None and self.num_timesteps >= self.mark_steps:
            self.mark_s = time.perf_counter() - self.t0
        if self.stop_at and self.num_timesteps >= self.stop_at:
            return False
        return not (self.reached_step is not None and self.mark_s is not None)


def mse_functional():
    """CleanRL's dqn.py regresses with MSE; SB3's DQN hard-codes Huber (δ = 1). Swap it."""
    proxy = types.SimpleNamespace(**{k: getattr(torch.nn.functional, k)
                                     for k in dir(torch.nn.functional) if not k.startswith("__")})
    proxy.smooth_l1_loss = torch.nn.functional.mse_loss
    return proxy


def build(algo, seed, budget, loss):
    if algo == "ppo":
        # CleanRL ppo.py: 4 envs x 128 steps, 4 minibatches, 4 epochs, lr 2.5e-4 annealed to 0,
        # GAE 0.95, clip 0.2 (value too), ent 0.01, vf 0.5, grad norm 0.5, 64-64 tanh, Adam eps 1e-5.
        env = make_vec_env("CartPole-v1", n_envs=4, seed=seed)
        return PPO("MlpPolicy", env, n_steps=128, batch_size=128, n_epochs=4,
                   learning_rate=lambda progress_remaining: 2.5e-4 * progress_remaining,
                   gamma=0.99, gae_lambda=0.95, clip_range=0.2, clip_range_vf=0.2,
                   normalize_advantage=True, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5,
                   policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64]),
                                      activation_fn=torch.nn.Tanh),
                   seed=seed, device="cpu", verbose=0)
    # CleanRL dqn.py: 1 env, buffer 10,000, lr 2.5e-4, batch 128, target copy every 500 steps,
    # ε 1 -> 0.05 over half the budget, learning from 10,000 steps, a gradient step every 10,
    # 120-84 ReLU. SB3 adds a gradient-norm clip of 10 (as lepton's config does).
    if loss == "mse":
        sb3_dqn.F = mse_functional()
    env = make_vec_env("CartPole-v1", n_envs=1, seed=seed)
    return DQN("MlpPolicy", env, learning_rate=2.5e-4, buffer_size=10_000,
               learning_starts=10_000, batch_size=128, tau=1.0, gamma=0.99, train_freq=10,
               gradient_steps=1, target_update_interval=500, exploration_fraction=0.5,
               exploration_initial_eps=1.0, exploration_final_eps=0.05, max_grad_norm=10,
               policy_kwargs=dict(net_arch=[120, 84]), seed=seed, device="cpu", verbose=0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("algo", choices=["ppo", "dqn"])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--budget", type=int, default=500_000)
    p.add_argument("--target", type=float, default=475.0)
    p.add_argument("--mark-steps", type=int, default=100_000)
    p.add_argument("--stop-at", type=int, default=0, help="stop at this many env steps (0: no)")
    p.add_argument("--dqn-loss", choices=["mse", "huber"], default="mse")
    p.add_argument("--profile", action="store_true", help="add the top cProfile entries")
    a = p.parse_args()

    profiler = cProfile.Profile() if a.profile else None
    t0 = time.perf_counter()
    if profiler:
        profiler.enable()
    model = build(a.algo, a.seed, a.budget, a.dqn_loss)
    tracker = Tracker(a.target, a.mark_steps, a.stop_at, t0)
    model.learn(total_timesteps=a.budget, callback=tracker)
    wall_s = time.perf_counter() - t0
    if profiler:
        profiler.disable()
    out = {
        "algo": a.algo, "seed": a.seed, "budget": a.budget, "steps": model.num_timesteps,
        "wall_s": wall_s, "sps": model.num_timesteps / wall_s,
        "reached_step": tracker.reached_step, "reached_s": tracker.reached_s,
        "mark_steps": a.mark_steps, "mark_s": tracker.mark_s,
        "num_episodes": tracker.num_episodes,
        "mean_return_last_20": sum(tracker.returns) / max(len(tracker.returns), 1),
    }
    if a.algo == "dqn":
        out["dqn_loss"] = a.dqn_loss
    if profiler:
        stats = pstats.Stats(profiler).sort_stats("cumulative")
        total = max(stats.total_tt, 1e-9)
        rows = []
        for (file, line, fn), (_, _, tt, ct, _) in stats.stats.items():
            rows.append((ct, tt, f"{file.split('site-packages/')[-1]}:{line}({fn})"))
        rows.sort(reverse=True)
        out["profile_top"] = [{"fn": f, "cum_share": ct / total, "self_share": tt / total}
                              for ct, tt, f in rows[:40]]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
