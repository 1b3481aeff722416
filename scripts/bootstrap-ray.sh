#!/usr/bin/env bash
# Adds Ray (RLlib and Tune) to the project's virtualenv (the one scripts/bootstrap.sh made,
# which `.venv` links to), idempotently: a second run finds the stamp and returns at once.
#
# Ray shares the virtualenv rather than getting its own because RLlib trains with the same
# PyTorch, and pip resolves ray[rllib,tune]==2.60.0 without changing any installed package
# (torch, gymnasium, numpy, ...). The install holds every installed package at its version (a
# constraints file), so a future Ray pin that wants another version of one fails here, loudly,
# instead of changing the trainer's libtorch or the tests' gymnasium under them.
set -euo pipefail

RAY_VERSION=2.60.0
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
VENV="$(readlink -f "$ROOT/.venv")"
STAMP="$VENV/.lepton-ray-${RAY_VERSION}-ok"

say() { printf '\033[1m[bootstrap-ray]\033[0m %s\n' "$*" >&2; }

[[ -f "$STAMP" ]] && exit 0
# The same lock as bootstrap.sh: one pip run at a time in the shared virtualenv.
exec 9>"$(dirname "$VENV")/.bootstrap.lock"
if command -v flock >/dev/null; then flock 9; fi
[[ -f "$STAMP" ]] && exit 0

constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
"$VENV/bin/python" -m pip freeze 2>/dev/null | grep -E '^[A-Za-z0-9._-]+==' >"$constraints"
say "installing ray[rllib,tune]==${RAY_VERSION} into $VENV (first run only: under a minute), holding the $(wc -l <"$constraints") installed packages at their versions"
"$VENV/bin/python" -m pip install --quiet -c "$constraints" "ray[rllib,tune]==${RAY_VERSION}"
touch "$STAMP"
say "done"
