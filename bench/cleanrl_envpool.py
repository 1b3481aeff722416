"""CleanRL's `ppo.py` on EnvPool's CartPole-v1: the contender `bench/throughput.py` runs when
it is given a checkout of github.com/vwxyzjn/cleanrl (`CLEANRL_SRC`, see `make bench-throughput`).

CleanRL's script is run unchanged (`runpy`, with its own command-line flags); only the vector
env it builds is swapped: `gymnasium.vector.SyncVectorEnv` is replaced by `EnvPoolVector`, one
`envpool.make(..., env_type="gymnasium")` batch of the same envs with the same seed, which
reports finished episodes the way CleanRL's loop reads them (`infos["final_info"]`). EnvPool
resets a finished env on the next step (that step returns the first observation, reward 0),
as in CleanRL's own EnvPool scripts. One torch thread.

Prints one JSON line: the env step and training seconds at which the mean return of the last
20 finished episodes first reached 475, the final 20-episode mean, and env steps/s over the
whole run (from the first reset to the end, as CleanRL's SPS).

Usage (in a virtualenv with torch, envpool, gymnasium, tyro and tensorboard):
  python bench/cleanrl_envpool.py --cleanrl-src PATH -- [ppo.py flags, e.g. --seed 1 --num-envs 4]
"""

import argparse
import contextlib
import json
import os
import runpy
import sys
import time
from pathlib import Path

import envpool
import gymnasium
import numpy as np
import torch

TARGET = 475.0


class EnvPoolVector:
    """What CleanRL's `ppo.py` uses of a `gymnasium.vector.SyncVectorEnv`, backed by EnvPool."""

    finished = []  # (env step, seconds since the first reset, return) of every episode
    start = None
    steps = 0

    def __init__(self, env_fns):
        probe = env_fns[0]()  # one Gymnasium env: its id and spaces
        self.env_id = probe.spec.id
        self.num_envs = len(env_fns)
        self.single_observation_space = probe.observation_space
        self.single_action_space = probe.action_space
        probe.close()
        self.pool = None

    def reset(self, seed=None):
        self.pool = envpool.make(self.env_id, env_type="gymnasium", num_envs=self.num_envs,
                                 seed=0 if seed is None else seed)
        self.returns = np.zeros(self.num_envs)
        self.lengths = np.zeros(self.num_envs, dtype=np.int64)
        EnvPoolVector.start = time.perf_counter()
        return self.pool.reset()

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.pool.step(np.asarray(actions))
        EnvPoolVector.steps += self.num_envs
        self.returns += reward
        self.lengths += 1
        done = np.logical_or(terminated, truncated)
        infos = {}
        if done.any():
            now = time.perf_counter() - EnvPoolVector.start
            infos["final_info"] = [
                {"episode": {"r": np.array([self.returns[i]]), "l": np.array([self.lengths[i]])}}
                if done[i] else None
                for i in range(self.num_envs)
            ]
            for i in np.flatnonzero(done):
                EnvPoolVector.finished.append((EnvPoolVector.steps, now, float(self.returns[i])))
            self.returns[done] = 0.0
            self.lengths[done] = 0
        return obs, reward, terminated, truncated, infos

    def close(self):
        pass


def summary(finished, steps, seconds):
    reached = None
    for k in range(20, len(finished) + 1):
        window = [r for _, _, r in finished[k - 20:k]]
        if sum(window) / 20 >= TARGET:
            reached = finished[k - 1]
            break
    last = [r for _, _, r in finished[-20:]]
    return {
        "reached_step": reached[0] if reached else None,
        "reached_s": reached[1] if reached else None,
        "mean_return_last_20": sum(last) / len(last) if last else None,
        "sps": steps / seconds,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cleanrl-src", type=Path, required=True)
    parser.add_argument("ppo_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    script = args.cleanrl_src / "cleanrl" / "ppo.py"
    if not script.is_file():
        sys.exit(f"{script}: not found (CLEANRL_SRC must be a checkout of github.com/vwxyzjn/cleanrl)")
    torch.set_num_threads(1)
    gymnasium.vector.SyncVectorEnv = EnvPoolVector
    ppo_args = [a for a in args.ppo_args if a != "--"]
    sys.argv = [str(script), *ppo_args]
    # Its per-episode and per-iteration prints would bury the one JSON line.
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        runpy.run_path(str(script), run_name="__main__")
    seconds = time.perf_counter() - EnvPoolVector.start
    print(json.dumps(summary(EnvPoolVector.finished, EnvPoolVector.steps, seconds)))


if __name__ == "__main__":
    main()
