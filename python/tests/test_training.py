"""Python RL libraries train on lepton envs: sb3-contrib's MaskablePPO and a CleanRL-style loop."""

import numpy as np
import torch

import lepton

torch.set_num_threads(1)


def test_maskable_ppo_trains_on_deeprm_and_acts_legally():
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.utils import get_action_masks

    env = lepton.make("deeprm")
    model = MaskablePPO("MlpPolicy", env, n_steps=512, batch_size=128, n_epochs=2, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=3072)
    assert model.num_timesteps >= 3072
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters()))
    obs, info = env.reset(seed=123)
    done, steps = False, 0
    while not done:
        mask = get_action_masks(env)
        assert np.array_equal(mask, info["action_mask"])
        action, _ = model.predict(obs, action_masks=mask, deterministic=True)
        assert mask[int(action)]
        obs, _, terminated, truncated, info = env.step(int(action))
        done, steps = terminated or truncated, steps + 1
    assert info["episode_metrics"]["num_tasks"] > 0


def test_cleanrl_style_ppo_loop_trains_on_the_vector_env():
    import ppo_masked

    result = ppo_masked.main([
        "--scenario", "deeprm", "--total-steps", "4096", "--num-envs", "8",
        "--num-steps", "128", "--eval-episodes", "2",
    ])
    assert result["steps"] == 4096
    assert len(result["returns"]) > 0 and all(np.isfinite(result["returns"]))
    assert result["policy"] >= 1.0 and result["baseline"] >= 1.0
