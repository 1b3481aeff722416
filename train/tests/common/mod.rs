//! Helpers shared by the integration tests: paths, configs with overrides, run options,
//! training that takes turns on libtorch's global RNG, the CLI binary, and TensorBoard's own
//! event reader.
#![allow(dead_code)] // each test file uses a subset

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use lepton_agent::ppo::UpdateStats;
use lepton_train::config::{TrainConfig, apply_override, read_table};
use lepton_train::run::{RunOptions, RunSummary};
use lepton_train::trainer;

/// libtorch's global RNG initialises the weights: runs in this process take turns.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `configs/ppo_cloud.toml` pointed at the `tiny` scenario, with `overrides` on top.
pub fn tiny_config<S: AsRef<str>>(overrides: &[S]) -> TrainConfig {
    let scenario = repo_root().join("configs/scenarios/tiny.toml");
    let mut all = vec![format!("env.scenario=\"{}\"", scenario.display())];
    all.extend(overrides.iter().map(|o| o.as_ref().to_string()));
    config_with("ppo_cloud.toml", &all)
}

/// The updates of a stopped run followed by those of its resumption (to compare with an
/// uninterrupted run's).
pub fn joined_updates(first: &RunSummary, second: &RunSummary) -> Vec<UpdateStats> {
    first
        .updates
        .iter()
        .chain(&second.updates)
        .cloned()
        .collect()
}

/// `configs/<name>` with `overrides` (`--set` syntax) applied in order.
pub fn config_with<S: AsRef<str>>(name: &str, overrides: &[S]) -> TrainConfig {
    let mut table = read_table(&repo_root().join("configs").join(name)).unwrap();
    for o in overrides {
        apply_override(&mut table, o.as_ref()).unwrap();
    }
    TrainConfig::from_table(table, "test").unwrap()
}

/// [`config_with`] a test file's own `defaults`, then the test's `overrides` (which win).
pub fn config_with_defaults(name: &str, defaults: &[String], overrides: &[&str]) -> TrainConfig {
    let all: Vec<&str> = defaults
        .iter()
        .map(String::as_str)
        .chain(overrides.iter().copied())
        .collect();
    config_with(name, &all)
}

pub fn options(dir: &Path, resume: bool, stop_at_step: Option<u64>) -> RunOptions {
    RunOptions {
        run_dir: dir.to_path_buf(),
        resume,
        stop_at_step,
        progress: false,
        interrupt: Arc::new(AtomicBool::new(false)),
    }
}

/// Trains (taking turns with the other runs of this process) and expects success.
pub fn train(config: &TrainConfig, opts: &RunOptions) -> RunSummary {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    trainer::run(config, opts).unwrap()
}

/// The `lepton-train` binary, run from the repository root.
pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lepton-train"));
    cmd.current_dir(repo_root());
    cmd
}

/// Runs a Python `script` with `args` under `LEPTON_PYTHON` (the project's Python with
/// tensorboard) and returns its stdout; fails the test when it fails.
pub fn python(script: &str, args: &[&Path]) -> String {
    let python = std::env::var("LEPTON_PYTHON")
        .expect("LEPTON_PYTHON must name the project's Python with tensorboard (set by .cargo/config.toml; run scripts/bootstrap.sh)");
    let out = Command::new(&python)
        .args(["-c", script])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run LEPTON_PYTHON={python}: {e}"));
    assert!(
        out.status.success(),
        "the Python reader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every scalar tag of the event files under `dir` with its number of points (`scalar TAG N`
/// lines), then every tensor tag (`tensor TAG`), as read by TensorBoard's `EventAccumulator`.
pub fn tensorboard_tags(dir: &Path) -> String {
    let script = r#"
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={'scalars': 0, 'tensors': 0})
acc.Reload()
tags = acc.Tags()
for t in tags['scalars']:
    print('scalar', t, len(acc.Scalars(t)))
for t in tags['tensors']:
    print('tensor', t)
"#;
    python(script, &[dir])
}
