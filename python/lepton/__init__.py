"""lepton from Python: every lepton scenario as a Gymnasium env, a native vector env, and the
heuristics to compare against.

    import gymnasium as gym
    import lepton

    env = gym.make("lepton/deeprm-v0")          # or lepton.make("deeprm", queue={"num_slots": 8})
    obs, info = env.reset(seed=0)
    mask = info["action_mask"]                   # also env.unwrapped.action_masks()
    obs, reward, terminated, truncated, info = env.step(int(mask.nonzero()[0][0]))

    envs = lepton.make_vec("deeprm", num_envs=256)   # a gymnasium.vector.VectorEnv stepped in Rust
    tetris = lepton.scheduler("tetris")              # tetris.act(env) -> action

The simulator is lepton's Rust crate `lepton-env`, compiled into `lepton._native`; stepping
never runs Python code. Importing this package registers the Gymnasium ids
`lepton/<scenario>-v0` for every shipped scenario and `lepton/CartPole-v1`
(`gym.make("lepton:lepton/deeprm-v0")` imports it for you).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from . import _native
from ._native import ActionError, ScenarioError, SchedulerError

__all__ = [
    "ActionError",
    "LeptonEnv",
    "LeptonVectorEnv",
    "SCENARIOS",
    "SCHEDULERS",
    "ScenarioError",
    "Scheduler",
    "SchedulerError",
    "make",
    "make_vec",
    "scheduler",
]

__version__ = _native.__version__

#: The shipped scenarios (embedded in the extension), each registered as `lepton/<name>-v0`.
SCENARIOS: tuple = tuple(_native.SHIPPED)
#: The heuristics' names (`lepton.scheduler(name)`; `NAME+DISCIPLINE` forms such as
#: `sjf+easy` and parameterised ones such as `weighted:1:2` are accepted too).
SCHEDULERS: tuple = tuple(_native.SCHEDULERS)
CARTPOLE = _native.CARTPOLE


class LeptonEnv(_native.Env, gymnasium.Env):
    """One lepton env as a `gymnasium.Env`.

    `scenario` is a shipped scenario's name (see `SCENARIOS`), a path to a scenario TOML
    file, scenario TOML text, or `"CartPole-v1"`. Keyword overrides are merged over the
    scenario file: `queue={"num_slots": 8}` or `**{"queue.num_slots": 8}`. `seed` replaces the
    scenario's seed (used until `reset(seed=...)`). `scenario_dir` is the folder relative paths
    inside a shipped scenario (traces, CSV task lists) resolve from; by default the
    `configs/scenarios` of the checkout this package was built from.

    `info["action_mask"]` (bool, one entry per action) comes with every reset and step, and
    `action_masks()` returns it (sb3-contrib's `MaskablePPO` convention). The episode's
    scheduling metrics are `info["episode_metrics"]` on its last step. Illegal actions raise
    `lepton.ActionError` with lepton's message.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        scenario: str,
        *,
        seed: Optional[int] = None,
        scenario_dir: Optional[str] = None,
        **overrides: Any,
    ):
        # The native half was built by `__new__` from the same arguments.
        self.scenario = scenario
        self.render_mode = None
        self.observation_space = spaces.Box(self.obs_low, self.obs_high, dtype=np.float32)
        self.action_space = spaces.Discrete(self.num_actions)

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        return self._reset(seed)

    def __repr__(self) -> str:
        return f"LeptonEnv({self.scenario!r})"


class LeptonVectorEnv(_native.VecEnv, VectorEnv):
    """`num_envs` lepton envs stepped together in Rust, as a `gymnasium.vector.VectorEnv`.

    One `step(actions)` call steps every env with the GIL released (on `threads` threads) and
    returns batched numpy arrays; `infos["action_mask"]` is `(num_envs, num_actions)`.
    Autoreset is Gymnasium's `SAME_STEP` mode: an env whose episode ends is reset within the
    step, its row holds the next episode's first observation, and `infos["final_obs"]` /
    `infos["final_info"]` (with `action_mask`, `episode` return `r` and length `l`, and the
    scheduling `episode_metrics`) describe the episode that ended, each with Gymnasium's `_key`
    mask. `copy=False` returns the same arrays every step, overwritten in place (faster; copy
    what you keep): the observations, rewards, flags and masks, and in `infos` every array but
    `episode_metrics` (`final_obs[i]` is then a view of a row that env `i`'s next ended
    episode overwrites). The dicts are new each step either way, with the same keys and
    values. `reset(seed=s)` seeds env `i` with `s + i`; a list gives one seed per env.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        scenario: str,
        num_envs: int,
        *,
        threads: int = 1,
        seed: Optional[int] = None,
        copy: bool = True,
        scenario_dir: Optional[str] = None,
        **overrides: Any,
    ):
        self.scenario = scenario
        self.render_mode = None
        self.single_observation_space = spaces.Box(self.obs_low, self.obs_high, dtype=np.float32)
        self.single_action_space = spaces.Discrete(self.num_actions)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)

    def reset(
        self,
        *,
        seed: Optional[Union[int, Sequence[int]]] = None,
        options: Optional[dict] = None,
    ):
        if isinstance(seed, (int, np.integer)):
            super().reset(seed=int(seed))
        return self._reset(seed)

    def __repr__(self) -> str:
        return f"LeptonVectorEnv({self.scenario!r}, num_envs={self.num_envs})"


class Scheduler:
    """One of lepton's heuristics (`lepton.scheduler(name)`), acting on a lepton env."""

    def __init__(self, name: str):
        self._native = _native.Scheduler(name)

    @property
    def name(self) -> str:
        return self._native.name

    def act(self, env: gymnasium.Env) -> int:
        """The heuristic's action in `env`'s current state (legal in its action mask)."""
        return self._native.act(_lepton_env(env))

    def run_episode(self, env: gymnasium.Env, seed: int) -> dict:
        """Runs a whole episode of `env` from `seed` (under the heuristic's own discipline,
        e.g. `sjf+easy` backfills) and returns its scheduling metrics."""
        return self._native.run_episode(_lepton_env(env), seed)

    def __repr__(self) -> str:
        return f"lepton.Scheduler({self.name!r})"


def _lepton_env(env: gymnasium.Env) -> LeptonEnv:
    inner = env.unwrapped
    if not isinstance(inner, _native.Env):
        raise TypeError(f"expected a lepton env, got {type(inner).__name__}")
    return inner


def make(scenario: str, **kwargs: Any) -> LeptonEnv:
    """A lepton env without Gymnasium's wrappers (see `LeptonEnv` for the arguments)."""
    return LeptonEnv(scenario, **kwargs)


def make_vec(scenario: str, num_envs: int, **kwargs: Any) -> LeptonVectorEnv:
    """A native vector env (see `LeptonVectorEnv`); `scenario` may also be a registered id
    such as `"lepton/deeprm-v0"`."""
    return LeptonVectorEnv(_scenario_of(scenario), num_envs, **kwargs)


def scheduler(name: str) -> Scheduler:
    """A heuristic by name: `tetris`, `sjf`, `sjf+easy`, ... (`lepton.SCHEDULERS`)."""
    return Scheduler(name)


def _scenario_of(name: str) -> str:
    if name.startswith("lepton/") and name.endswith("-v0"):
        return name[len("lepton/") : -len("-v0")]
    if name == "lepton/" + CARTPOLE:
        return CARTPOLE
    return name


def _register() -> None:
    for name in SCENARIOS:
        gymnasium.register(
            id=f"lepton/{name}-v0",
            entry_point="lepton:LeptonEnv",
            vector_entry_point="lepton:LeptonVectorEnv",
            kwargs={"scenario": name},
        )
    gymnasium.register(
        id=f"lepton/{CARTPOLE}",
        entry_point="lepton:LeptonEnv",
        vector_entry_point="lepton:LeptonVectorEnv",
        kwargs={"scenario": CARTPOLE},
    )


_register()
