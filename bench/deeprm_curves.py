"""PPO on `deeprm`: learning curves per env step and env steps/s, `make bench-deeprm-curves`.

Every contender trains 1,024,000 env steps on seeds 1, 2, 3 (contenders interleaved per seed,
so machine noise hits them alike), one torch thread, checkpoints off. The trainer's own greedy
evaluation runs every 102,400 steps on its 16 held-out episodes (`eval.seed`, disjoint from
the training seeds) and records the completion-aware mean slowdown; the table gives the mean
over the three seeds at each point, the mean over the curve, and the env steps/s of the whole
run (evaluation and any imitation warm start included, so it is below the throughput table's
figure). A warm-started contender also stepped the env for its teacher's decisions before its
step 0 (the "teacher" column: decisions of the cloned heuristic, forced waits included).

Usage: .venv/bin/python bench/deeprm_curves.py [--seeds 1 2 3] [--steps 1024000]
"""

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "target/release/lepton-train"
EVERY = 102_400

# (name, config, overrides)
CONTENDERS = [
    ("shipped (`ppo_deeprm.toml`)", "configs/ppo_deeprm.toml", []),
    ("shipped + skip_forced + clock", "configs/ppo_deeprm.toml",
     ["ppo.skip_forced=true", 'ppo.discount_by="clock"']),
    ("MLP 64-64, 16 envs × 64, skip_forced + clock", "configs/ppo_deeprm.toml",
     ["ppo.skip_forced=true", 'ppo.discount_by="clock"', "network.hidden=[64,64]",
      "ppo.num_envs=16", "ppo.num_steps=64"]),
    ("`ppo_deeprm_fast.toml`", "configs/ppo_deeprm_fast.toml", []),
]


def run(config, seed, steps, overrides, runs):
    name = f"{Path(config).stem}_s{seed}_{time.time_ns()}"
    cmd = [str(TRAIN), "--config", config, "--seed", str(seed), "--device", "cpu",
           "--total-steps", str(steps), "--runs-dir", str(runs), "--run-name", name,
           "--set", f"eval.every_steps={EVERY}", "--set", "run.checkpoint_every_steps=0",
           "--no-progress"]
    for o in overrides:
        cmd += ["--set", o]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    summary = json.loads((runs / name / "summary.json").read_text())
    lines = (runs / name / "evaluations.jsonl").read_text().splitlines()
    teacher = (summary.get("imitation") or {}).get("num_decisions", 0)
    return [json.loads(l)["completion_slowdown"] for l in lines], summary["session_sps"], teacher


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=1_024_000)
    args = parser.parse_args()
    results = {name: [] for name, _, _ in CONTENDERS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for name, config, overrides in CONTENDERS:
                curve, sps, teacher = run(config, seed, args.steps, overrides, Path(tmp))
                results[name].append((curve, sps, teacher))
                print(f"seed {seed} {name}: {' '.join(f'{x:.2f}' for x in curve)} ({sps:,.0f} steps/s)",
                      flush=True)
    points = min(len(c) for runs in results.values() for c, _, _ in runs)
    steps = [f"{(k + 1) * EVERY // 1000}k" for k in range(points)]
    print(f"\n| contender | teacher | {' | '.join(steps)} | mean | env steps/s |")
    print(f"|---|---:|{'---:|' * points}---:|---|")
    for name, runs in results.items():
        mean = [sum(c[k] for c, _, _ in runs) / len(runs) for k in range(points)]
        sps = [s for _, s, _ in runs]
        teacher = max(t for _, _, t in runs)
        print(f"| {name} | {f'{teacher:,}' if teacher else '—'} | {' | '.join(f'{m:.2f}' for m in mean)} | "
              f"{sum(mean) / points:.2f} | {min(sps):,.0f}–{max(sps):,.0f} |")


if __name__ == "__main__":
    main()
