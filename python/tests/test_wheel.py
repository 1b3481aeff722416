"""The wheel on its own: installed into a fresh virtualenv (numpy and gymnasium from PyPI, no
checkout on the path), its Gymnasium ids work."""

import glob
import os
import subprocess
import sys
import venv

from conftest import ROOT

SNIPPET = """
import gymnasium, lepton
for name in ["lepton/deeprm-v0", "lepton/cloud-v0", "lepton/CartPole-v1"]:
    env = gymnasium.make(name)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs), name
    if "action_mask" in info:
        action = int(info["action_mask"].nonzero()[0][0])
    else:
        action = 0
    env.step(action)
envs = lepton.make_vec("tiny", 4)
envs.reset(seed=0)
print("ok", lepton.__file__)
"""


def test_the_wheel_works_in_a_fresh_virtualenv(tmp_path):
    maturin = os.path.join(os.path.dirname(sys.executable), "maturin")
    subprocess.run(
        [maturin, "build", "--quiet", "--profile", os.environ.get("PY_PROFILE", "dev"),
         "-m", "python/Cargo.toml", "--out", str(tmp_path / "wheels")],
        cwd=ROOT, check=True,
    )
    (wheel,) = glob.glob(str(tmp_path / "wheels" / "lepton-*.whl"))
    venv.create(tmp_path / "venv", with_pip=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--quiet", wheel], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run(
        [python, "-c", SNIPPET], cwd=elsewhere, check=True, capture_output=True, text=True
    ).stdout
    assert out.startswith("ok ") and str(tmp_path / "venv") in out
