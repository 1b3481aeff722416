//! lepton-train on a CSV workload: one warning line when the model-selection episodes are the
//! training trace itself, none with windows and a split; a bad split value exits 2 naming it;
//! model selection on another scenario (`eval.scenario`), which must have the training
//! scenario's shape.

mod common;

use common::{bin, repo_root};
use lepton_train::config::{EnvConfig, TrainConfig, apply_override, read_table};
use lepton_train::envs::EnvSpec;
use lepton_train::search::{self, FitnessConfig, Metric};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT_RUN: AtomicUsize = AtomicUsize::new(0);

/// A copy of `csv-example.toml` in `dir`, named `name`, whose replay keys are replaced by
/// `replay_keys`.
fn csv_scenario(dir: &Path, name: &str, replay_keys: &str) -> PathBuf {
    let original =
        std::fs::read_to_string(repo_root().join("configs/scenarios/csv-example.toml")).unwrap();
    let csv = repo_root().join("configs/workloads/example.csv");
    let head = original.split("[workload]").next().unwrap();
    let scenario = dir.join(name);
    std::fs::write(
        &scenario,
        format!(
            "{head}[workload]\nkind = \"csv\"\npath = {:?}\n{replay_keys}\n",
            csv.to_str().unwrap()
        ),
    )
    .unwrap();
    scenario
}

/// `configs/ppo_csv_example.toml`, shortened, on a copy of `csv-example.toml` whose replay
/// keys are replaced by `replay_keys`.
fn train_csv(dir: &Path, replay_keys: &str) -> (Output, String) {
    let (out, log, _) = train_csv_with(dir, replay_keys, &[]);
    (out, log)
}

/// [`train_csv`] with more arguments; also returns the run directory.
fn train_csv_with(dir: &Path, replay_keys: &str, more: &[&str]) -> (Output, String, PathBuf) {
    let scenario = csv_scenario(dir, "mine.toml", replay_keys);
    let run_name = format!("run{}", NEXT_RUN.fetch_add(1, Ordering::SeqCst));
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
        .args(["--run-name", &run_name])
        .args(more)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let log = format!("{}", scenario.display()) + "\n" + &stderr;
    (out, log, dir.join(run_name))
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

/// Training on a split's training part and selecting on its test part: the evaluations play
/// `eval.scenario`, so the reference heuristics' scores in the evaluation log are the test
/// part's, not the training part's.
#[test]
fn model_selection_plays_the_eval_scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let split = "window_jobs = 40\nsplit = { by = \"time\", test_fraction = 0.25 }";
    let test_part = csv_scenario(
        tmp.path(),
        "test.toml",
        &format!("{split}\npart = \"test\""),
    );
    let eval_arg = format!("eval.scenario={:?}", test_part.to_str().unwrap());
    let (out, log, run) = train_csv_with(tmp.path(), split, &["--set", &eval_arg]);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let first = std::fs::read_to_string(run.join("evaluations.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    let sjf = |scenario: &Path| {
        let spec = EnvSpec::from_config(&EnvConfig {
            kind: lepton_train::config::EnvKind::Scenario,
            scenario: Some(scenario.to_path_buf()),
            max_episode_steps: None,
            rules: Vec::new(),
        })
        .unwrap();
        let scores = spec.heuristic_slowdowns(1_000_000_007, 2).unwrap();
        scores.iter().find(|(name, _)| name == "sjf").unwrap().1
    };
    let logged = first["heuristic_sjf_completion_slowdown"].as_f64().unwrap();
    assert_eq!(logged, sjf(&test_part));
    assert_ne!(logged, sjf(&tmp.path().join("mine.toml")));

    // The search's fitness plays the eval scenario too: the same score as a config whose
    // training env is the test part itself, not the training part's.
    let config = |extra: &str, drop_eval_scenario: bool| {
        let mut table = read_table(&run.join("config.toml")).unwrap();
        if !extra.is_empty() {
            apply_override(&mut table, extra).unwrap();
        }
        if drop_eval_scenario {
            table["eval"].as_table_mut().unwrap().remove("scenario");
        }
        TrainConfig::from_table(table, "config.toml").unwrap()
    };
    let with_eval = config("", false);
    assert_eq!(
        with_eval.eval.scenario.as_deref(),
        Some(test_part.as_path())
    );
    let fitness = FitnessConfig {
        metric: Metric::NegCompletionSlowdown,
        num_episodes: 3,
        seed: 5_000_000,
    };
    let best = run.join("checkpoints/best.json");
    let score = |c: &TrainConfig| search::score_checkpoint(c, &best, &fitness).unwrap();
    let test_path = test_part.to_str().unwrap();
    let on_test = config(&format!("env.scenario={test_path:?}"), true);
    let on_train = config("", true);
    assert_eq!(score(&with_eval), score(&on_test));
    assert_ne!(score(&with_eval), score(&on_train));

    let cloud = repo_root().join("configs/scenarios/cloud.toml");
    let eval_arg = format!("eval.scenario={:?}", cloud.to_str().unwrap());
    let (out, log, _) = train_csv_with(tmp.path(), split, &["--set", &eval_arg]);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(
        log.contains(&format!(
            "eval.scenario: {} gives observations of",
            cloud.display()
        )) && log.contains("a policy trained on one cannot play the other"),
        "{log}"
    );
}
