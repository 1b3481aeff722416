//! End-to-end tests of `lepton-train search` on CartPole: a tiny GA search (leaderboard,
//! best.toml, resume without retraining, same results for any parallelism, a failing trial
//! recorded and survived), the HParams entries read back by TensorBoard's own reader, and a
//! tiny PBT run.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use common::{python, repo_root};

use lepton_train::config::{TrainConfig, read_table};
use lepton_train::search::leaderboard::{Status, TrialRecord};
use lepton_train::search::{self, SearchArgs, SearchError, SearchSummary};
use lepton_train::trainer;

/// 3 + 2 × 2 = 7 trials of 1024 steps (2 envs × 32 steps, 16 updates each). The choice gene
/// `ppo.num_steps = 1024` makes a batch of 2048 > the budget: that trial must fail validation.
fn write_config(dir: &Path, mode: &str) -> PathBuf {
    let text = format!(
        r#"
base = "{base}"
set = ["eval.every_steps=0", "run.device=cpu", "run.checkpoint_every_steps=0", "ppo.num_envs=2", "ppo.update_epochs=2"]
mode = "{mode}"
seed = 5
parallel_trials = 2
steps_per_trial = 1024

[fitness]
metric = "mean_return"
num_episodes = 3
seed = 2000000011

[ga]
population = 3
generations = 3
tournament_size = 2
crossover_rate = 0.9
mutation_rate = 0.5
mutation_scale = 0.2
elitism = 1

[pbt]
population = 4
interval_steps = 256
fraction = 0.25
perturb_factors = [0.8, 1.25]

[[gene]]
kind = "log_uniform"
key = "ppo.lr"
min = 1e-4
max = 1e-2

[[gene]]
kind = "choice"
key = "ppo.num_steps"
values = [32, 64, 1024]
"#,
        base = repo_root().join("configs/ppo_cartpole.toml").display()
    );
    let path = dir.join(format!("search_{mode}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn args(config: &Path, out: &Path, resume: bool, overrides: &[&str]) -> SearchArgs {
    SearchArgs {
        config: config.to_path_buf(),
        out: Some(out.to_path_buf()),
        runs_dir: "runs".into(),
        resume,
        overrides: overrides.iter().map(|s| s.to_string()).collect(),
    }
}

fn run(args: &SearchArgs) -> Result<SearchSummary, SearchError> {
    let search = search::resolve_args(args)?;
    search::run(&search, args.resume, &Arc::new(AtomicBool::new(false)))
}

fn leaderboard(dir: &Path) -> Vec<TrialRecord> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("leaderboard.json")).unwrap()).unwrap()
}

#[test]
fn ga_search_writes_leaderboard_and_best_config_and_resumes_without_retraining() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "ga");
    let out = tmp.path().join("search");
    let summary = run(&args(&config, &out, false, &[])).unwrap();
    assert_eq!(summary.records.len(), 7);

    let board = leaderboard(&out);
    assert_eq!(board.len(), 7);
    let csv = std::fs::read_to_string(out.join("leaderboard.csv")).unwrap();
    assert_eq!(csv.lines().count(), 8, "{csv}");
    assert!(csv.starts_with(
        "rank,trial,generation,status,fitness,budget_steps,seed,ppo.lr,ppo.num_steps,"
    ));
    // Best first; finished trials have a fitness, the others a reason and none.
    let fitness: Vec<Option<f64>> = board.iter().map(|r| r.fitness).collect();
    assert!(
        fitness.windows(2).all(|w| w[1].is_none() || w[0] >= w[1]),
        "{fitness:?}"
    );
    for r in &board {
        assert_eq!(r.status == Status::Finished, r.fitness.is_some(), "{r:?}");
        assert_eq!(r.budget_steps, 1024);
        let too_big = r.genes["ppo.num_steps"] == serde_json::json!(1024);
        assert_eq!(too_big, r.status == Status::Invalid, "{r:?}");
        if too_big {
            assert!(
                r.reason.as_deref().unwrap().contains("train.total_steps"),
                "{r:?}"
            );
        } else {
            // Two runs per trial (the default `seeds_per_trial`), fitness their mean.
            assert_eq!((r.seeds.len(), r.seed_fitness.len()), (2, 2), "{r:?}");
            assert_eq!(r.seeds[0], r.seed);
            let mean = (r.seed_fitness[0] + r.seed_fitness[1]) / 2.0;
            assert_eq!(r.fitness, Some(mean));
            for (k, seed) in r.seeds.iter().enumerate() {
                let run = out.join(&r.run_dir).join(format!("seed_{k}"));
                assert!(run.join("checkpoints/final.json").is_file());
                let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
                assert!(cfg.contains(&format!("seed = {seed}")), "{cfg}");
            }
        }
    }
    assert!(
        board.iter().any(|r| r.status == Status::Invalid),
        "this seed draws ppo.num_steps = 1024 at least once: the failing trial is part of the test"
    );

    // best.toml is the winner's first run, with evaluation and checkpoints on: training it
    // again writes a `best` checkpoint and the final one scores exactly what the search
    // recorded for that seed.
    let best = &board[0];
    let table = read_table(&out.join("best.toml")).unwrap();
    let cfg = TrainConfig::from_table(table, "best.toml").unwrap();
    assert_eq!((cfg.train.total_steps, cfg.train.seed), (1024, best.seed));
    assert_eq!(
        serde_json::json!(cfg.ppo.num_steps),
        best.genes["ppo.num_steps"]
    );
    assert!((cfg.ppo.lr - best.genes["ppo.lr"].as_f64().unwrap()).abs() < 1e-15);
    assert_eq!(
        (cfg.eval.every_steps, cfg.run.checkpoint_every_steps),
        (102, 102)
    );
    let again = tmp.path().join("again");
    let summary = trainer::run(&cfg, &common::options(&again, false, None)).unwrap();
    assert!(again.join("checkpoints/best.json").is_file());
    let search_config = search::resolve_args(&args(&config, &out, true, &[])).unwrap();
    let score = search::score_checkpoint(
        &cfg,
        &summary.last_checkpoint,
        &search_config.config.fitness,
    )
    .unwrap();
    assert_eq!(score, best.seed_fitness[0]);

    // A second start without --resume is refused; --resume with another config too.
    assert!(run(&args(&config, &out, false, &[])).is_err());
    assert!(run(&args(&config, &out, true, &["seed=6"])).is_err());

    // Resume: finished trials are not retrained (a marker in each run dir survives), and a
    // trial whose trial.json is missing (interrupted) is redone with the same result.
    for r in &board {
        std::fs::write(out.join(&r.run_dir).join("marker"), "").unwrap();
    }
    let redo = board.iter().find(|r| r.status == Status::Finished).unwrap();
    std::fs::remove_file(out.join(&redo.run_dir).join("trial.json")).unwrap();
    run(&args(&config, &out, true, &[])).unwrap();
    for r in &board {
        assert_eq!(
            out.join(&r.run_dir).join("marker").exists(),
            r.trial != redo.trial,
            "trial {}",
            r.trial
        );
    }
    let strip = |b: Vec<TrialRecord>| -> Vec<(usize, Option<f64>, Vec<f64>)> {
        b.into_iter()
            .map(|r| (r.trial, r.fitness, r.genome))
            .collect()
    };
    assert_eq!(strip(leaderboard(&out)), strip(board.clone()));

    // The same search one trial at a time gives the same leaderboard.
    let serial = tmp.path().join("serial");
    run(&args(&config, &serial, false, &["parallel_trials=1"])).unwrap();
    assert_eq!(strip(leaderboard(&serial)), strip(board));
}

#[test]
fn hparams_entries_read_back_with_tensorboard() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "ga");
    let out = tmp.path().join("search");
    run(&args(
        &config,
        &out,
        false,
        &["ga.generations=1", "ga.population=2"],
    ))
    .unwrap();
    let script = r#"
import sys, os
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
def load(d):
    acc = EventAccumulator(d, size_guidance={'scalars': 0, 'tensors': 0})
    acc.Reload()
    return acc
root = load(sys.argv[1])
for tag in root.Tags()['tensors']:
    md = root.SummaryMetadata(tag)
    data = plugin_data_pb2.HParamsPluginData.FromString(md.plugin_data.content)
    print('experiment', tag, md.plugin_data.plugin_name, [h.name for h in data.experiment.hparam_infos], [m.name.tag for m in data.experiment.metric_infos])
session = load(os.path.join(sys.argv[1], 'trials', 'trial_0000', 'hparams'))
for tag in session.Tags()['tensors']:
    data = plugin_data_pb2.HParamsPluginData.FromString(session.SummaryMetadata(tag).plugin_data.content)
    if data.HasField('session_start_info'):
        print('start', tag, sorted(data.session_start_info.hparams.keys()))
    if data.HasField('session_end_info'):
        print('end', tag, data.session_end_info.status)
for tag in session.Tags()['scalars']:
    print('scalar', tag, len(session.Scalars(tag)))
"#;
    let stdout = python(script, &[&out]);
    assert!(
        stdout.contains(
            "experiment _hparams_/experiment hparams ['ppo.lr', 'ppo.num_steps'] ['search/fitness']"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("start _hparams_/session_start_info ['ppo.lr', 'ppo.num_steps']"),
        "{stdout}"
    );
    assert!(
        stdout.contains("end _hparams_/session_end_info"),
        "{stdout}"
    );
    let record: TrialRecord = serde_json::from_str(
        &std::fs::read_to_string(out.join("trials/trial_0000/trial.json")).unwrap(),
    )
    .unwrap();
    if record.fitness.is_some() {
        assert!(stdout.contains("scalar search/fitness 1"), "{stdout}");
    }
}

#[test]
fn pbt_members_exploit_and_explore_and_resume_is_a_no_op() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "pbt");
    let out = tmp.path().join("pbt");
    // Only batch-compatible choices, so that every member trains.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[32, 64, 1024]", "[32, 64]");
    std::fs::write(&config, text).unwrap();
    let summary = run(&args(&config, &out, false, &[])).unwrap();
    assert_eq!(summary.records.len(), 4);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("pbt_state.json")).unwrap())
            .unwrap();
    assert_eq!(state["rounds_done"], 4);
    // 3 exploit rounds × 1 recipient (the bottom quarter of 4).
    let copies: usize = summary.records.iter().map(|r| r.history.len()).sum();
    assert_eq!(copies, 3, "{:?}", summary.records);
    for r in &summary.records {
        assert_eq!(r.status, Status::Finished, "{r:?}");
        let meta = lepton_agent::checkpoint::read_meta(
            &out.join(&r.run_dir).join("checkpoints/final.json"),
        )
        .unwrap();
        assert!(meta.global_step >= 1024, "{}", meta.global_step);
        // The checkpoint carries the member's final genes.
        let cfg: TrainConfig = toml::from_str(&meta.config_toml).unwrap();
        assert!((cfg.ppo.lr - r.genes["ppo.lr"].as_f64().unwrap()).abs() < 1e-15);
    }
    let again = run(&args(&config, &out, true, &[])).unwrap();
    let fit = |s: &SearchSummary| s.records.iter().map(|r| r.fitness).collect::<Vec<_>>();
    assert_eq!(fit(&again), fit(&summary));
    // best.toml says that it does not replay a PBT member, and names the member's checkpoint.
    let best = &leaderboard(&out)[0];
    let text = std::fs::read_to_string(out.join("best.toml")).unwrap();
    let member = format!("{}/checkpoints/final.json", best.run_dir);
    assert!(
        text.contains("PBT: these are its final hyperparameters") && text.contains(&member),
        "{text}"
    );
    assert!(out.join(member).is_file());
}

/// Slowdown fitness metrics need a scheduling env: CartPole is refused for both, naming the
/// metric.
#[test]
fn slowdown_fitness_on_cartpole_is_refused_naming_the_metric() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "ga");
    let text = std::fs::read_to_string(&config).unwrap();
    for metric in ["neg_completion_slowdown", "neg_mean_slowdown"] {
        std::fs::write(
            &config,
            text.replace(
                "metric = \"mean_return\"",
                &format!("metric = \"{metric}\""),
            ),
        )
        .unwrap();
        let Err(err) = search::resolve_args(&args(&config, &tmp.path().join("s"), false, &[]))
        else {
            panic!("{metric} on CartPole was accepted");
        };
        let err = err.to_string();
        assert!(
            err.contains(&format!(
                "fitness.metric = \"{metric}\" needs a scheduling env"
            )),
            "{err}"
        );
    }
}

/// Successive halving: 4 trials train 512 of their 1024 steps, the best half resumes to the
/// end and the rest stop. Resume is bit-exact, so the trials that go on score exactly what
/// they score in the same search without early stopping, and the stopped ones keep their
/// half-way score.
#[test]
fn early_stopping_halves_the_trials_at_each_rung() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "ga");
    let common = [
        "ga.population=4",
        "ga.generations=1",
        "ga.elitism=0",
        "seeds_per_trial=1",
    ];
    let plain = tmp.path().join("plain");
    run(&args(&config, &plain, false, &common)).unwrap();
    let halved = tmp.path().join("halved");
    let mut with_rungs = common.to_vec();
    with_rungs.extend(["early_stop.rungs=[0.5]", "early_stop.keep=0.5"]);
    run(&args(&config, &halved, false, &with_rungs)).unwrap();

    let by_trial = |dir: &Path| {
        let mut b = leaderboard(dir);
        b.sort_by_key(|r| r.trial);
        b
    };
    let (plain, halved) = (by_trial(&plain), by_trial(&halved));
    let scored: Vec<&TrialRecord> = halved
        .iter()
        .filter(|r| r.status != Status::Invalid)
        .collect();
    assert!(scored.len() >= 2, "{halved:?}");
    let keep = scored.len().div_ceil(2);
    let finished: Vec<&&TrialRecord> = scored
        .iter()
        .filter(|r| r.status == Status::Finished)
        .collect();
    assert_eq!(finished.len(), keep, "{halved:?}");
    for r in &scored {
        assert_eq!(r.rungs.len(), 1, "{r:?}");
        assert_eq!(r.rungs[0].steps, 512);
        let twin = &plain[r.trial];
        if r.status == Status::Finished {
            assert_eq!((r.fitness, r.budget_steps), (twin.fitness, 1024), "{r:?}");
        } else {
            assert_eq!(r.status, Status::Stopped, "{r:?}");
            assert_eq!((r.fitness, r.budget_steps), (None, 512));
            // Stopped: below every trial that went on.
            assert!(
                finished
                    .iter()
                    .all(|f| f.rungs[0].fitness >= r.rungs[0].fitness)
            );
        }
    }
}
