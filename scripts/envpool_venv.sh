# Sourced by bench_python.sh and bench_throughput.sh (from the repository root): `envpool_venv
# TAG` prints the Python of a virtualenv in the per-user cache that holds EnvPool and what
# CleanRL's `ppo.py` imports (all pinned), made on first use (idempotent; TAG names the bench
# in its message). torch comes from lepton's .venv through a .pth line placed after the venv's
# own packages, so PyTorch 2.13.0 is not installed twice and .venv keeps bootstrap's pins.
ENVPOOL_VERSION=1.2.5

envpool_venv() {
    local venv="${XDG_CACHE_HOME:-$HOME/.cache}/lepton/venv-envpool-$ENVPOOL_VERSION"
    if [[ ! -f "$venv/.lepton-envpool-ok" ]]; then
        echo "[$1] installing envpool==$ENVPOOL_VERSION, tyro and tensorboard into $venv" >&2
        .venv/bin/python -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet "envpool==$ENVPOOL_VERSION" \
            "numpy==2.4.6" "gymnasium==1.2.2" "tyro==1.0.17" "tensorboard==2.21.0" >&2
        local purelib='import sysconfig; print(sysconfig.get_paths()["purelib"])'
        .venv/bin/python -c "$purelib" > "$("$venv/bin/python" -c "$purelib")/lepton-torch.pth"
        "$venv/bin/python" -c 'import envpool, torch, tyro' >&2
        touch "$venv/.lepton-envpool-ok"
    fi
    echo "$venv/bin/python"
}
