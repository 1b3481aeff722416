//! How much room a scenario leaves a learned scheduler: the heuristics, random and the
//! `lookahead` proxy on the same seeds, completion-aware mean slowdown, each paired against
//! the best heuristic (relative difference of the means over the same episodes). A quick
//! tuning aid; `lepton-eval` gives the same numbers with confidence intervals. The optional last
//! argument names one more scheduler: `lookahead` (sees the future: an upper-bound proxy) or
//! `rollout` (the same lookahead on worlds redrawn without the future: the headroom a scheduler
//! can reach by planning on what it observes).
//!
//! Run: `cargo run -p lepton-env --example headroom -- configs/scenarios/cloud.toml 4000000 32 [lookahead|rollout]`

use lepton_env::scenario;
use lepton_env::schedulers::{by_name, run_episode_with};
use rayon::prelude::*;
use std::path::Path;
use std::time::Instant;

const HEURISTICS: &[&str] = &["fcfs", "sjf", "packer", "tetris", "best_fit"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().map_or("configs/scenarios/cloud.toml", |s| s);
    let first_seed: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4_000_000);
    let num_seeds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let lookahead = args.get(3).cloned();
    let scenario = scenario::load_file(Path::new(path)).unwrap_or_else(|e| panic!("{e}"));
    let seeds: Vec<u64> = (first_seed..first_seed + num_seeds).collect();
    let mut names: Vec<String> = std::iter::once("random")
        .chain(HEURISTICS.iter().copied())
        .map(String::from)
        .collect();
    names.extend(lookahead);
    let mut rows = Vec::new();
    for name in &names {
        let start = Instant::now();
        let per_seed: Vec<(f64, u64)> = seeds
            .par_iter()
            .map(|&seed| {
                let mut env = scenario.build();
                let mut scheduler = by_name(name).expect("registered scheduler");
                let mut decisions = 0;
                let m = run_episode_with(scheduler.as_mut(), &mut env, seed, |_, _| decisions += 1)
                    .expect("episode");
                (m.completion_slowdown, decisions)
            })
            .collect();
        let mean = per_seed.iter().map(|p| p.0).sum::<f64>() / num_seeds as f64;
        let steps = per_seed.iter().map(|p| p.1).sum::<u64>() as f64 / num_seeds as f64;
        rows.push((name.clone(), mean, steps, start.elapsed().as_secs_f64()));
    }
    let best = rows
        .iter()
        .filter(|r| HEURISTICS.contains(&r.0.as_str()))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("heuristics ran")
        .clone();
    println!(
        "{path}, seeds {first_seed}..{}: completion_slowdown",
        first_seed + num_seeds
    );
    for (name, mean, steps, secs) in rows {
        let vs = 100.0 * (mean - best.1) / best.1;
        let words = if vs >= 0.0 { "worse" } else { "better" };
        println!(
            "{name:>18}: {mean:7.3}  {:5.1}% {words} than {}  {steps:6.0} decisions/episode  {secs:6.1} s",
            vs.abs(),
            best.0
        );
    }
}
