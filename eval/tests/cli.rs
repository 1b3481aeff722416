//! `lepton-eval` end to end: reproducible reports, gate exit codes, --compare, checkpoints,
//! and one clear message with exit code 2 (and no report) for every kind of bad input.

use lepton_agent::checkpoint::{self, SaveRequest};
use lepton_agent::networks::{Head, NetworkConfig, Policy};
use lepton_agent::optim::Adam;
use lepton_env::{ActionLayout, Env, ObsLayout};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs lepton-eval from the workspace root.
fn eval(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lepton-eval"))
        .args(args)
        .current_dir(workspace())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

/// A suite of `episodes` episodes of one shipped scenario, in `dir`.
fn suite(dir: &Path, scenario: &str, episodes: usize) -> PathBuf {
    let scenario_path = workspace()
        .join("configs/scenarios")
        .join(format!("{scenario}.toml"));
    let path = dir.join(format!("{scenario}-suite.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"test\"\nepisodes = {episodes}\nbootstrap_resamples = 200\n[[scenarios]]\npath = {:?}\nfirst_seed = 500\n",
            scenario_path.to_str().unwrap()
        ),
    )
    .unwrap();
    path
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn smoke_report_is_byte_identical_across_runs_and_thread_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = ["one-thread", "two-threads", "two-threads-again"]
        .iter()
        .map(|d| tmp.path().join(d))
        .collect();
    for (dir, threads) in dirs.iter().zip(["1", "2", "2"]) {
        let out = eval(&[
            "--suite",
            "configs/eval/smoke.toml",
            "--out",
            s(dir),
            "--threads",
            threads,
        ]);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("scenario cloud"),
            "{}",
            text(&out.stdout)
        );
    }
    let reference = files(&dirs[0]);
    let names: Vec<&str> = reference.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "report.json",
        "report.md",
        "cloud_metrics.svg",
        "cloud_energy_pareto.svg",
        "deeprm_slowdown_cdf.svg",
        "tiny_metrics.svg",
    ] {
        assert!(names.contains(&expected), "{names:?}");
    }
    // Only cloud has a power model: no energy, no trade-off to plot.
    assert!(!names.contains(&"tiny_energy_pareto.svg"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with('.')),
        "staging left behind: {names:?}"
    );
    for dir in &dirs[1..] {
        let other = files(dir);
        assert_eq!(reference.len(), other.len());
        for ((name, a), (other_name, b)) in reference.iter().zip(&other) {
            assert_eq!(name, other_name);
            assert!(a == b, "{name} differs between runs/thread counts");
        }
    }
    let md = std::fs::read_to_string(dirs[0].join("report.md")).unwrap();
    assert!(
        md.contains("| sjf |") && md.contains("Best heuristic by `completion_slowdown`"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirs[0].join("report.json")).unwrap()).unwrap();
    assert_eq!(json["format"], "lepton-eval-report/2");
    // The paired column: every contender against the scenario's best heuristic, in words.
    let cloud = &json["scenarios"][2];
    let reference = cloud["reference"].as_str().unwrap();
    assert_eq!(reference, cloud["best_heuristic"]["contender"]);
    assert!(
        md.contains(&format!("| vs {reference} (slowdown) |")),
        "{md}"
    );
    assert!(md.contains("| reference |"), "{md}");
    let fcfs_row = md
        .lines()
        .filter(|l| l.starts_with("| fcfs |"))
        .nth(2)
        .unwrap();
    assert!(
        fcfs_row.contains("% worse [") && fcfs_row.contains("(wins "),
        "{fcfs_row}"
    );
    let paired = &cloud["paired"][0];
    for key in [
        "mean_diff",
        "relative_diff",
        "ci_low",
        "ci_high",
        "wins",
        "n",
    ] {
        assert!(paired[key].is_number(), "{key}: {paired}");
    }
    assert!(paired["signed_rank"]["w"].is_number() && paired["signed_rank"]["p_value"].is_number());
    assert_eq!(paired["n"], 6);
    assert_eq!(json["scenarios"][0]["seeds"][0], 2_000_000);
    assert!(
        json["scenarios"][2]["config_toml"]
            .as_str()
            .unwrap()
            .contains("name = \"cloud\"")
    );
}

#[test]
fn the_demo_suite_shows_the_paired_column() {
    let tmp = tempfile::tempdir().unwrap();
    let out = eval(&[
        "--suite",
        "configs/eval/demo.toml",
        "--schedulers",
        "wfp3+easy,sjf+easy",
        "--reference",
        "sjf+easy",
        "--out",
        s(tmp.path()),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let md = std::fs::read_to_string(tmp.path().join("report.md")).unwrap();
    assert!(
        md.contains("| contender | vs sjf+easy (slowdown) |"),
        "{md}"
    );
    let wfp3 = md.lines().find(|l| l.starts_with("| wfp3+easy |")).unwrap();
    assert!(wfp3.contains("/20, p"), "{wfp3}");
    // The point of pairing: the same seeds make the difference far tighter than either mean.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("report.json")).unwrap()).unwrap();
    let cloud = &json["scenarios"][0];
    let reference = &cloud["results"][1]["metrics"]["completion_slowdown"];
    let unpaired_width = (reference["ci_high"].as_f64().unwrap()
        - reference["ci_low"].as_f64().unwrap())
        / reference["mean"].as_f64().unwrap();
    let paired = &cloud["paired"][0];
    let paired_width = paired["ci_high"].as_f64().unwrap() - paired["ci_low"].as_f64().unwrap();
    assert!(
        paired_width < unpaired_width / 2.0,
        "paired {paired_width}, unpaired {unpaired_width}"
    );
}

#[test]
fn the_default_list_adds_the_whole_queue_schedulers_on_cluster_scenarios_only() {
    let tmp = tempfile::tempdir().unwrap();
    let names = |scenario: &str| -> Vec<String> {
        let out_dir = tmp.path().join(scenario);
        let out = eval(&[
            "--suite",
            s(&suite(tmp.path(), scenario, 2)),
            "--out",
            s(&out_dir),
        ]);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
        json["scenarios"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["contender"].as_str().unwrap().to_string())
            .collect()
    };
    let defaults = lepton_env::schedulers::NAMES.len();
    let tiny = names("tiny");
    assert_eq!(tiny.len(), defaults + 2, "{tiny:?}");
    assert_eq!(&tiny[defaults..], ["sjf+greedy", "sjf+easy"]);
    let deeprm = names("deeprm");
    assert_eq!(deeprm.len(), defaults, "{deeprm:?}");
    assert!(!deeprm.iter().any(|n| n.contains('+')), "{deeprm:?}");
}

#[test]
fn gate_exits_0_when_the_candidate_holds_and_1_when_it_loses() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = suite(tmp.path(), "deeprm", 3);
    let out_dir = tmp.path().join("out");
    // On DeepRM, SJF beats FCFS by far (slowdown ~4 vs ~17).
    let pass = eval(&[
        "--suite",
        s(&suite),
        "--schedulers",
        "fcfs,sjf",
        "--fail-if-worse-than",
        "fcfs",
        "--candidate",
        "sjf",
        "--out",
        s(&out_dir),
    ]);
    assert_eq!(
        code(&pass),
        0,
        "{}{}",
        text(&pass.stdout),
        text(&pass.stderr)
    );
    assert!(text(&pass.stdout).contains("gate PASSED"));
    let fail = eval(&[
        "--suite",
        s(&suite),
        "--schedulers",
        "fcfs",
        "--fail-if-worse-than",
        "sjf",
        "--candidate",
        "fcfs",
        "--margin",
        "0.05",
        "--out",
        s(&out_dir),
    ]);
    assert_eq!(
        code(&fail),
        1,
        "{}{}",
        text(&fail.stdout),
        text(&fail.stderr)
    );
    let stdout = text(&fail.stdout);
    assert!(
        stdout.contains("gate FAILED")
            && stdout.contains("gate FAIL: fcfs on deeprm")
            && stdout.contains("% worse than sjf"),
        "{stdout}"
    );
    // A failed gate is still a complete report, and says so.
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("**Gate: FAIL**"), "{md}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["gate"]["passed"], false);
    let check = &json["gate"]["checks"][0];
    assert_eq!(check["rule"], "not_worse");
    assert!(check["worse_ci_low"].as_f64().unwrap() > 0.05, "{check}");
    // The baseline took part although --schedulers did not list it.
    assert_eq!(json["contenders"][1]["name"], "sjf");
}

#[test]
fn compare_lists_regressions_against_an_older_report() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = suite(tmp.path(), "tiny", 2);
    let old_dir = tmp.path().join("old");
    let first = eval(&[
        "--suite",
        s(&suite),
        "--schedulers",
        "sjf,fcfs",
        "--out",
        s(&old_dir),
    ]);
    assert_eq!(code(&first), 0, "{}", text(&first.stderr));
    let same = eval(&[
        "--suite",
        s(&suite),
        "--schedulers",
        "sjf,fcfs",
        "--out",
        s(&tmp.path().join("same")),
        "--compare",
        s(&old_dir.join("report.json")),
    ]);
    assert_eq!(code(&same), 0);
    assert!(
        text(&same.stdout).contains("0 regression(s)"),
        "{}",
        text(&same.stdout)
    );
    // Pretend SJF used to be twice as good: now it is a regression.
    let mut old: serde_json::Value =
        serde_json::from_slice(&std::fs::read(old_dir.join("report.json")).unwrap()).unwrap();
    let mean = &mut old["scenarios"][0]["results"][0]["metrics"]["mean_slowdown"]["mean"];
    *mean = serde_json::json!(mean.as_f64().unwrap() / 2.0);
    let tampered = tmp.path().join("tampered.json");
    std::fs::write(&tampered, serde_json::to_vec(&old).unwrap()).unwrap();
    let new_dir = tmp.path().join("new");
    let regressed = eval(&[
        "--suite",
        s(&suite),
        "--schedulers",
        "sjf,fcfs",
        "--out",
        s(&new_dir),
        "--compare",
        s(&tampered),
    ]);
    assert_eq!(code(&regressed), 0, "--compare reports, it does not gate");
    let stdout = text(&regressed.stdout);
    assert!(
        stdout.contains("1 regression(s)") && stdout.contains("tiny / sjf / mean_slowdown"),
        "{stdout}"
    );
    let md = std::fs::read_to_string(new_dir.join("report.md")).unwrap();
    assert!(md.contains("1 regression(s) beyond 5.0%"), "{md}");
    // A format-1 report (before paired statistics; its gate had one baseline) still compares.
    let mut v1: serde_json::Value =
        serde_json::from_slice(&std::fs::read(old_dir.join("report.json")).unwrap()).unwrap();
    v1["format"] = serde_json::json!("lepton-eval-report/1");
    v1.as_object_mut().unwrap().remove("metric");
    for scenario in v1["scenarios"].as_array_mut().unwrap() {
        let fields = scenario.as_object_mut().unwrap();
        fields.remove("reference");
        fields.remove("paired");
    }
    v1["gate"] = serde_json::json!({"baseline": "sjf", "metric": "mean_slowdown", "margin": 0.05,
        "passed": true, "checks": [{"scenario": "tiny", "candidate": "fcfs", "candidate_mean": 1.0,
        "baseline_mean": 1.0, "relative_worse": 0.0, "passed": true}]});
    let v1_path = tmp.path().join("v1.json");
    std::fs::write(&v1_path, serde_json::to_vec(&v1).unwrap()).unwrap();
    let from_v1 = eval(&[
        "--suite",
        s(&suite),
        "--schedulers",
        "sjf,fcfs",
        "--out",
        s(&tmp.path().join("from-v1")),
        "--compare",
        s(&v1_path),
    ]);
    assert_eq!(code(&from_v1), 0, "{}", text(&from_v1.stderr));
    assert!(text(&from_v1.stdout).contains("0 regression(s)"));
}

/// Saves an untrained checkpoint for `layout` and `num_actions`; returns its metadata path.
fn save_checkpoint(dir: &Path, layout: ObsLayout, actions: &ActionLayout) -> PathBuf {
    save_seeded_checkpoint(dir, layout, actions, 3)
}

/// [`save_checkpoint`] with weights initialised from `seed`.
fn save_seeded_checkpoint(
    dir: &Path,
    layout: ObsLayout,
    actions: &ActionLayout,
    seed: i64,
) -> PathBuf {
    tch::manual_seed(seed);
    let network = NetworkConfig::default();
    let policy = Policy::new(&network, layout, actions, Head::Logits, tch::Device::Cpu).unwrap();
    let optimizer = Adam::new(policy.named_parameters(), 1e-5);
    checkpoint::save(
        dir,
        SaveRequest {
            kind: "best",
            global_step: 64,
            iteration: 1,
            seed: 0,
            config_toml: "",
            network: &network,
            policy: &policy,
            optimizer: &optimizer,
            normalizer: None,
            extras: Vec::new(),
            sources: &[],
            obs_time_scale_s: None,
            trainer_state: serde_json::Value::Null,
        },
    )
    .unwrap()
}

#[test]
fn a_checkpoint_is_scored_hashed_and_gated() {
    let tmp = tempfile::tempdir().unwrap();
    let env = lepton_env::scenario::load_named("deeprm").unwrap().build();
    let ckpt_dir = tmp.path().join("checkpoints");
    save_checkpoint(&ckpt_dir, env.obs_layout(), &env.action_layout());
    let suite = suite(tmp.path(), "deeprm", 2);
    let out_dir = tmp.path().join("out");
    // `checkpoints/best` (no extension) is how `make demo` names it.
    let out = eval(&[
        "--suite",
        s(&suite),
        "--schedulers",
        "sjf",
        "--checkpoint",
        s(&ckpt_dir.join("best")),
        "--out",
        s(&out_dir),
        "--fail-if-worse-than",
        "sjf",
        "--margin",
        "1e9",
    ]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    let ckpt = &json["contenders"][1];
    assert_eq!(ckpt["name"], "ckpt:best");
    assert_eq!(ckpt["kind"], "checkpoint");
    assert_eq!(ckpt["metadata_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(json["scenarios"][0]["learned_gains"][0]["versus"], "sjf");
    assert_eq!(json["gate"]["checks"][0]["candidate"], "ckpt:best");
    assert!(
        text(&out.stdout).contains("than the best heuristic sjf"),
        "{}",
        text(&out.stdout)
    );
}

/// `--sampled` adds `<name>@sampled`, which samples from the policy's masked softmax: for a
/// freshly initialised policy (near-uniform logits) it plays differently from the greedy one,
/// and its episodes do not depend on the thread count.
#[test]
fn sampled_checkpoints_are_scored_beside_the_greedy_ones_and_reproducibly() {
    let tmp = tempfile::tempdir().unwrap();
    let env = lepton_env::scenario::load_named("deeprm").unwrap().build();
    let ckpt_dir = tmp.path().join("checkpoints");
    save_checkpoint(&ckpt_dir, env.obs_layout(), &env.action_layout());
    let suite = suite(tmp.path(), "deeprm", 4);
    let run = |threads: &str| -> serde_json::Value {
        let out_dir = tmp.path().join(format!("out{threads}"));
        let out = eval(&[
            "--suite",
            s(&suite),
            "--schedulers",
            "sjf",
            "--checkpoint",
            s(&ckpt_dir.join("best")),
            "--sampled",
            "--threads",
            threads,
            "--out",
            s(&out_dir),
        ]);
        assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap()
    };
    let (one, two) = (run("1"), run("2"));
    assert_eq!(one, two);
    let names: Vec<&str> = one["contenders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sjf", "ckpt:best", "ckpt:best@sampled"]);
    assert_eq!(one["contenders"][2]["sampled"], true);
    let results = &one["scenarios"][0]["results"];
    let slowdowns = |i: usize| results[i]["episodes"].to_string();
    assert_ne!(slowdowns(1), slowdowns(2), "sampling changed nothing");
}

#[test]
fn a_checkpoint_group_is_one_contender_with_every_member_on_every_episode() {
    let tmp = tempfile::tempdir().unwrap();
    let env = lepton_env::scenario::load_named("deeprm").unwrap().build();
    for seed in [1, 2] {
        let dir = tmp
            .path()
            .join(format!("ppo_seed{seed}"))
            .join("checkpoints");
        save_seeded_checkpoint(&dir, env.obs_layout(), &env.action_layout(), seed);
    }
    let suite = suite(tmp.path(), "deeprm", 3);
    let out_dir = tmp.path().join("out");
    let group = format!("ppo={}/ppo_seed*", tmp.path().display());
    let out = eval(&[
        "--suite",
        s(&suite),
        "--schedulers",
        "sjf",
        "--checkpoint",
        &group,
        "--out",
        s(&out_dir),
        "--require-better",
        "sjf",
        "--format",
        "junit",
    ]);
    let stdout = text(&out.stdout);
    // Untrained policies are not better than SJF with 95% confidence.
    assert_eq!(code(&out), 1, "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("gate FAIL: ppo on deeprm"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    let contender = &json["contenders"][1];
    assert_eq!(contender["name"], "ppo");
    assert_eq!(contender["kind"], "checkpoint_group");
    let members = contender["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    assert!(members[0]["path"].as_str().unwrap().ends_with("ppo_seed1"));
    let result = &json["scenarios"][0]["results"][1];
    assert_eq!(result["episodes"].as_array().unwrap().len(), 0);
    for member in result["members"].as_array().unwrap() {
        let seeds: Vec<u64> = member["episodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seed"].as_u64().unwrap())
            .collect();
        assert_eq!(seeds, [500, 501, 502]);
    }
    let paired = &json["scenarios"][0]["paired"][0];
    assert_eq!(paired["contender"], "ppo");
    assert_eq!(paired["num_candidate_runs"], 2);
    assert_eq!(json["gate"]["checks"][0]["rule"], "better");
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("| ppo (2 runs) |"), "{md}");
    let xml = std::fs::read_to_string(out_dir.join("report.junit.xml")).unwrap();
    assert!(
        xml.contains("<testcase classname=\"lepton-eval.deeprm\" name=\"ppo better than sjf on completion_slowdown\">")
            && xml.contains("<failure message=\"ppo on deeprm: completion_slowdown"),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 1);
    // A glob that matches nothing is an input error.
    assert_input_error(
        &[
            "--suite",
            s(&suite),
            "--checkpoint",
            &format!("ppo={}/dqn_seed*", tmp.path().display()),
        ],
        &out_dir,
        &["matches no file"],
    );
}

#[test]
fn reference_picks_the_paired_column() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = suite(tmp.path(), "deeprm", 3);
    let out_dir = tmp.path().join("out");
    let out = eval(&[
        "--suite",
        s(&suite),
        "--schedulers",
        "sjf,packer",
        "--reference",
        "fcfs",
        "--out",
        s(&out_dir),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // SJF is far better than FCFS on DeepRM; the console says so in words.
    assert!(stdout.contains("vs fcfs (paired)"), "{stdout}");
    let sjf = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("sjf"))
        .unwrap();
    assert!(
        sjf.contains("% better [") && sjf.contains("wins 3/3"),
        "{sjf}"
    );
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("| vs fcfs (slowdown) |"), "{md}");
}

#[test]
fn the_console_marks_the_best_value_of_the_gate_metric_in_its_direction() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = suite(tmp.path(), "deeprm", 2);
    let out = eval(&[
        "--suite",
        s(&suite),
        "--schedulers",
        "fcfs,sjf",
        "--metric",
        "utilization",
        "--out",
        s(&tmp.path().join("out")),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("utilization [95% CI]"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("out/report.json")).unwrap())
            .unwrap();
    let utilization = |i: usize| {
        json["scenarios"][0]["results"][i]["metrics"]["utilization"]["mean"]
            .as_f64()
            .unwrap()
    };
    let best = if utilization(0) >= utilization(1) {
        "fcfs"
    } else {
        "sjf"
    };
    let starred: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" *"))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(starred, [best], "{stdout}");
}

/// Exit code 2, one `error:` message naming the problem, and no report in --out (not even one
/// left there by an earlier successful run).
/// A sweep suite over DeepRM's arrival rate: `set` overrides a key of one scenario file.
fn sweep_suite(dir: &Path, points: &[(f64, &str)]) -> PathBuf {
    let scenario = workspace().join("configs/scenarios/deeprm.toml");
    let mut text =
        String::from("name = \"sweep\"\nepisodes = 2\nbootstrap_resamples = 100\nsweep = \"λ\"\n");
    for (x, extra) in points {
        text.push_str(&format!(
            "[[scenarios]]\npath = {:?}\nname = \"l{x}\"\nset = {{ \"workload.arrival_prob\" = {x} }}\n{extra}first_seed = 9\n",
            scenario.to_str().unwrap()
        ));
    }
    let path = dir.join("sweep.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_sweep_suite_overrides_scenario_keys_and_reports_a_table_and_plot() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = sweep_suite(tmp.path(), &[(0.2, "x = 0.2\n"), (0.9, "x = 0.9\n")]);
    let out_dir = tmp.path().join("out");
    let out = eval(&[
        "--suite",
        s(&suite),
        "--schedulers",
        "sjf,tetris",
        "--out",
        s(&out_dir),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["sweep"], "λ");
    let scenarios = report["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2);
    assert_eq!(
        (scenarios[0]["x"].as_f64(), scenarios[1]["x"].as_f64()),
        (Some(0.2), Some(0.9))
    );
    // The override reached the env: the recorded text has it, and the heavier load queues
    // more work (higher mean slowdown for the same seeds and scheduler).
    assert!(
        scenarios[0]["config_toml"]
            .as_str()
            .unwrap()
            .contains("arrival_prob = 0.2")
    );
    let sjf = |i: usize| {
        scenarios[i]["results"][0]["metrics"]["completion_slowdown"]["mean"]
            .as_f64()
            .unwrap()
    };
    assert!(sjf(0) < sjf(1), "{} {}", sjf(0), sjf(1));
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("## Sweep over λ"), "{md}");
    assert!(md.contains("| 0.2 | l0.2 |"), "{md}");
    assert!(md.contains("![sweep](sweep.svg)"));
    let svg = std::fs::read_to_string(out_dir.join("sweep.svg")).unwrap();
    assert!(svg.contains("sjf") && svg.contains("tetris"));
}

fn assert_input_error(args: &[&str], out_dir: &Path, expected: &[&str]) {
    std::fs::create_dir_all(out_dir).unwrap();
    std::fs::write(out_dir.join("report.json"), "{}").unwrap();
    std::fs::write(out_dir.join("report.md"), "stale").unwrap();
    let mut all = args.to_vec();
    all.extend(["--out", s(out_dir)]);
    let out = eval(&all);
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 2, "{args:?}: {stderr}");
    // One message (a TOML error may quote the offending line under it), no panic.
    assert!(
        stderr.starts_with("error: ") && stderr.matches("error").count() <= 2,
        "{args:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in expected {
        assert!(
            stderr.contains(needle),
            "{args:?}: `{needle}` not in: {stderr}"
        );
    }
    assert!(
        !out_dir.join("report.json").exists() && !out_dir.join("report.md").exists(),
        "{args:?}"
    );
}

#[test]
fn bad_input_gives_one_clear_message_exit_2_and_no_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let good = suite(tmp.path(), "deeprm", 1);
    assert_input_error(
        &["--suite", s(&good), "--schedulers", "sjf,shortest"],
        &out_dir,
        &[
            "unknown scheduler `shortest`",
            "valid names: random, deeprm_random, fcfs[+DISCIPLINE], sjf[+DISCIPLINE]",
        ],
    );
    assert_input_error(
        &["--suite", "configs/eval/nope.toml"],
        &out_dir,
        &["cannot read suite configs/eval/nope.toml"],
    );
    let corrupt = tmp.path().join("corrupt.toml");
    std::fs::write(
        &corrupt,
        "name = \"x\"\nepisodes = 2\nepisodez = 3\nscenarios = []\n",
    )
    .unwrap();
    assert_input_error(
        &["--suite", s(&corrupt)],
        &out_dir,
        &["not a valid suite file", "episodez"],
    );
    assert_input_error(
        &["--suite", s(&good), "--metric", "speed"],
        &out_dir,
        &["unknown --metric `speed`", "mean_slowdown"],
    );
    assert_input_error(
        &[
            "--suite",
            s(&good),
            "--checkpoint",
            s(&tmp.path().join("missing")),
        ],
        &out_dir,
        &["missing", "no such file"],
    );
    let garbage = tmp.path().join("garbage.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    assert_input_error(
        &["--suite", s(&good), "--checkpoint", s(&garbage)],
        &out_dir,
        &["not a valid metadata file"],
    );
    // A real checkpoint, but trained for a 3-feature, 4-action env.
    let other = save_checkpoint(
        &tmp.path().join("other"),
        ObsLayout::flat(3),
        &ActionLayout::plain(4),
    );
    assert_input_error(
        &["--suite", s(&good), "--checkpoint", s(&other)],
        &out_dir,
        &[
            "does not fit scenario `deeprm`",
            "3 observations and 4 actions",
        ],
    );
    assert_input_error(
        &["--suite", s(&good), "--compare", s(&garbage)],
        &out_dir,
        &["not a lepton-eval report.json"],
    );
    assert_input_error(
        &["--suite", s(&good), "--fail-if-worse-than", "sjf"],
        &out_dir,
        &["needs a candidate"],
    );
    assert_input_error(
        &["--suite", s(&good), "--candidate", "sjf"],
        &out_dir,
        &["--candidate needs a gate"],
    );

    let no_x = sweep_suite(tmp.path(), &[(0.2, "")]);
    assert_input_error(&["--suite", s(&no_x)], &out_dir, &["`l0.2` needs `x`"]);
    let bad_key = tmp.path().join("bad_key.toml");
    std::fs::write(
        &bad_key,
        format!(
            "name = \"x\"\nepisodes = 1\n[[scenarios]]\npath = {:?}\nname = \"b\"\nset = {{ \"load.arrival_prob\" = 1 }}\nfirst_seed = 1\n",
            s(&workspace().join("configs/scenarios/deeprm.toml"))
        ),
    )
    .unwrap();
    assert_input_error(
        &["--suite", s(&bad_key)],
        &out_dir,
        &["scenario `b`", "no table `load`"],
    );

    // clap's own usage errors also exit 2.
    let out = eval(&["--suite"]);
    assert_eq!(code(&out), 2);
    let out = eval(&["--suite", s(&good), "--format", "pdf"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("invalid value 'pdf'"));
}

#[test]
fn help_documents_the_exit_codes() {
    let out = eval(&["--help"]);
    assert_eq!(code(&out), 0);
    let help = text(&out.stdout);
    for needle in [
        "Exit codes:",
        "0  evaluation done",
        "1  the gate failed",
        "2  usage or input error",
    ] {
        assert!(help.contains(needle), "{help}");
    }
}

/// A run that never reaches its end (here: killed, as a crash or an OOM kill would end it)
/// leaves no earlier report in --out that could pass for its result: the stale report is
/// removed before the run starts.
#[test]
fn a_killed_run_leaves_no_stale_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("report.json"), "{}").unwrap();
    std::fs::write(out_dir.join("report.md"), "stale").unwrap();
    // The lookahead proxy makes this suite take minutes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_lepton-eval"))
        .args([
            "--suite",
            "configs/eval/cloud-headroom.toml",
            "--reference",
            "tetris",
        ])
        .arg("--out")
        .arg(&out_dir)
        .current_dir(workspace())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while out_dir.join("report.json").exists() && start.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        still_running,
        "the suite finished before it could be killed"
    );
    assert!(!out_dir.join("report.json").exists());
    assert!(!out_dir.join("report.md").exists());
}

/// Sizes from the command line are bounded before anything runs (they used to panic in an
/// allocation or start 100,000 threads).
#[test]
fn oversized_flags_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = suite(tmp.path(), "tiny", 2);
    let out_dir = tmp.path().join("out");
    assert_input_error(
        &["--suite", s(&suite), "--episodes", "18446744073709551615"],
        &out_dir,
        &["--episodes must be in 1..=1000000"],
    );
    assert_input_error(
        &["--suite", s(&suite), "--threads", "100000"],
        &out_dir,
        &["--threads must be at most 1024"],
    );
    // A suite's own sizes too: 2^64 − 1 resamples used to be a capacity-overflow panic.
    let text = std::fs::read_to_string(&suite).unwrap().replace(
        "bootstrap_resamples = 200",
        "bootstrap_resamples = 18446744073709551615",
    );
    std::fs::write(&suite, text).unwrap();
    assert_input_error(
        &["--suite", s(&suite)],
        &out_dir,
        &["`bootstrap_resamples` must be at most 1000000, got 18446744073709551615"],
    );
}

/// A suite of `csv-example` with `set` (an inline TOML table), in `dir`.
fn csv_suite(dir: &Path, set: &str) -> PathBuf {
    let scenario = workspace().join("configs/scenarios/csv-example.toml");
    let path = dir.join("csv-suite.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"csv\"\nepisodes = 3\nbootstrap_resamples = 100\n[[scenarios]]\npath = \
             {:?}\nname = \"mine\"\nfirst_seed = 7\nset = {set}\n",
            scenario.to_str().unwrap()
        ),
    )
    .unwrap();
    path
}

#[test]
fn evaluating_the_training_part_warns_on_stderr_and_in_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let warning = format!(
        "scenario `mine` ({}): the test episodes replay the training part of workload.split; \
         set workload.part = \"test\" to evaluate held-out tasks",
        workspace()
            .join("configs/scenarios/csv-example.toml")
            .display()
    );
    let train_part = csv_suite(tmp.path(), "{ \"workload.part\" = \"train\" }");
    let out_dir = tmp.path().join("train-part");
    let out = eval(&[
        "--suite",
        s(&train_part),
        "--schedulers",
        "sjf",
        "--out",
        s(&out_dir),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("warning:"))
            .collect::<Vec<_>>(),
        [format!("warning: {warning}")]
    );
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(
        md.starts_with(&format!(
            "# lepton-eval: suite `csv`\n\n> **Warning:** {warning}\n\n"
        )),
        "{md}"
    );

    let test_part = csv_suite(tmp.path(), "{ \"workload.part\" = \"test\" }");
    let out_dir = tmp.path().join("test-part");
    let out = eval(&[
        "--suite",
        s(&test_part),
        "--schedulers",
        "sjf",
        "--out",
        s(&out_dir),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(!md.contains("Warning"), "{md}");

    let bad = csv_suite(
        tmp.path(),
        "{ \"workload.split\" = { by = \"time\", test_fraction = 0.0 } }",
    );
    assert_input_error(
        &["--suite", s(&bad)],
        &tmp.path().join("bad"),
        &["`workload.split.test_fraction`: must be in (0, 1), got 0"],
    );
}

/// `docs/eval/` (the README's example report) is exactly what `make docs-eval` writes today:
/// every file, byte for byte. Regenerate it with `make docs-eval` after a change to reports.
#[test]
fn docs_eval_report_is_fresh() {
    let makefile = std::fs::read_to_string(workspace().join("Makefile")).unwrap();
    let args_line = makefile
        .lines()
        .find_map(|l| l.strip_prefix("DOCS_EVAL_ARGS = "))
        .expect("the Makefile defines DOCS_EVAL_ARGS");
    let tmp = tempfile::tempdir().unwrap();
    let mut args: Vec<&str> = args_line.split_whitespace().collect();
    args.extend(["--out", s(tmp.path())]);
    let out = eval(&args);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let fresh = files(tmp.path());
    let shipped = files(&workspace().join("docs/eval"));
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&shipped), names(&fresh), "run `make docs-eval`");
    for ((name, a), (_, b)) in shipped.iter().zip(&fresh) {
        assert!(a == b, "docs/eval/{name} is stale: run `make docs-eval`");
    }
}

/// `--gantt 1` on a cluster scenario writes one chart per contender (heuristics and a
/// checkpoint alike), all of episode 1's seed, and report.md shows them; a DeepRM scenario
/// beside it gets its own chart, and the cluster's is unchanged.
#[test]
fn gantt_writes_one_chart_per_contender_of_the_chosen_episode() {
    let tmp = tempfile::tempdir().unwrap();
    let env = lepton_env::scenario::load_named("tiny").unwrap().build();
    let ckpt_dir = tmp.path().join("checkpoints");
    save_checkpoint(&ckpt_dir, env.obs_layout(), &env.action_layout());
    let suite = suite(tmp.path(), "tiny", 2);
    let out_dir = tmp.path().join("out");
    let out = eval(&[
        "--suite",
        s(&suite),
        "--schedulers",
        "sjf,weighted:1:0.25",
        "--checkpoint",
        s(&ckpt_dir.join("best")),
        "--gantt",
        "1",
        "--out",
        s(&out_dir),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let charts: Vec<String> = files(&out_dir)
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("gantt_"))
        .collect();
    assert_eq!(
        charts,
        [
            "gantt_tiny_ckpt_best.svg",
            "gantt_tiny_sjf.svg",
            "gantt_tiny_weighted_1_0.25.svg"
        ]
    );
    for chart in &charts {
        let svg = std::fs::read_to_string(out_dir.join(chart)).unwrap();
        assert!(svg.contains("episode 1 (seed 501)"), "{chart}");
        assert!(
            svg.contains("server 0") && svg.contains("server 3"),
            "{chart}"
        );
        assert!(svg.contains("priority 0"), "{chart}");
    }
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(
        md.contains("![gantt_tiny_sjf.svg](gantt_tiny_sjf.svg)"),
        "{md}"
    );
    // The same episode in a suite that adds a DeepRM scenario: the same chart, and a note.
    let tiny = workspace().join("configs/scenarios/tiny.toml");
    let deeprm = workspace().join("configs/scenarios/deeprm.toml");
    let mixed = tmp.path().join("mixed.toml");
    std::fs::write(
        &mixed,
        format!(
            "name = \"g\"\nepisodes = 2\nbootstrap_resamples = 200\n[[scenarios]]\npath = {:?}\nfirst_seed = 500\n[[scenarios]]\npath = {:?}\nfirst_seed = 500\n",
            s(&tiny),
            s(&deeprm)
        ),
    )
    .unwrap();
    let again = tmp.path().join("again");
    let out = eval(&[
        "--suite",
        s(&mixed),
        "--schedulers",
        "sjf",
        "--gantt",
        "1",
        "--out",
        s(&again),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let deeprm_chart = std::fs::read_to_string(again.join("gantt_deeprm_sjf.svg")).unwrap();
    assert!(
        deeprm_chart.contains("res0 (10 units)") && deeprm_chart.contains("time step"),
        "{deeprm_chart}"
    );
    assert_eq!(
        std::fs::read(again.join("gantt_tiny_sjf.svg")).unwrap(),
        std::fs::read(out_dir.join("gantt_tiny_sjf.svg")).unwrap()
    );
}

/// `--gantt` on deeprm-hold: one chart per contender (the shipped checkpoint, sjf and
/// tetris) with both resource lanes and the queue lane, and every job of the episode drawn.
#[test]
fn gantt_draws_deeprm_episodes_for_every_contender() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = suite(tmp.path(), "deeprm-hold", 1);
    let out_dir = tmp.path().join("out");
    let out = eval(&[
        "--suite",
        s(&suite),
        "--schedulers",
        "sjf,tetris",
        "--checkpoint",
        s(&workspace().join("checkpoints/deeprm_hold_ppo/seed1/best.json")),
        "--gantt",
        "0",
        "--out",
        s(&out_dir),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("note: --gantt"));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    for contender in ["ckpt_best", "sjf", "tetris"] {
        let chart = format!("gantt_deeprm-hold_{contender}.svg");
        let svg = std::fs::read_to_string(out_dir.join(&chart)).unwrap();
        for text in [
            "episode 0 (seed 500)",
            "queue",
            "res0 (10 units)",
            "res1 (10 units)",
        ] {
            assert!(svg.contains(text), "{chart}: {text}");
        }
        // The caption counts the jobs of the episode the report scored: all finished.
        let name = if contender == "ckpt_best" {
            "ckpt:best"
        } else {
            contender
        };
        let result = report["scenarios"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["contender"] == name)
            .unwrap_or_else(|| panic!("{name} in {report}"));
        let episode = &result["episodes"][0]["metrics"];
        let finished = episode["num_finished"].as_u64().unwrap();
        assert!(finished > 0 && episode["num_unfinished"] == 0, "{episode}");
        let caption = format!("{finished} jobs finished; at step");
        assert!(
            svg.contains(&caption) && svg.contains("0 running and 0 waiting"),
            "{chart}: {caption}"
        );
    }
}

#[test]
fn bad_gantt_and_checkpoint_values_exit_2_naming_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let tiny = suite(tmp.path(), "tiny", 2);
    assert_input_error(
        &["--suite", s(&tiny), "--gantt", "2"],
        &out_dir,
        &["--gantt 2", "2 per scenario", "at most 1"],
    );
    assert_input_error(
        &["--suite", s(&tiny), "--episodes", "1", "--gantt", "1"],
        &out_dir,
        &["--gantt 1", "at most 0"],
    );
    let out = eval(&["--suite", s(&tiny), "--gantt", "first"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("invalid value 'first' for '--gantt <EPISODE>'"));

    let weights = tmp.path().join("checkpoints/best.safetensors");
    assert_input_error(
        &["--suite", s(&tiny), "--checkpoint", s(&weights)],
        &out_dir,
        &[&format!(
            "checkpoint {}: this is a weights file; pass the .json metadata file beside it (e.g. best.json)",
            weights.display()
        )],
    );
}

/// Every registered scheduler is accepted by name by lepton-eval (`--schedulers`) and
/// reported under the name it was given (its canonical form for `lookahead`), and the
/// scheduler list of `--help` is the registry's.
#[test]
fn every_registered_scheduler_runs_under_its_name_in_lepton_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let tiny = suite(tmp.path(), "tiny", 1);
    let mut names: Vec<&str> = lepton_env::schedulers::REGISTRY
        .iter()
        .map(|r| r.name)
        .collect();
    // The whole-queue family under each discipline, on a placement-mode scenario too.
    names.extend([
        "fcfs+greedy",
        "sjf+strict",
        "f1+easy",
        "unicep+conservative",
    ]);
    let out_dir = tmp.path().join("out");
    let out = eval(&[
        "--suite",
        s(&tiny),
        "--schedulers",
        &names.join(","),
        "--out",
        s(&out_dir),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    let reported: Vec<&str> = json["contenders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // Each under its full name (the registry's own test checks those names by hand).
    let expected: Vec<String> = names
        .iter()
        .map(|&n| lepton_env::schedulers::by_name(n).unwrap().name())
        .collect();
    assert_eq!(reported, expected);
    let help = text(&eval(&["--help"]).stdout);
    for r in lepton_env::schedulers::REGISTRY {
        assert!(help.contains(r.summary), "`{}` missing from --help", r.name);
    }
    assert!(help.contains("smallest_demand"));
}

/// `--reference` (like the gate flags) finds a heuristic by its name with default parameters
/// left out: `reserve` is the contender `reserve:sjf:last:30:0.05`.
#[test]
fn a_reference_may_leave_out_default_parameters() {
    let tmp = tempfile::tempdir().unwrap();
    let tiny = suite(tmp.path(), "tiny", 1);
    let out_dir = tmp.path().join("out");
    let out = eval(&[
        "--suite",
        s(&tiny),
        "--schedulers",
        "sjf,reserve",
        "--reference",
        "reserve",
        "--out",
        s(&out_dir),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        json["scenarios"][0]["reference"],
        "reserve:sjf:last:30:0.05"
    );
}

/// lepton-train reads heuristic names in `imitation.teacher` and `dqn.prefill_teacher`:
/// both accept every registered name and refuse an unknown one with the registry's list.
#[test]
fn every_registered_scheduler_is_a_valid_lepton_train_teacher() {
    use lepton_agent::dqn::DqnConfig;
    use lepton_agent::imitation::ImitationConfig;
    for r in lepton_env::schedulers::REGISTRY {
        let imitation = ImitationConfig {
            teacher: r.name.to_string(),
            ..ImitationConfig::default()
        };
        assert_eq!(imitation.validate(), Vec::<String>::new(), "{}", r.name);
        let dqn = DqnConfig {
            prefill_teacher: Some(r.name.to_string()),
            ..DqnConfig::default()
        };
        assert_eq!(dqn.validate(), Vec::<String>::new(), "{}", r.name);
    }
    let bad = ImitationConfig {
        teacher: "longest".into(),
        ..ImitationConfig::default()
    };
    assert_eq!(
        bad.validate(),
        vec![format!(
            "imitation.teacher: unknown scheduler `longest`; valid names: {}",
            lepton_env::schedulers::known_names()
        )]
    );
}

/// Each episode's window start (a task index of the trace) reaches report.json: listed
/// offsets 100 and 0 by episode seed 0, 1, 2. A generated workload records none.
#[test]
fn report_json_records_each_episodes_window_start() {
    let tmp = tempfile::tempdir().unwrap();
    let csv_example = workspace().join("configs/scenarios/csv-example.toml");
    let tiny = workspace().join("configs/scenarios/tiny.toml");
    let suite = tmp.path().join("windows.toml");
    std::fs::write(
        &suite,
        format!(
            "name = \"windows\"\nepisodes = 3\nbootstrap_resamples = 200\n[[scenarios]]\npath = \
             {:?}\nfirst_seed = 0\nname = \"csv-windows\"\nset = {{ \"workload.window_jobs\" = 20, \
             \"workload.window_offsets\" = [100, 0], \"workload.perturb\" = {{}} }}\n\
             [[scenarios]]\npath = {:?}\nfirst_seed = 0\n",
            s(&csv_example),
            s(&tiny)
        ),
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    let out = eval(&[
        "--suite",
        s(&suite),
        "--schedulers",
        "fcfs",
        "--out",
        s(&out_dir),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    let starts = |scenario: usize| {
        report["scenarios"][scenario]["results"][0]["episodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["metrics"].get("window_start").and_then(|v| v.as_u64()))
            .collect::<Vec<_>>()
    };
    assert_eq!(starts(0), vec![Some(100), Some(0), Some(100)]);
    assert_eq!(starts(1), vec![None; 3]);
}

/// A rule-selection checkpoint acts through its rules: lepton-eval plays, on the plain
/// scenario, exactly the episodes the training env (`RuleSelectionEnv`) plays with the same
/// greedy policy; with a single rule the checkpoint is that heuristic.
#[test]
fn a_rule_selection_checkpoint_plays_its_rules_decisions() {
    use lepton_agent::checkpoint::LoadedPolicy;
    use lepton_env::schedulers::RuleSelectionEnv;
    let tmp = tempfile::tempdir().unwrap();
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let build = |rules: &[String]| {
        let scenario = lepton_env::scenario::load_named("cloud-slot").unwrap();
        RuleSelectionEnv::new(scenario.build(), rules).unwrap()
    };
    let suite = suite(tmp.path(), "cloud-slot", 2);
    let report = |ckpt: &Path, out: &str| -> serde_json::Value {
        let out_dir = tmp.path().join(out);
        let run = eval(&[
            "--suite",
            s(&suite),
            "--schedulers",
            "sjf",
            "--checkpoint",
            s(ckpt),
            "--out",
            s(&out_dir),
        ]);
        assert_eq!(code(&run), 0, "{}{}", text(&run.stdout), text(&run.stderr));
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap()
    };
    let slowdowns = |json: &serde_json::Value, i: usize| -> Vec<f64> {
        json["scenarios"][0]["results"][i]["episodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["metrics"]["completion_slowdown"].as_f64().unwrap())
            .collect()
    };

    let rules = names(&["sjf", "tetris", "best_fit", "edf"]);
    let mut env = build(&rules);
    let meta = save_checkpoint(
        &tmp.path().join("rules"),
        env.obs_layout(),
        &env.action_layout(),
    );
    let mut policy = LoadedPolicy::load(&meta, tch::Device::Cpu).unwrap();
    let mut obs = vec![0.0; env.observation_space().dim()];
    let mut mask = vec![false; rules.len()];
    let mut expected = Vec::new();
    let mut chosen = std::collections::BTreeSet::new();
    for seed in [500, 501] {
        env.reset(Some(seed), &mut obs);
        loop {
            env.action_mask(&mut mask);
            let rule = policy.act(&obs, &mask);
            chosen.insert(rule);
            if env.step(rule, &mut obs).unwrap().episode_over() {
                expected.push(env.episode_metrics().unwrap().completion_slowdown);
                break;
            }
        }
    }
    assert!(
        chosen.len() > 1,
        "the policy used one rule only: {chosen:?}"
    );
    let json = report(&meta, "rules");
    // Equal up to JSON's last digit (serde_json parses floats to within one ulp).
    let got = slowdowns(&json, 1);
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() <= 1e-12 * e.abs(), "{got:?} vs {expected:?}");
    }
    assert_ne!(slowdowns(&json, 1), slowdowns(&json, 0));

    let only_sjf = build(&names(&["sjf"]));
    let meta = save_checkpoint(
        &tmp.path().join("sjf"),
        only_sjf.obs_layout(),
        &only_sjf.action_layout(),
    );
    let json = report(&meta, "sjf");
    assert_eq!(slowdowns(&json, 1), slowdowns(&json, 0));

    // A rule the registry does not know is refused before any episode, naming it.
    let text_meta = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(&meta, text_meta.replace("\"sjf\"", "\"nope\"")).unwrap();
    let out = eval(&[
        "--suite",
        s(&suite),
        "--checkpoint",
        s(&meta),
        "--out",
        s(&tmp.path().join("bad")),
    ]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("rule `nope`"),
        "{}",
        text(&out.stderr)
    );
}
