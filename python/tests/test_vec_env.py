"""The native vector env against single envs, Gymnasium's SAME_STEP autoreset, and its options."""

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import lepton


def first_legal(masks, k):
    """A deterministic legal action per row that varies with the step index k."""
    return np.array([np.flatnonzero(m)[(7 * k) % m.sum()] for m in masks], dtype=np.int64)


@pytest.mark.parametrize("name,threads", [("tiny", 1), ("deeprm", 2), ("CartPole-v1", 1)])
def test_vector_env_matches_single_envs_with_same_step_autoreset(name, threads):
    n, seed = 3, 40
    venv = lepton.make_vec(name, n, threads=threads)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    singles = [lepton.make(name) for _ in range(n)]
    obs, infos = venv.reset(seed=seed)
    single_obs = [env.reset(seed=seed + i) for i, env in enumerate(singles)]
    for i in range(n):
        assert np.array_equal(obs[i], single_obs[i][0])
        assert np.array_equal(infos["action_mask"][i], single_obs[i][1]["action_mask"])
    masks, ended_episodes = infos["action_mask"], 0
    for k in range(600):
        actions = first_legal(masks, k)
        obs, rewards, terms, truncs, infos = venv.step(actions)
        assert obs.shape == (n, venv.single_observation_space.shape[0]) and obs.dtype == np.float32
        assert rewards.dtype == np.float64 and terms.dtype == bool
        for i, env in enumerate(singles):
            o, r, t, tr, info = env.step(int(actions[i]))
            assert (r, t, tr) == (rewards[i], terms[i], truncs[i])
            if t or tr:
                ended_episodes += 1
                assert infos["_final_obs"][i] and infos["_final_info"][i]
                assert np.array_equal(infos["final_obs"][i], o)
                final = infos["final_info"]
                assert np.array_equal(final["action_mask"][i], info["action_mask"])
                assert final["episode"]["_l"][i] and final["episode"]["l"][i] > 0
                if "episode_metrics" in info:
                    metrics = final["episode_metrics"]
                    assert metrics["_mean_slowdown"][i]
                    assert metrics["mean_slowdown"][i] == info["episode_metrics"]["mean_slowdown"]
                o, info = env.reset()
            else:
                assert "final_obs" not in infos or not infos["_final_obs"][i]
            assert np.array_equal(obs[i], o), f"env {i} step {k}"
            assert np.array_equal(infos["action_mask"][i], info["action_mask"])
        masks = infos["action_mask"]
    assert ended_episodes > 0


def test_episode_returns_in_final_info_add_up():
    venv = lepton.make_vec("CartPole-v1", 4)
    venv.reset(seed=0)
    running = np.zeros(4)
    lengths = np.zeros(4, dtype=int)
    checked = 0
    for k in range(300):
        _, rewards, terms, truncs, infos = venv.step(np.full(4, k % 2))
        running += rewards
        lengths += 1
        for i in np.flatnonzero(terms | truncs):
            assert infos["final_info"]["episode"]["r"][i] == running[i]
            assert infos["final_info"]["episode"]["l"][i] == lengths[i]
            running[i], lengths[i], checked = 0, 0, checked + 1
    assert checked > 4


def test_copy_false_reuses_the_same_arrays_and_threads_do_not_change_results():
    fast = lepton.make_vec("deeprm", 8, copy=False, threads=2)
    slow = lepton.make_vec("deeprm", 8)
    a, ia = fast.reset(seed=1)
    b, ib = slow.reset(seed=1)
    assert np.array_equal(a, b)
    first = None
    for k in range(50):
        actions = first_legal(ib["action_mask"], k)
        a, ra, *_ , ia = fast.step(actions)
        b, rb, *_ , ib = slow.step(actions)
        assert np.array_equal(a, b) and np.array_equal(ra, rb)
        first = a if first is None else first
        assert a is first
    assert fast.num_threads == 2


def assert_same_infos(fast, slow, path="infos"):
    """The same keys in the same order, and equal arrays of the same dtype under them."""
    assert list(fast) == list(slow), path
    for key in fast:
        a, b, where = fast[key], slow[key], f"{path}[{key!r}]"
        if isinstance(b, dict):
            assert_same_infos(a, b, where)
        elif b.dtype == object:
            assert a.dtype == object and a.shape == b.shape, where
            for i, (x, y) in enumerate(zip(a, b)):
                assert (x is None) == (y is None), f"{where}[{i}]"
                assert y is None or (x.dtype == y.dtype and np.array_equal(x, y)), f"{where}[{i}]"
        else:
            assert a.dtype == b.dtype and np.array_equal(a, b), where


@pytest.mark.parametrize("name,num_envs", [("CartPole-v1", 16), ("deeprm", 8)])
def test_copy_false_gives_the_same_infos_in_reused_final_arrays(name, num_envs):
    fast = lepton.make_vec(name, num_envs, copy=False)
    slow = lepton.make_vec(name, num_envs)
    _, fast_infos = fast.reset(seed=3)
    _, slow_infos = slow.reset(seed=3)
    assert_same_infos(fast_infos, slow_infos)
    final_obs, ended_steps = None, 0
    for k in range(400):
        actions = first_legal(slow_infos["action_mask"], k)
        *fast_out, fast_infos = fast.step(actions)
        *slow_out, slow_infos = slow.step(actions)
        for a, b in zip(fast_out, slow_out):
            assert a.dtype == b.dtype and np.array_equal(a, b)
        assert_same_infos(fast_infos, slow_infos)
        if "final_obs" in slow_infos:
            ended_steps += 1
            final_obs = fast_infos["final_obs"] if final_obs is None else final_obs
            assert fast_infos["final_obs"] is final_obs, "copy=False reuses the final arrays"
    assert ended_steps > 3


def test_seed_lists_and_first_reset_without_seed():
    venv = lepton.make_vec("cloud", 3)
    obs, _ = venv.reset(seed=[7, 7, 8])
    assert np.array_equal(obs[0], obs[1]) and not np.array_equal(obs[0], obs[2])
    fresh = lepton.make_vec("cloud", 2)
    first, _ = fresh.reset()
    assert not np.array_equal(first[0], first[1]), "envs of a vector play different episodes"
    with pytest.raises(lepton.ScenarioError, match="2 seeds given for 3 envs"):
        venv.reset(seed=[1, 2])


def test_bad_actions_are_refused_with_the_env_index():
    venv = lepton.make_vec("tiny", 2)
    with pytest.raises(lepton.ActionError, match="before reset"):
        venv.step(np.zeros(2, dtype=np.int64))
    _, infos = venv.reset(seed=0)
    illegal = int(np.flatnonzero(~infos["action_mask"][1])[0])
    legal = int(np.flatnonzero(infos["action_mask"][0])[0])
    with pytest.raises(lepton.ActionError, match=f"env 1: action {illegal} is illegal"):
        venv.step(np.array([legal, illegal]))
    with pytest.raises(lepton.ActionError, match="expected 2 actions"):
        venv.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(lepton.ActionError, match="env 0: action -1"):
        venv.step([-1, legal])


def test_gymnasium_make_vec_uses_the_native_vector_env():
    venv = gymnasium.make_vec("lepton/deeprm-v0", num_envs=4)
    assert isinstance(venv.unwrapped, lepton.LeptonVectorEnv)
    obs, infos = venv.reset(seed=0)
    assert obs.shape == (4, venv.single_observation_space.shape[0])
    assert venv.action_space.shape == (4,)
