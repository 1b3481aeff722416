#!/usr/bin/env bash
# Adds Ray (RLlib and Tune) and pytest to the project's virtualenv (the one scripts/bootstrap.sh
# made, which `.venv` links to), idempotently: a second run finds the stamp and returns at once.
#
# Ray shares the virtualenv rather than getting its own because RLlib trains with the same
# PyTorch, and pip resolves ray[rllib,tune]==2.60.0 without touching torch, gymnasium or numpy.
# The install holds those three at their installed versions (a constraints file), so a future
# Ray pin that wants another version fails here, loudly, instead of changing the trainer's
# libtorch under it.
set -euo pipefail

RAY_VERSION=2.60.0
PYTEST_VERSION=9.2.0
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
"$VENV/bin/python" -m pip freeze 2>/dev/null | grep -iE '^(torch|gymnasium|numpy)==' >"$constraints"
say "installing ray[rllib,tune]==${RAY_VERSION} and pytest into $VENV (first run only: ~1 minute), holding $(tr '\n' ' ' <"$constraints")"
"$VENV/bin/python" -m pip install --progress-bar off -c "$constraints" \
    "ray[rllib,tune]==${RAY_VERSION}" "pytest==${PYTEST_VERSION}"
touch "$STAMP"
say "done"
