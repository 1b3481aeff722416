//! lepton-train on a CSV workload: one warning line when the model-selection episodes are the
//! training trace itself, none with windows and a split; a bad split value exits 2 naming it.

mod common;

use common::{bin, repo_root};
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT_RUN: AtomicUsize = AtomicUsize::new(0);

/// `configs/ppo_csv_example.toml`, shortened, on a copy of `csv-example.toml` whose replay
/// keys are replaced by `replay_keys`.
fn train_csv(dir: &Path, replay_keys: &str) -> (Output, String) {
    let original =
        std::fs::read_to_string(repo_root().join("configs/scenarios/csv-example.toml")).unwrap();
    let csv = repo_root().join("configs/workloads/example.csv");
    let head = original.split("[workload]").next().unwrap();
    let scenario = dir.join("mine.toml");
    std::fs::write(
        &scenario,
        format!(
            "{head}[workload]\nkind = \"csv\"\npath = {:?}\n{replay_keys}\n",
            csv.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = bin()
        .args(["--config", "configs/ppo_csv_example.toml", "--no-progress"])
        .args([
            "--set",
            &format!("env.scenario={:?}", scenario.to_str().unwrap()),
        ])
        .args([
            "--set",
            "imitation.steps=100",
            "--set",
            "imitation.epochs=1",
        ])
        .args(["--set", "ppo.num_envs=2", "--set", "ppo.num_steps=32"])
        .args([
            "--set",
            "eval.every_steps=64",
            "--set",
            "eval.num_episodes=2",
        ])
        .args(["--set", "run.device=\"cpu\"", "--total-steps", "64"])
        .args(["--runs-dir", dir.to_str().unwrap()])
        // Its own run name: two runs started within one second would share the default one.
        .args([
            "--run-name",
            &format!("run{}", NEXT_RUN.fetch_add(1, Ordering::SeqCst)),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, format!("{}", scenario.display()) + "\n" + &stderr)
}

#[test]
fn a_csv_replayed_whole_warns_once_naming_the_scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, log) = train_csv(tmp.path(), "");
    assert_eq!(out.status.code(), Some(0), "{log}");
    let scenario = log.lines().next().unwrap();
    let warnings: Vec<&str> = log.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(
        warnings,
        [format!(
            "warning: {scenario}: every episode replays the same 240 tasks whatever the seed, \
             so the model-selection episodes are the training trace itself and intervals \
             collapse to a point; set workload.window_jobs and workload.split (part = \
             \"test\" to evaluate held-out tasks)"
        )]
    );
}

#[test]
fn windows_from_a_split_train_silently_and_a_bad_split_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let split = "window_jobs = 40\nsplit = { by = \"time\", test_fraction = 0.25 }";
    let (out, log) = train_csv(tmp.path(), split);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(!log.contains("warning:"), "{log}");
    let (out, log) = train_csv(
        tmp.path(),
        "window_jobs = 40\nsplit = { by = \"time\", test_fraction = 1.5 }",
    );
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(
        log.contains("`workload.split.test_fraction`: must be in (0, 1), got 1.5"),
        "{log}"
    );
}
