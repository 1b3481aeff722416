#!/usr/bin/env bash
# Sets up everything `make demo` and `make test` need beyond Rust itself, idempotently:
#   1. a Python virtualenv in a per-user cache, keyed by the PyTorch version, holding
#      torch==2.13.0 (libtorch for tch 0.26), tensorboard (the real event-file reader the
#      tests use) and gymnasium (the reference CartPole the tests compare against);
#   2. the Python tools of the tests and benchmarks in the same virtualenv: maturin (builds the
#      `lepton` Python package, python/), pytest, Stable-Baselines3 and sb3-contrib;
#   3. two links inside the clone: `.venv` -> that virtualenv and `.libtorch` -> its
#      `site-packages/torch`, which `.cargo/config.toml` hands to tch as LIBTORCH.
# A second run finds the stamp files and returns at once. A user who already has libtorch
# exports LIBTORCH and may skip this script (the tests that need Python still want `.venv`).
set -euo pipefail

TORCH_VERSION=2.13.0
PY_PACKAGES=("torch==${TORCH_VERSION}" "tensorboard==2.21.0" "gymnasium==1.2.2")
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/lepton"
VENV="${LEPTON_VENV:-$CACHE_ROOT/venv-torch-${TORCH_VERSION}}"
STAMP="$VENV/.lepton-bootstrap-ok"
# stable-baselines3 and sb3-contrib need gymnasium<1.3, torch>=2.3 and cloudpickle; installed
# with --no-deps so that torch and gymnasium stay at the pins above.
SB3_VERSION=2.9.2
TOOLS=("maturin==1.16.0" "pytest==9.2.0")
TOOLS_NO_DEPS=("stable-baselines3==$SB3_VERSION" "sb3-contrib==$SB3_VERSION" "cloudpickle==3.1.2")
TOOLS_STAMP="$VENV/.lepton-tools-$(echo "${TOOLS[*]} ${TOOLS_NO_DEPS[*]}" | sha256sum | cut -c1-12)"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

say() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }

link_into_clone() {
    local site
    site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    ln -sfn "$VENV" "$ROOT/.venv"
    ln -sfn "$site/torch" "$ROOT/.libtorch"
}

install_tools() {
    say "installing ${TOOLS[*]} ${TOOLS_NO_DEPS[*]} into $VENV"
    "$VENV/bin/python" -m pip install --quiet "${TOOLS[@]}"
    "$VENV/bin/python" -m pip install --quiet --no-deps "${TOOLS_NO_DEPS[@]}"
    touch "$TOOLS_STAMP"
}

if [[ -f "$STAMP" && -f "$TOOLS_STAMP" ]]; then
    link_into_clone
    exit 0
fi

PYTHON="${PYTHON:-$(command -v python3 || true)}"
if [[ -z "$PYTHON" ]]; then
    say "error: python3 not found; install Python 3.9+ with pip, or export LIBTORCH=/path/to/libtorch"
    exit 2
fi

mkdir -p "$CACHE_ROOT"
# One bootstrap at a time per cache (two clones bootstrapping at once must not interleave pip runs).
exec 9>"$CACHE_ROOT/.bootstrap.lock"
if command -v flock >/dev/null; then flock 9; fi
if [[ -f "$STAMP" ]]; then
    [[ -f "$TOOLS_STAMP" ]] || install_tools
    link_into_clone
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
say "installing ${PY_PACKAGES[*]} into $VENV (first run only: ~1 minute, ~4.7 GB)"
"$VENV/bin/python" -m pip install --progress-bar on "${PY_PACKAGES[@]}"
"$VENV/bin/python" - <<'PY'
import os, torch
lib = os.path.join(os.path.dirname(torch.__file__), "lib")
assert os.path.exists(os.path.join(lib, "libtorch_cpu.so")), f"libtorch_cpu.so missing in {lib}"
print(f"[bootstrap] torch {torch.__version__} at {os.path.dirname(torch.__file__)}")
PY
touch "$STAMP"
install_tools
link_into_clone
say "done"
