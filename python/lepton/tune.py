"""Ray Tune driving lepton's own trainer: each trial is one ``lepton-train`` process.

A trial's config (Tune's ``param_space``) names a training config and the ``--set`` overrides
that make the trial::

    {
        "config": "/abs/path/configs/ppo_deeprm.toml",   # must exist on every node
        "set": {"ppo.lr": tune.loguniform(1e-4, 1e-3)},  # lepton-train --set KEY=VALUE
        "total_steps": 200_000,                          # optional: --total-steps
    }

:func:`train_lepton` runs ``lepton-train`` for the trial, follows the run's
``evaluations.jsonl`` (one line per periodic evaluation) and reports every line to Tune as it
appears: the ``eval/*`` values under their names without the prefix (``episodic_return``,
``completion_slowdown``, ``vs_best_heuristic``, ...) plus ``env_steps``. The metric to
optimise is the Tuner's choice (``TuneConfig(metric="completion_slowdown", mode="min")``);
schedulers should count time in ``env_steps``.

When Tune stops a trial (ASHA), the process gets SIGTERM, which lepton-train answers by
saving at the end of its iteration; it is killed if it takes longer than ``stop_grace_s``.
The process also gets SIGTERM when the Tune worker dies (Linux ``PR_SET_PDEATHSIG``).

Each (re)start of a trial is one lepton run, ``lepton_0``, ``lepton_1``, ... in the trial's
directory. Tune copies the directories of running trials to its storage now and then: a copy
that races lepton-train replacing or pruning a checkpoint file logs an error and is retried
(the final copy, after the process has ended, is complete).

Checkpoints (needed by PBT) are on with ``"checkpoint": True``: the run then checkpoints at
every evaluation, keeps them all, and each report carries the checkpoint of its step. A
trial restored from a checkpoint with the same ``set`` resumes it (``lepton-train
--resume``: the same run, continued exactly on the CPU); one restored from another trial's
checkpoint with other hyperparameters (PBT's exploit) starts a new lepton run from its
weights and optimizer state (``--init-from ... --init-optimizer``) for the steps the trial
has left, because a resume refuses changed hyperparameters. Such a run starts its schedules
afresh: use ``ppo.anneal_lr = false`` under PBT, as :func:`build_tuner` does. lepton-train
does not wait for Tune: when PBT restarts a trial from a checkpoint, what the run trained
past it is lost.

Ray is imported inside the functions that use it: ``import lepton.tune`` and its helpers work
without Ray.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

EVALUATIONS_FILE = "evaluations.jsonl"
#: Written into every checkpoint this module hands to Tune.
STATE_FILE = "lepton_tune.json"


def find_lepton_train() -> Path:
    """The ``lepton-train`` binary, as an absolute path: ``$LEPTON_TRAIN``, else the release
    build, else the debug build of the clone in the working directory (or of the clone this
    module is in, for an editable install), else ``lepton-train`` on the ``PATH``. The
    binaries carry an rpath to libtorch."""
    if env := os.environ.get("LEPTON_TRAIN"):
        return Path(env).resolve()
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        for profile in ("release", "debug"):
            candidate = root / "target" / profile / "lepton-train"
            if candidate.is_file():
                return candidate.resolve()
    if found := shutil.which("lepton-train"):
        return Path(found).resolve()
    raise FileNotFoundError(
        "lepton-train not found: build it (cargo build --release -p lepton-train) in the "
        "clone you run from, or set LEPTON_TRAIN to its path"
    )


def toml_value(value: Any) -> str:
    """``value`` as the TOML literal ``--set KEY=VALUE`` expects."""
    if hasattr(value, "item") and not isinstance(value, (str, list, tuple)):
        value = value.item()  # a numpy scalar, as search algorithms may hand out
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # repr is the shortest round-trip form; TOML spells the non-finite ones in lowercase.
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(repr(value), repr(value))
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as a TOML value")


def set_args(overrides: Mapping[str, Any]) -> list[str]:
    """``--set KEY=VALUE`` arguments, in the mapping's order."""
    out: list[str] = []
    for key, value in overrides.items():
        out += ["--set", f"{key}={toml_value(value)}"]
    return out


def eval_every_steps(config_path: Path, overrides: Mapping[str, Any]) -> int:
    """The run's ``eval.every_steps``: the override if there is one, else the config file's."""
    if "eval.every_steps" in overrides:
        return int(overrides["eval.every_steps"])
    with open(config_path, "rb") as f:
        return int(tomllib.load(f).get("eval", {}).get("every_steps", 0))


def trial_total_steps(
    config_path: Path, overrides: Mapping[str, Any], total_steps: int | None
) -> int:
    """A trial's env steps: ``total_steps`` if given, else the ``train.total_steps``
    override, else the config file's."""
    if total_steps is not None:
        return int(total_steps)
    if "train.total_steps" in overrides:
        return int(overrides["train.total_steps"])
    with open(config_path, "rb") as f:
        return int(tomllib.load(f)["train"]["total_steps"])


class EvaluationTail:
    """Follows a run's ``evaluations.jsonl``: :meth:`new_lines` returns the complete lines
    written since the last call (a line being written is left for the next call)."""

    def __init__(self, path: Path):
        self.path = path
        self._offset = 0

    def new_lines(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self._offset += end
        return [json.loads(line) for line in data[:end].splitlines() if line.strip()]


def checkpoint_stem(step: int) -> str:
    """The file stem of a run's periodic checkpoint at ``step`` (``checkpoints/step_*``)."""
    return f"step_{step:010d}"


def copy_checkpoint(run_dir: Path, step: int, dest: Path, state: Mapping[str, Any]) -> None:
    """Writes into ``dest`` what a later trial needs to continue the run at ``step``: the
    run's ``config.toml``, its periodic checkpoint at ``step`` (every file of that stem), the
    evaluation lines up to ``step`` and ``state`` as ``lepton_tune.json``."""
    stem = checkpoint_stem(step)
    (dest / "checkpoints").mkdir(parents=True)
    for file in (run_dir / "checkpoints").glob(f"{stem}.*"):
        shutil.copy2(file, dest / "checkpoints" / file.name)
    if not (dest / "checkpoints" / f"{stem}.json").is_file():
        raise FileNotFoundError(f"{run_dir}/checkpoints/{stem}.json")
    shutil.copy2(run_dir / "config.toml", dest / "config.toml")
    lines = (run_dir / EVALUATIONS_FILE).read_text().splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line)["step"] <= step]
    (dest / EVALUATIONS_FILE).write_text("".join(kept))
    (dest / STATE_FILE).write_text(json.dumps(dict(state), indent=2))


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM when the thread that started it ends."""
    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@contextlib.contextmanager
def lepton_process(args: list[str], log: Path, stop_grace_s: float) -> Iterator[subprocess.Popen]:
    """``lepton-train args`` with stdout and stderr in ``log``; on leaving the block (a
    finished run, an error, or Tune stopping the trial) a process still running gets SIGTERM
    and, after ``stop_grace_s``, SIGKILL."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if os.uname().sysname == "Linux" else None,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=stop_grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _plain(value: Any) -> Any:
    """JSON for a numpy scalar (``json.dumps``'s ``default``)."""
    return value.item()


def _log_tail(log: Path, lines: int = 20) -> str:
    try:
        return "".join(log.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except FileNotFoundError:
        return ""


def train_lepton(config: dict[str, Any]) -> None:
    """Tune's function trainable: one ``lepton-train`` run per trial (see the module docs).

    ``config`` keys: ``config`` (the training config file, an absolute path as
    :func:`trial_config` writes it), ``set`` (overrides), ``binary`` (``lepton-train``'s
    absolute path; found by :func:`find_lepton_train` when absent), optionally
    ``total_steps``, ``checkpoint`` (bool), ``args`` (more ``lepton-train`` arguments, e.g.
    ``["--device", "cuda"]``), ``poll_s`` and ``stop_grace_s``.
    """
    from ray import tune

    config_path = Path(config["config"])
    overrides: dict[str, Any] = dict(config.get("set", {}))
    use_checkpoints = bool(config.get("checkpoint", False))
    poll_s = float(config.get("poll_s", 0.5))
    stop_grace_s = float(config.get("stop_grace_s", 30.0))
    binary = str(config.get("binary") or find_lepton_train())

    trial_dir = Path(tune.get_context().get_trial_dir())
    trial_dir.mkdir(parents=True, exist_ok=True)
    log = trial_dir / "lepton-train.log"
    # Every (re)start of the trial gets its own lepton run directory.
    session = 0
    while (trial_dir / f"lepton_{session}").exists():
        session += 1
    run_dir = trial_dir / f"lepton_{session}"

    args = [binary, "--no-progress", *config.get("args", [])]
    offset = 0  # env steps trained before this lepton run started (PBT's exploit)
    total_steps = trial_total_steps(config_path, overrides, config.get("total_steps"))
    restored = tune.get_checkpoint()
    if restored is None:
        args += ["--config", str(config_path), *set_args(overrides)]
    else:
        with restored.as_directory() as d:
            state = json.loads((Path(d) / STATE_FILE).read_text())
            step = int(state["env_steps"])
            if step >= total_steps:
                # Restored from a finished run (PBT pauses trials at their last report and
                # copies finished donors): nothing is left to train; the checkpoint's last
                # evaluation, and the checkpoint itself for later exploits, are the trial's.
                last = (Path(d) / EVALUATIONS_FILE).read_text().splitlines()[-1]
                tune.report({**json.loads(last), "env_steps": step}, checkpoint=restored)
                return
            if state["set"] == json.loads(json.dumps(overrides, default=_plain)):
                shutil.copytree(d, run_dir)
                (run_dir / STATE_FILE).unlink()
                args += ["--resume", str(run_dir)]
                offset = int(state["offset"])
            else:
                # Inside the new run's directory (lepton-train only refuses one that holds
                # checkpoints/): the run keeps the checkpoint its config.toml names.
                donor = run_dir / "donor"
                shutil.copytree(Path(d) / "checkpoints", donor)
                meta = donor / f"{checkpoint_stem(step - int(state['offset']))}.json"
                args += ["--config", str(config_path), *set_args(overrides)]
                args += ["--init-from", str(meta), "--init-optimizer"]
                offset = step
    if use_checkpoints:
        every = eval_every_steps(config_path, overrides)
        if every <= 0:
            raise ValueError("checkpoints follow the evaluations: set eval.every_steps > 0")
        # Every evaluation's checkpoint stays until the run ends: lepton-train may be several
        # evaluations ahead of the reports, and pruning would remove checkpoints not yet
        # handed to Tune.
        keep = (total_steps - offset) // every + 2
        args += ["--set", f"run.checkpoint_every_steps={every}"]
        args += ["--set", f"run.keep_checkpoints={keep}"]
    args += ["--total-steps", str(total_steps - offset)]
    resuming = "--resume" in args
    if not resuming:
        args += ["--runs-dir", str(trial_dir), "--run-name", run_dir.name]

    tail = EvaluationTail(run_dir / EVALUATIONS_FILE)
    if resuming:
        tail.new_lines()  # the restored lines were reported before the checkpoint was taken

    def report(line: dict[str, Any], proc: subprocess.Popen) -> None:
        metrics = {k: v for k, v in line.items() if v is not None}
        metrics["env_steps"] = offset + int(line["step"])
        checkpoint_json = run_dir / "checkpoints" / f"{checkpoint_stem(line['step'])}.json"
        if use_checkpoints:
            # The checkpoint of an evaluation's step is written right after it.
            while not checkpoint_json.is_file() and proc.poll() is None:
                time.sleep(0.05)
        if use_checkpoints and checkpoint_json.is_file():
            with tempfile.TemporaryDirectory(prefix="lepton-tune-") as tmp:
                state = {
                    "set": json.loads(json.dumps(overrides, default=_plain)),
                    "env_steps": metrics["env_steps"],
                    "offset": offset,
                }
                try:
                    copy_checkpoint(run_dir, int(line["step"]), Path(tmp) / "c", state)
                except FileNotFoundError:
                    # Pruned before it could be copied (keep_checkpoints): report without it.
                    tune.report(metrics)
                    return
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(Path(tmp) / "c"))
        else:
            tune.report(metrics)

    with lepton_process(args, log, stop_grace_s) as proc:
        while True:
            done = proc.poll() is not None
            for line in tail.new_lines():
                report(line, proc)
            if done:
                break
            time.sleep(poll_s)
    if proc.returncode != 0:
        raise RuntimeError(
            f"lepton-train exited with code {proc.returncode} ({log}):\n{_log_tail(log)}"
        )


def trial_config(
    config: str | os.PathLike[str],
    search_space: Mapping[str, Any],
    *,
    total_steps: int | None = None,
    checkpoint: bool = False,
    args: list[str] | None = None,
) -> dict[str, Any]:
    """A ``param_space`` for :func:`train_lepton`: the config path made absolute and the
    ``lepton-train`` binary found here, on the driver (trials run in other directories and on
    other nodes, where the same paths must exist)."""
    space: dict[str, Any] = {
        "config": str(Path(config).resolve()),
        "binary": str(find_lepton_train()),
        "set": dict(search_space),
        "checkpoint": checkpoint,
    }
    if total_steps is not None:
        space["total_steps"] = total_steps
    if args:
        space["args"] = list(args)
    return space


def build_tuner(
    config: str | os.PathLike[str],
    search_space: Mapping[str, Any],
    *,
    scheduler: str = "asha",
    num_samples: int = 4,
    metric: str = "completion_slowdown",
    mode: str = "min",
    total_steps: int | None = None,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    args: list[str] | None = None,
    search_alg: Any = None,
    storage_path: str | None = None,
    name: str | None = None,
    max_concurrent_trials: int | None = None,
):
    """A ``ray.tune.Tuner`` searching ``search_space`` (``--set`` keys to Tune search spaces)
    over ``lepton-train --config config`` with Tune's ASHA (``scheduler="asha"``, stopping
    trials early at evaluations), PBT (``"pbt"``, which mutates ``search_space``'s keys and
    needs the config's ``eval.every_steps``) or no scheduler (``"fifo"``).

    Schedulers count time in ``env_steps``; ``metric`` is one of the ``evaluations.jsonl``
    names (``completion_slowdown``, ``vs_best_heuristic`` with ``mode="min"``;
    ``episodic_return`` with ``"max"``). ``search_alg`` is any Tune searcher (default: random
    sampling of the search space)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    config_path = Path(config).resolve()
    max_t = trial_total_steps(config_path, search_space, total_steps)
    every = eval_every_steps(config_path, {})
    space = dict(search_space)
    use_checkpoints = scheduler == "pbt"
    if scheduler == "asha":
        if every <= 0:
            raise ValueError("ASHA stops trials at evaluations: set eval.every_steps > 0")
        sched = ASHAScheduler(
            time_attr="env_steps", max_t=max_t, grace_period=every, reduction_factor=2
        )
    elif scheduler == "pbt":
        # A PBT restart is a new lepton run from the donor's weights: its schedules start
        # afresh, so the learning rate must not anneal (see the module docs).
        fixed = {"ppo.anneal_lr": False}
        sched = PopulationBasedTraining(
            time_attr="env_steps",
            perturbation_interval=2 * every,
            hyperparam_mutations={"set": dict(search_space)},
        )
        space = {**fixed, **space}
    elif scheduler == "fifo":
        sched = FIFOScheduler()
    else:
        raise ValueError(f"scheduler {scheduler!r}: expected asha, pbt or fifo")
    trainable = tune.with_resources(train_lepton, {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
    return tune.Tuner(
        trainable,
        param_space=trial_config(
            config_path, space, total_steps=total_steps, checkpoint=use_checkpoints, args=args
        ),
        tune_config=tune.TuneConfig(
            metric=metric,
            mode=mode,
            scheduler=sched,
            search_alg=search_alg,
            num_samples=num_samples,
            max_concurrent_trials=max_concurrent_trials,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_path,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=4) if use_checkpoints else None,
        ),
    )
