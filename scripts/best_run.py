#!/usr/bin/env python3
"""Prints the `best` checkpoint of the run with the highest model-selection score.

Usage: scripts/best_run.py RUN_DIR [RUN_DIR ...]

Each run's `summary.json` holds `best_eval_score`, the score its `best` checkpoint reached on
the run's model-selection episodes (what `[eval] select` maximises: minus the completion
slowdown, or the mean return). Picking among runs of different seeds by it is model selection
on those episodes too: it never reads a test episode. Runs without a score (evaluation off)
are an error, not skipped, so that a pick is always among every run named.
"""

import json
import sys
from pathlib import Path


def score(run: Path) -> float:
    summary = run / "summary.json"
    try:
        value = json.loads(summary.read_text())["best_eval_score"]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"{summary}: no best_eval_score ({e})")
    if value is None:
        sys.exit(f"{summary}: best_eval_score is null (did the run evaluate?)")
    return float(value)


def main() -> None:
    runs = [Path(a) for a in sys.argv[1:]]
    if not runs:
        sys.exit(__doc__.strip().splitlines()[2])
    best = max(runs, key=score)
    print(best / "checkpoints" / "best.json")


if __name__ == "__main__":
    main()
