"""lepton's heuristics from Python."""

import numpy as np
import pytest

import lepton


@pytest.mark.parametrize("name", ["tetris", "sjf", "fcfs", "random"])
def test_act_in_a_loop_equals_the_native_episode(name):
    env = lepton.make("cloud")
    scheduler = lepton.scheduler(name)
    _, info = env.reset(seed=9)
    done = False
    while not done:
        action = scheduler.act(env)
        assert info["action_mask"][action]
        _, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    stepped = info["episode_metrics"]
    native = lepton.scheduler(name).run_episode(lepton.make("cloud"), seed=9)
    assert stepped == native


def test_rollout_steps_as_it_runs_natively():
    # The rollout scheduler draws its worlds from the episode's seed: stepping it from Python
    # must hand it the same seed as a native episode.
    env = lepton.make("tiny")
    scheduler = lepton.scheduler("rollout:sjf:2")
    _, info = env.reset(seed=4)
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(scheduler.act(env))
        done = terminated or truncated
    native = lepton.scheduler("rollout:sjf:2").run_episode(lepton.make("tiny"), seed=4)
    assert info["episode_metrics"] == native


def test_run_episode_under_a_backfilling_discipline():
    env = lepton.make("lublin-1")
    easy = lepton.scheduler("sjf+easy").run_episode(env, seed=0)
    strict = lepton.scheduler("sjf+strict").run_episode(env, seed=0)
    assert easy["num_tasks"] == strict["num_tasks"] > 0
    assert easy["mean_bounded_slowdown"] < strict["mean_bounded_slowdown"]


def test_scheduler_errors():
    with pytest.raises(lepton.SchedulerError, match="unknown scheduler"):
        lepton.scheduler("nope")
    with pytest.raises(lepton.SchedulerError, match="call reset first"):
        lepton.scheduler("sjf").act(lepton.make("tiny"))
    with pytest.raises(lepton.ScenarioError, match="not a scheduling env"):
        env = lepton.make("CartPole-v1")
        env.reset(seed=0)
        lepton.scheduler("sjf").act(env)
    assert "tetris" in lepton.SCHEDULERS
