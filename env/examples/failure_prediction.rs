//! Failure prediction from health signals, and the tasks it saves.
//!
//! 1. **Histories.** A base heuristic plays `train` episodes. At every decision, every up
//!    server gives one sample: its health reading (observable) and whether it fails within
//!    the signal's lead time (the label, read from the simulation's future; see
//!    `ClusterEnv::next_failure_for_labels`).
//! 2. **The predictor** is a threshold on the reading: "a reading ≥ θ predicts a failure
//!    within the lead time". θ is the value in 0.01, 0.02, …, 1.00 with the best F1 on the
//!    training histories.
//! 3. **Its precision and recall** are measured on `test` episodes with disjoint seeds.
//! 4. **Tasks saved:** on the test seeds, the base heuristic, `safe:BASE:θ`, which keeps new
//!    tasks off servers whose reading predicts a failure, and (in scenarios that allow
//!    migration, `[preemption]`) `evacuate:BASE:θ`, which also moves running tasks off them.
//!    The program prints the task runs killed by failures, the work lost, the migrations and
//!    the completion-aware mean slowdown.
//!
//! Run: `cargo run --release -p lepton-env --example failure_prediction -- \
//!       configs/scenarios/cloud-ops.toml tetris 64 64`
//! (scenario, base heuristic, training episodes from seed 0, test episodes from 5,000,000, seeds
//! no other measurement uses).

use lepton_env::scenario::{self, Scenario, ScenarioEnv};
use lepton_env::schedulers::{by_name, run_episode, run_episode_with};
use rayon::prelude::*;
use std::path::Path;

/// (health reading, fails within the lead time) of every up server at every decision of the
/// base heuristic's episode from `seed`.
fn history(scenario: &Scenario, base: &str, seed: u64) -> Vec<(f64, bool)> {
    let mut env = scenario.build();
    let mut scheduler = by_name(base).unwrap_or_else(|e| panic!("{e}"));
    let mut samples = Vec::new();
    run_episode_with(scheduler.as_mut(), &mut env, seed, |env, _| {
        let ScenarioEnv::Cluster(c) = env else {
            return;
        };
        let lead_s = c
            .config()
            .health
            .expect("a scenario with health signals")
            .lead_s;
        for n in 0..c.num_servers() {
            if c.server_is_up(n) {
                let fails = c.next_failure_for_labels(n) - c.now_s() <= lead_s;
                samples.push((c.health(n), fails));
            }
        }
    })
    .expect("episode");
    samples
}

fn histories(scenario: &Scenario, base: &str, seeds: std::ops::Range<u64>) -> Vec<(f64, bool)> {
    let per_seed: Vec<Vec<(f64, bool)>> = seeds
        .into_par_iter()
        .map(|seed| history(scenario, base, seed))
        .collect();
    per_seed.concat()
}

/// (precision, recall, F1) of "reading ≥ threshold" on `samples`.
fn scores(samples: &[(f64, bool)], threshold: f64) -> (f64, f64, f64) {
    let (mut tp, mut fp, mut fnn) = (0.0, 0.0, 0.0);
    for &(reading, fails) in samples {
        match (reading >= threshold, fails) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fnn += 1.0,
            (false, false) => {}
        }
    }
    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    let recall = if tp + fnn > 0.0 { tp / (tp + fnn) } else { 0.0 };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    (precision, recall, f1)
}

/// Σ killed runs, Σ lost work, Σ migrations, mean completion-aware slowdown of `name` on
/// `seeds`.
fn outcomes(
    scenario: &Scenario,
    name: &str,
    seeds: std::ops::Range<u64>,
) -> (usize, f64, usize, f64) {
    let n = seeds.end - seeds.start;
    let per_seed: Vec<(usize, f64, usize, f64)> = seeds
        .into_par_iter()
        .map(|seed| {
            let mut env = scenario.build();
            let mut scheduler = by_name(name).unwrap_or_else(|e| panic!("{e}"));
            let m = run_episode(scheduler.as_mut(), &mut env, seed).expect("episode");
            (
                m.num_killed,
                m.lost_work_s,
                m.num_migrated,
                m.completion_slowdown,
            )
        })
        .collect();
    let killed = per_seed.iter().map(|o| o.0).sum();
    let lost = per_seed.iter().map(|o| o.1).sum();
    let migrated = per_seed.iter().map(|o| o.2).sum();
    let slowdown = per_seed.iter().map(|o| o.3).sum::<f64>() / n as f64;
    (killed, lost, migrated, slowdown)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .map_or("configs/scenarios/cloud-ops.toml", |s| s);
    let base = args.get(1).map_or("tetris", |s| s);
    let train: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let test: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(64);
    let scenario = scenario::load_file(Path::new(path)).unwrap_or_else(|e| panic!("{e}"));
    let test_seeds = 5_000_000..5_000_000 + test;

    let training = histories(&scenario, base, 0..train);
    let positives = training.iter().filter(|s| s.1).count();
    let (threshold, fit) = (1..=100)
        .map(|k| f64::from(k) / 100.0)
        .map(|t| (t, scores(&training, t)))
        .max_by(|a, b| a.1.2.total_cmp(&b.1.2))
        .expect("thresholds");
    println!(
        "{path}: base {base}; training: {train} episodes from seed 0, {} samples, {positives} \
         positive; threshold {threshold:.2} (F1 {:.3}, precision {:.3}, recall {:.3})",
        training.len(),
        fit.2,
        fit.0,
        fit.1
    );
    let held_out = histories(&scenario, base, test_seeds.clone());
    let (precision, recall, f1) = scores(&held_out, threshold);
    println!(
        "test: {test} episodes from seed 5,000,000, {} samples, {} positive: precision \
         {precision:.3}, recall {recall:.3}, F1 {f1:.3}",
        held_out.len(),
        held_out.iter().filter(|s| s.1).count()
    );
    let mut names = vec![base.to_string(), format!("safe:{base}:{threshold}")];
    let migrates =
        matches!(&scenario, Scenario::Cluster(c) if c.preemption.is_some_and(|p| p.migrate));
    if migrates {
        names.push(format!("evacuate:{base}:{threshold}"));
    }
    for name in &names {
        let (killed, lost, migrated, slowdown) = outcomes(&scenario, name, test_seeds.clone());
        println!(
            "{name:>24}: task runs killed {killed}, work lost {lost:.0} s, migrations \
             {migrated}, completion-aware mean slowdown {slowdown:.3}"
        );
    }
}
