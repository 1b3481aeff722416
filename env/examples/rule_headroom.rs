//! The ceiling of rule selection on a scenario: at every decision, try each rule's decision
//! on a clone of the env, play a base heuristic on to the episode's end, and keep the best
//! (the `lookahead` proxy restricted to the rules' decisions; it sees the future, so no
//! learned rule selector can be expected to reach it). Prints the base heuristic's and the
//! ceiling's completion-aware mean slowdown over the same seeds.
//!
//! Run: `cargo run --release -p lepton-env --example rule_headroom -- \
//!       configs/scenarios/cloud-slot.toml 4000000 16 sjf sjf,tetris,best_fit,edf,weighted`

use lepton_env::scenario::{self, ScenarioEnv};
use lepton_env::schedulers::{RuleChooser, by_name, run_episode, step_decision};
use lepton_env::{Env, EpisodeMetrics};
use rayon::prelude::*;
use std::path::Path;

/// Plays an episode choosing, at each decision, the rule whose decision has the lowest
/// rollout cost with `base` continuing.
fn ceiling(env: &mut ScenarioEnv, seed: u64, base: &str, rules: &[String]) -> EpisodeMetrics {
    let mut chooser = RuleChooser::new(rules, env).unwrap_or_else(|e| panic!("{e}"));
    let mut base = by_name(base).unwrap_or_else(|e| panic!("{e}"));
    let mut obs = vec![0.0; env.observation_space().dim()];
    let mut scratch = obs.clone();
    let mut mask = vec![false; env.action_space().n];
    env.reset(Some(seed), &mut obs);
    chooser.reset(seed);
    loop {
        chooser.decide(env, &obs);
        let mut best = (chooser.decision(0), f64::INFINITY);
        for k in (0..rules.len()).filter(|&k| chooser.is_first(k)) {
            let mut sim = env.clone();
            let mut decision = chooser.decision(k);
            let cost = loop {
                step_decision(&mut sim, decision, &mut scratch)
                    .expect("a rule's decision is legal");
                if let Some(m) = sim.episode_metrics() {
                    break m.completion_slowdown;
                }
                sim.action_mask(&mut mask);
                decision = base.decide(&sim, &scratch, &mask);
            };
            if cost < best.1 - 1e-9 * cost.abs() {
                best = (chooser.decision(k), cost);
            }
        }
        step_decision(env, best.0, &mut obs).expect("a rule's decision is legal");
        if let Some(m) = env.episode_metrics() {
            return m.clone();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .map_or("configs/scenarios/cloud-slot.toml", |s| s);
    let first_seed: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4_000_000);
    let num_seeds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let base = args.get(3).map_or("sjf", |s| s);
    let rules: Vec<String> = args
        .get(4)
        .map_or("sjf,tetris,best_fit,edf,weighted", |s| s)
        .split(',')
        .map(String::from)
        .collect();
    let scenario = scenario::load_file(Path::new(path)).unwrap_or_else(|e| panic!("{e}"));
    let seeds: Vec<u64> = (first_seed..first_seed + num_seeds).collect();
    let pairs: Vec<(f64, f64)> = seeds
        .par_iter()
        .map(|&seed| {
            let mut env = scenario.build();
            let mut heuristic = by_name(base).unwrap_or_else(|e| panic!("{e}"));
            let alone = run_episode(heuristic.as_mut(), &mut env, seed).expect("episode");
            let best = ceiling(&mut env, seed, base, &rules);
            (alone.completion_slowdown, best.completion_slowdown)
        })
        .collect();
    let mean = |f: fn(&(f64, f64)) -> f64| pairs.iter().map(f).sum::<f64>() / num_seeds as f64;
    let (alone, best) = (mean(|p| p.0), mean(|p| p.1));
    println!(
        "{path}, seeds {first_seed}..{}: {base} {alone:.3}, best of [{}] per decision {best:.3} ({:.1}% below {base})",
        first_seed + num_seeds,
        rules.join(", "),
        100.0 * (alone - best) / alone
    );
}
