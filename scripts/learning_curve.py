#!/usr/bin/env python3
"""Learning curves of training runs from their TensorBoard events: the greedy evaluation's
completion-aware slowdown and its paired difference from the best heuristic, against env steps
and against wall time since the run's first event (imitation included).

usage: .venv/bin/python scripts/learning_curve.py runs/NAME [runs/NAME ...]
prints one Markdown table per run."""
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

for run in sys.argv[1:]:
    ea = EventAccumulator(run, size_guidance={'scalars': 0})
    ea.Reload()
    tags = ea.Tags()['scalars']
    if 'eval/completion_slowdown' not in tags:
        sys.exit(f'{run}: no eval/completion_slowdown (not a scheduling run, or no evaluation)')
    start = min(ea.Scalars(t)[0].wall_time for t in tags if ea.Scalars(t))
    vs = {e.step: e.value for e in ea.Scalars('eval/vs_best_heuristic')}
    best = {e.step: e.value for e in ea.Scalars('eval/best_heuristic_completion_slowdown')}
    print(f'\n{run}\n')
    print('| env steps | wall time (s) | completion slowdown | best heuristic | vs best heuristic |')
    print('|---:|---:|---:|---:|---:|')
    for e in ea.Scalars('eval/completion_slowdown'):
        print(f'| {e.step:,} | {e.wall_time - start:.0f} | {e.value:.3f} | {best.get(e.step, float("nan")):.3f} '
              f'| {100 * vs.get(e.step, float("nan")):+.1f}% |')
