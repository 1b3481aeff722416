#!/usr/bin/env bash
# Fails with one clear message when the libtorch that cargo will use is missing or is not the
# version tch 0.26 was written for, instead of letting the build end in a compiler/linker dump.
# Checks $LIBTORCH when set, else the clone's `.libtorch` link (what .cargo/config.toml uses).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WANT=2.13.0
DIR="${LIBTORCH:-$ROOT/.libtorch}"
fix="run 'make bootstrap' (or scripts/bootstrap.sh), or export LIBTORCH=/path/to/libtorch-$WANT"

fail() { printf 'error: libtorch at %s: %s\n  fix: %s\n' "$DIR" "$1" "$fix" >&2; exit 2; }

[[ -d "$DIR" ]] || fail "directory not found"
[[ -f "$DIR/lib/libtorch_cpu.so" || -f "$DIR/lib/libtorch_cpu.dylib" ]] || fail "lib/libtorch_cpu.so not found (not a libtorch directory)"
[[ -d "$DIR/include/torch" ]] || fail "include/torch not found (headers missing)"
if [[ -f "$DIR/version.py" ]]; then          # the PyTorch wheel's torch/ directory
    have=$(sed -n "s/^__version__ = '\([0-9.]*\).*/\1/p" "$DIR/version.py")
elif [[ -f "$DIR/build-version" ]]; then     # a libtorch zip from pytorch.org
    have=$(cut -d+ -f1 "$DIR/build-version")
else
    have=unknown
fi
[[ "$have" == "$WANT" ]] || fail "version $have found, tch 0.26 needs exactly $WANT"
