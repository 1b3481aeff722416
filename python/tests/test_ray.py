"""lepton on a local Ray cluster (2 CPUs): RLlib's PPO with action masking on a lepton env
with two env runners, and a Ray Tune search whose trials run lepton-train.

`make python-ray-test` installs Ray into the project's virtualenv and runs these; without Ray
they are skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (make python-ray-test installs it)")

import lepton  # noqa: E402
from lepton import tune as lepton_tune  # noqa: E402
from lepton.rllib import IllegalActionError, MaskedDictObservation, ppo_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
QUICK_CONFIG = ROOT / "configs" / "ppo_quick.toml"
# The lepton-train that `cargo test --workspace` has just built (a release build may be older
# than this clone's sources); LEPTON_TRAIN names another.
os.environ.setdefault("LEPTON_TRAIN", str(ROOT / "target" / "debug" / "lepton-train"))


@pytest.fixture(scope="module")
def local_cluster():
    """One local Ray cluster of 2 CPUs for the module's tests (starting one takes seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_masked_dict_observation_refuses_a_masked_action():
    env = MaskedDictObservation(lepton.make("tiny"))
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert obs["action_mask"].tolist() == info["action_mask"].astype(np.float32).tolist()
    masked = np.flatnonzero(~info["action_mask"])
    assert masked.size > 0, "tiny's first decision has illegal placements"
    with pytest.raises(IllegalActionError, match=f"action {masked[0]} is masked out"):
        env.step(masked[0])
    legal = int(np.flatnonzero(info["action_mask"])[0])
    obs, _, _, _, _ = env.step(legal)
    assert env.observation_space.contains(obs)


def test_rllib_ppo_with_action_masking_on_two_env_runners(local_cluster):
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    config = ppo_config(
        "tiny", num_env_runners=2, train_batch_size=256, minibatch_size=64, seed=0
    )
    algo = config.build_algo()
    try:
        assert algo.env_runner_group.num_healthy_remote_workers() == 2
        results = [algo.train() for _ in range(2)]
    finally:
        algo.stop()
    # An illegal action would have raised IllegalActionError in an env runner and failed
    # train(); these say that both iterations sampled and learned.
    assert [r["training_iteration"] for r in results] == [1, 2]
    sampled = [r[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME] for r in results]
    assert sampled[0] >= 256 and sampled[1] >= sampled[0] + 256
    assert "lepton/mean_slowdown" in results[1][ENV_RUNNER_RESULTS], "no episode finished"


def test_tune_runs_a_four_trial_asha_search_of_lepton_train(local_cluster, tmp_path):
    from ray import tune

    tuner = lepton_tune.build_tuner(
        QUICK_CONFIG,
        {"ppo.lr": tune.loguniform(1e-4, 3e-3), "ppo.ent_coef": tune.uniform(0.0, 0.03)},
        scheduler="asha",
        num_samples=4,
        metric="completion_slowdown",
        mode="min",
        storage_path=str(tmp_path / "ray_results"),
        name="asha",
    )
    grid = tuner.fit()
    assert len(grid) == 4
    assert grid.num_errors == 0, [r.error for r in grid]
    for result in grid:
        # Every trial reports at its first evaluation (ASHA's grace period), and only at
        # evaluations: env_steps are multiples of eval.every_steps = 512, up to 2048.
        assert result.metrics["env_steps"] in (512, 1024, 2048)
        assert result.metrics["completion_slowdown"] > 0
        history = result.metrics_dataframe["env_steps"].tolist()
        assert history == list(range(512, result.metrics["env_steps"] + 1, 512))
        run_dir = Path(result.path) / "lepton_0"
        lines = (run_dir / "evaluations.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in lines][: len(history)] == history
    # Tune's pick (by the last report of each trial) is the lowest last slowdown.
    best = grid.get_best_result()
    assert best.metrics["completion_slowdown"] == min(
        r.metrics["completion_slowdown"] for r in grid
    )


def test_toml_values_for_set_overrides():
    assert lepton_tune.toml_value(True) == "true"
    assert lepton_tune.toml_value(3) == "3"
    assert lepton_tune.toml_value(np.int64(3)) == "3"
    assert lepton_tune.toml_value(2.5e-4) == "0.00025"
    assert lepton_tune.toml_value(1e-5) == "1e-05"
    assert lepton_tune.toml_value(float("inf")) == "inf"
    assert lepton_tune.toml_value('a "b"') == '"a \\"b\\""'
    assert lepton_tune.toml_value([64, 64]) == "[64, 64]"
    assert lepton_tune.set_args({"ppo.lr": 0.001, "network.hidden": [8]}) == [
        "--set",
        "ppo.lr=0.001",
        "--set",
        "network.hidden=[8]",
    ]


def test_evaluation_tail_returns_only_complete_lines(tmp_path):
    path = tmp_path / "evaluations.jsonl"
    tail = lepton_tune.EvaluationTail(path)
    assert tail.new_lines() == []
    path.write_text('{"step": 1}\n{"step": 2')
    assert tail.new_lines() == [{"step": 1}]
    with open(path, "a") as f:
        f.write(', "x": 0.5}\n')
    assert tail.new_lines() == [{"step": 2, "x": 0.5}]
    assert tail.new_lines() == []


def test_lepton_train_is_found_through_the_environment_or_the_clone(monkeypatch, tmp_path):
    monkeypatch.setenv("LEPTON_TRAIN", str(tmp_path / "lepton-train"))
    assert lepton_tune.find_lepton_train() == tmp_path / "lepton-train"
    monkeypatch.delenv("LEPTON_TRAIN")
    monkeypatch.chdir(ROOT)
    found = lepton_tune.find_lepton_train()
    assert found.parent.parent == ROOT / "target" and os.access(found, os.X_OK)


def test_tune_pbt_hands_checkpoints_over_between_lepton_runs(local_cluster, tmp_path):
    """PBT on two trials: every report carries a checkpoint, every lepton run of a trial
    (the first, its own run resumed, or a new run from another trial's weights and Adam
    state) reports each of its evaluations, and every trial trains to the end. Whether PBT
    exploits depends on timing; the runs checked here cover both restarts when it does."""
    from ray import tune

    tuner = lepton_tune.build_tuner(
        QUICK_CONFIG,
        {"ppo.lr": tune.loguniform(1e-4, 3e-3)},
        scheduler="pbt",
        num_samples=2,
        total_steps=4096,
        storage_path=str(tmp_path / "ray_results"),
        name="pbt",
    )
    grid = tuner.fit()
    assert grid.num_errors == 0, [r.error for r in grid]
    for result in grid:
        history = result.metrics_dataframe
        assert result.metrics["env_steps"] == 4096
        assert history["checkpoint_dir_name"].notna().all()
        assert result.config["set"]["ppo.anneal_lr"] is False
        assert all(step % 512 == 0 for step in history["env_steps"])
        for run in Path(result.path).glob("lepton_*"):
            lines = (run / "evaluations.jsonl").read_text().splitlines()
            run_steps = [json.loads(line)["step"] for line in lines]
            assert run_steps == list(range(512, 512 * len(run_steps) + 1, 512))
            # A restart with other hyperparameters starts from the donor's weights and Adam.
            config = (run / "config.toml").read_text()
            assert ("init_from" in config) == ("init_optimizer = true" in config)
