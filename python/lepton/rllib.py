"""RLlib on lepton's envs: PPO with action masking on RLlib's new API stack.

RLlib masks actions with an RLModule that reads the mask from the observation: the env's
observation must be a ``Dict`` of ``"observations"`` (what the network sees) and
``"action_mask"`` (1.0 where an action is legal). :class:`MaskedDictObservation` turns a
lepton env into that form; :func:`ppo_config` wires it to RLlib's own action-masking module
(``ray.rllib.examples.rl_modules.classes.action_masking_rlm.ActionMaskingTorchRLModule``)::

    import ray
    from lepton.rllib import ppo_config

    ray.init(address="auto")            # or ray.init() for a local cluster
    algo = ppo_config("deeprm", num_env_runners=8).build_algo()
    for _ in range(100):
        result = algo.train()

Ray is imported inside the functions that need it: ``import lepton`` (and this module)
works without Ray installed.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

#: The name :func:`register` gives the masked env in Ray's registry.
ENV_NAME = "lepton-masked"


class IllegalActionError(ValueError):
    """An action the current mask forbids reached the env: the masking is broken."""


class MaskedDictObservation(gym.Wrapper):
    """A lepton env whose observation is ``{"observations": obs, "action_mask": mask}``.

    ``observations`` is the env's own float32 observation; ``action_mask`` is the mask of
    ``info["action_mask"]`` as float32 0.0/1.0 (RLlib's module takes its log). A step with an
    action the mask forbids raises :class:`IllegalActionError`, naming the legal actions,
    before it reaches the env (which would refuse it too): a masking bug stops training.
    ``info["episode_metrics"]`` (the scheduling metrics at an episode's end) passes through.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        n = int(env.action_space.n)
        self.observation_space = gym.spaces.Dict(
            {
                "action_mask": gym.spaces.Box(0.0, 1.0, shape=(n,), dtype=np.float32),
                "observations": env.observation_space,
            }
        )
        self._mask = np.ones(n, dtype=bool)

    def _observe(self, obs: np.ndarray, info: dict[str, Any]) -> dict[str, np.ndarray]:
        self._mask = np.asarray(info["action_mask"], dtype=bool)
        return {
            "action_mask": self._mask.astype(np.float32),
            "observations": np.asarray(obs, dtype=np.float32),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._observe(obs, info), info

    def step(self, action):
        a = int(action)
        if not (0 <= a < self._mask.size and self._mask[a]):
            legal = np.flatnonzero(self._mask).tolist()
            raise IllegalActionError(f"action {a} is masked out; legal actions: {legal}")
        obs, reward, terminated, truncated, info = self.env.step(a)
        return self._observe(obs, info), reward, terminated, truncated, info


def make_env(env_config: dict[str, Any]) -> MaskedDictObservation:
    """RLlib's env creator: ``lepton.make(env_config["scenario"], **env_config["overrides"])``
    wrapped in :class:`MaskedDictObservation`. RLlib seeds each episode through ``reset``."""
    import lepton

    env = lepton.make(env_config.get("scenario", "deeprm"), **env_config.get("overrides", {}))
    return MaskedDictObservation(env)


def register() -> str:
    """Registers :func:`make_env` with Ray's env registry (on the driver; RLlib ships the
    creator to the env runners) and returns its name."""
    from ray.tune.registry import register_env

    register_env(ENV_NAME, make_env)
    return ENV_NAME


def _episode_metrics_callback():
    """An RLlib callback class that logs each episode's scheduling metrics
    (``info["episode_metrics"]``) as ``lepton/<name>`` means in the results."""
    from ray.rllib.callbacks.callbacks import RLlibCallback

    class EpisodeMetrics(RLlibCallback):
        def on_episode_end(self, *, episode, metrics_logger=None, **kwargs):
            info = episode.get_infos(-1)
            for name, value in (info.get("episode_metrics") or {}).items():
                if isinstance(value, (int, float)) and metrics_logger is not None:
                    metrics_logger.log_value(f"lepton/{name}", float(value), reduce="mean")

    return EpisodeMetrics


def ppo_config(
    scenario: str = "deeprm",
    *,
    overrides: dict[str, Any] | None = None,
    num_env_runners: int = 2,
    num_envs_per_env_runner: int = 1,
    num_learners: int = 0,
    num_gpus_per_learner: float = 0,
    hidden: tuple[int, ...] = (64, 64),
    train_batch_size: int = 4000,
    minibatch_size: int = 128,
    seed: int | None = None,
):
    """A ``PPOConfig`` training on ``lepton.make(scenario, **overrides)`` with RLlib's
    action-masking RLModule; every argument is an RLlib setting of the same name (change
    anything else on the returned config). On GPUs: ``num_learners`` (0 = learn in the
    driver) and ``num_gpus_per_learner``."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.examples.rl_modules.classes.action_masking_rlm import (
        ActionMaskingTorchRLModule,
    )

    config = (
        PPOConfig()
        .environment(register(), env_config={"scenario": scenario, "overrides": overrides or {}})
        .env_runners(
            num_env_runners=num_env_runners,
            num_envs_per_env_runner=num_envs_per_env_runner,
        )
        .learners(num_learners=num_learners, num_gpus_per_learner=num_gpus_per_learner)
        .training(train_batch_size_per_learner=train_batch_size, minibatch_size=minibatch_size)
        .rl_module(
            rl_module_spec=RLModuleSpec(
                module_class=ActionMaskingTorchRLModule,
                model_config={"fcnet_hiddens": list(hidden)},
            )
        )
        .callbacks(_episode_metrics_callback())
    )
    if seed is not None:
        config = config.debugging(seed=seed)
    return config
