"""Training throughput, `make bench-throughput` (also the end of `make bench`).

Prints Markdown tables:
1. PPO on CartPole-v1, per seed, the contenders interleaved (lepton with CleanRL's settings,
   lepton's large-batch preset, Stable-Baselines3 with CleanRL's settings, and with
   `--cleanrl-src` CleanRL's own `ppo.py` on EnvPool with its settings and with the
   large-batch preset's rollout, see bench/cleanrl_envpool.py): the env step at
   which the 20-episode mean return first reached 475, the training seconds to it, the final
   20-episode mean and env steps/s, with lepton's time shares, and lepton's learning curve: the
   mean return of the 20 episodes before 100k, 200k, 300k and 500k env steps (from its
   TensorBoard events). lepton runs with evaluation and checkpoints off (SB3 evaluates and
   saves nothing either); one torch thread each.
2. PPO on `deeprm`: env steps/s of the shipped config, DeepRM's 20-unit network, and the
   20-unit network at large batch, each of the three also with `ppo.skip_forced` (204,800
   steps, evaluation and checkpoints off); then `ppo_deeprm_fast.toml`'s whole run on each
   seed (its Tetris clone included in the time).
3. The CartPole vector envs at 256 envs on one thread (`cargo bench ... cartpole-soa`).

Usage: scripts/bench_throughput.sh [--seeds 1 2 3]   (CLEANRL_SRC=PATH adds CleanRL)
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "target/release/lepton-train"
QUIET = ["--set", "eval.every_steps=0", "--set", "run.checkpoint_every_steps=0", "--no-progress"]
CURVE_STEPS = [100_000, 200_000, 300_000, 500_000]
# The envs take forced steps themselves (they still count as env steps), discounting by the clock.
SKIP = ["--set", "ppo.skip_forced=true", "--set", 'ppo.discount_by="clock"']


def curve(run_dir):
    """The mean return of the last 20 training episodes that ended at or before each of
    CURVE_STEPS, read from the run's TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    returns = [(e.step, e.value) for e in events.Scalars("charts/episodic_return")]
    out = []
    for at in CURVE_STEPS:
        last = [value for step, value in returns if step <= at][-20:]
        out.append(f"{sum(last) / len(last):.0f}" if last else "—")
    return " / ".join(out)


def lepton(config, seed, runs, extra=()):
    name = f"{Path(config).stem}_s{seed}_{time.time_ns()}"
    cmd = [str(TRAIN), "--config", config, "--seed", str(seed), "--device", "cpu",
           "--runs-dir", str(runs), "--run-name", name, *QUIET, *extra]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    s = json.loads((Path(runs) / name / "summary.json").read_text())
    first = next((step for step, mean in s["return_highs_20"] if mean >= 475), None)
    share = s["time_share"]
    total = sum(share.values())
    return {
        "reached": first,
        # No evaluation runs, so the rate is steady and the time to a step is step / SPS.
        "seconds": first / s["session_sps"] if first else None,
        "final": s["mean_return_last_20"],
        "sps": s["session_sps"],
        "shares": " / ".join(f"{100 * share[k] / total:.0f}%" for k in ("env", "inference", "update")),
        "curve": curve(Path(runs) / name) if "cartpole" in config else "—",
    }


def sb3(seed):
    out = subprocess.run(
        [sys.executable, "bench/sb3_run.py", "ppo", "--seed", str(seed), "--budget", "500000",
         "--mark-steps", "100000"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return external(out)


def external(stdout):
    """A row from the JSON line another library's run script printed last (sb3_run.py,
    cleanrl_envpool.py): no time shares or curve from TensorBoard."""
    r = json.loads(stdout.strip().splitlines()[-1])
    return {"reached": r["reached_step"], "seconds": r["reached_s"], "final": r["mean_return_last_20"],
            "sps": r["sps"], "shares": "—", "curve": "—"}


# CleanRL's flags for the large-batch preset's rollout and update (`ppo_cartpole_fast.toml`);
# its network stays CleanRL's 64-64 (ppo.py has no flag for it).
CLEANRL_FAST = ["--num-envs", "128", "--num-steps", "128", "--num-minibatches", "4", "--update-epochs", "2",
                "--learning-rate", "5e-3", "--total-timesteps", "2000000"]


def cleanrl(python, src, seed, extra=()):
    with tempfile.TemporaryDirectory() as cwd:  # ppo.py writes its TensorBoard runs/ here
        out = subprocess.run(
            [python, str(ROOT / "bench/cleanrl_envpool.py"), "--cleanrl-src", str(src), "--",
             "--seed", str(seed), "--no-cuda", "--no-track", *extra],
            cwd=cwd, check=True, capture_output=True, text=True).stdout
    return external(out)


def row(name, seed, r):
    reached = f"{r['reached']:,}" if r["reached"] else "not reached"
    seconds = f"{r['seconds']:.1f}" if r["seconds"] else "—"
    return (f"| {name} | {seed} | {reached} | {seconds} | {r['final']:.1f} | {r['curve']} "
            f"| {r['sps']:,.0f} | {r['shares']} |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--cleanrl-python", help="a Python with torch, envpool, tyro (scripts/bench_throughput.sh)")
    parser.add_argument("--cleanrl-src", type=Path, help="a checkout of github.com/vwxyzjn/cleanrl")
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "lepton-train"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as runs:
        print("**PPO on CartPole-v1, one torch thread** (contenders interleaved per seed)\n")
        print("| contender | seed | steps to 475 | training s to 475 | final 20-episode mean "
              "| 20-episode mean at 100k / 200k / 300k / 500k steps | env steps/s | env / inference / update |")
        print("|---|---:|---:|---:|---:|---|---:|---|")
        for seed in args.seeds:
            print(row("lepton, CleanRL settings (`ppo_cartpole.toml`)", seed,
                      lepton("configs/ppo_cartpole.toml", seed, runs)), flush=True)
            print(row("lepton, large batch (`ppo_cartpole_fast.toml`)", seed,
                      lepton("configs/ppo_cartpole_fast.toml", seed, runs)), flush=True)
            print(row("SB3, CleanRL settings", seed, sb3(seed)), flush=True)
            if args.cleanrl_src:
                print(row("CleanRL `ppo.py` on EnvPool, CleanRL settings", seed,
                          cleanrl(args.cleanrl_python, args.cleanrl_src, seed)), flush=True)
                print(row("CleanRL `ppo.py` on EnvPool, the large-batch preset's rollout", seed,
                          cleanrl(args.cleanrl_python, args.cleanrl_src, seed, CLEANRL_FAST)), flush=True)
        print("\n**PPO on `deeprm`, env steps/s** (204,800 steps, seed 1, unless the row says otherwise)\n")
        print("| configuration | env steps/s | env / inference / update |")
        print("|---|---:|---|")
        deeprm = [
            ("`ppo_deeprm.toml` (MLP 128-128, 8 envs × 256)", []),
            ("MLP [20] (DeepRM's size)", ["--set", "network.hidden=[20]"]),
            ("MLP [20], 64 envs × 128, 2 minibatches", ["--set", "network.hidden=[20]", "--set", "ppo.num_envs=64",
                                                         "--set", "ppo.num_steps=128", "--set", "ppo.num_minibatches=2"]),
            ("`ppo_deeprm.toml` + skip_forced", SKIP),
            ("MLP 64-64, 16 envs × 64, skip_forced", [*SKIP, "--set", "network.hidden=[64,64]", "--set", "ppo.num_envs=16",
                                                      "--set", "ppo.num_steps=64"]),
            ("MLP [20], 64 envs × 128, 2 minibatches, skip_forced",
             [*SKIP, "--set", "network.hidden=[20]", "--set", "ppo.num_envs=64", "--set", "ppo.num_steps=128",
              "--set", "ppo.num_minibatches=2"]),
        ]
        for name, extra in deeprm:
            r = lepton("configs/ppo_deeprm.toml", 1, runs, ["--total-steps", "204800", *extra])
            print(f"| {name} | {r['sps']:,.0f} | {r['shares']} |", flush=True)
        for seed in args.seeds:
            r = lepton("configs/ppo_deeprm_fast.toml", seed, runs)
            print(f"| `ppo_deeprm_fast.toml`, whole run (1,024,000 steps, Tetris clone included), seed {seed} "
                  f"| {r['sps']:,.0f} | {r['shares']} |", flush=True)
    print("\n**CartPole vector envs, 256 envs, one thread, random actions**\n")
    out = subprocess.run(["cargo", "bench", "-q", "-p", "lepton-env", "--bench", "throughput", "--", "cartpole-soa"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    print("```\n" + "\n".join(l for l in out.splitlines() if l.startswith("cartpole-soa")) + "\n```")


if __name__ == "__main__":
    main()
