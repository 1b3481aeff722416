//! What a `rollout` scheduler's worlds tell it: at every decision where PLANNER leaves BASE,
//! the true one-step gain of its choice (both actions played on exact clones of the env, BASE
//! after them) against the gain estimated on WORLDS *fresh* redrawn worlds (not the ones the
//! planner chose on, so no winner's curse), each keeping ARRIVALS redrawn arrivals (default
//! all). It prints, over those decisions, the mean true and estimated gains (in completion-
//! aware mean slowdown), the estimate's standard error, and BASE's cost in truth against its
//! mean and spread over the worlds. Estimates that agree with the truth on average but have a
//! standard error far above the gains mean the planner chooses on noise; estimates that
//! disagree mean the worlds are biased (BENCHMARKS.md "A rollout on a finite horizon").
//!
//! Run: `cargo run --release -p lepton-env --example rollout_probe -- SCENARIO FIRST_SEED SEEDS PLANNER BASE WORLDS [ARRIVALS]`,
//! e.g. `… -- configs/scenarios/cloud.toml 4000000 2 rollout:fastest:sjf:16 fastest:sjf 32 10`

use lepton_env::api::Env;
use lepton_env::scenario::{self, ScenarioEnv};
use lepton_env::schedulers::{Scheduler, by_name};
use lepton_env::seeds::mix64;
use rayon::prelude::*;
use std::path::Path;

const PROBE_SALT: u64 = 0x0070_726f_6265;

/// Mean and sample variance (n − 1).
fn mean_and_variance(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var)
}

/// Takes `first` on `sim`, then lets `base` play to the end; the episode's completion-aware
/// mean slowdown.
fn play_out(mut sim: ScenarioEnv, first: usize, base: &mut dyn Scheduler) -> f64 {
    let mut obs = vec![0.0; sim.observation_space().dim()];
    let mut mask = vec![false; sim.action_space().n];
    let mut action = first;
    loop {
        sim.step(action, &mut obs).expect("legal action");
        if let Some(m) = sim.episode_metrics() {
            return m.completion_slowdown;
        }
        sim.action_mask(&mut mask);
        action = base.act(&sim, &obs, &mask);
    }
}

struct Deviation {
    true_gain: f64,
    estimated_gain: f64,
    standard_error: f64,
    waits: bool,
    true_cost: f64,
    world_cost: f64,
    world_cost_sd: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 {
        eprintln!("usage: rollout_probe SCENARIO FIRST_SEED SEEDS PLANNER BASE WORLDS [ARRIVALS]");
        std::process::exit(2);
    }
    let path = &args[0];
    let first_seed: u64 = args[1].parse().expect("first seed");
    let num_seeds: u64 = args[2].parse().expect("seeds");
    let planner_name = &args[3];
    let base_name = &args[4];
    let worlds: u64 = args[5].parse().expect("worlds");
    let arrivals: Option<usize> = args.get(6).map(|a| a.parse().expect("arrivals"));
    let scenario = scenario::load_file(Path::new(path)).unwrap_or_else(|e| panic!("{e}"));
    let per_seed: Vec<(u64, u64, Vec<Deviation>, f64, f64)> = (first_seed..first_seed + num_seeds)
        .into_par_iter()
        .map(|seed| {
            let mut env = scenario.build();
            let mut planner = by_name(planner_name).expect("planner");
            let mut base = by_name(base_name).expect("base");
            let mut obs = vec![0.0; env.observation_space().dim()];
            let mut mask = vec![false; env.action_space().n];
            planner.reset(seed);
            base.reset(seed);
            env.reset(Some(seed), &mut obs);
            let mut deviations = Vec::new();
            let mut decisions = 0;
            env.action_mask(&mut mask);
            let base_episode = play_out(env.clone(), base.act(&env, &obs, &mask), base.as_mut());
            loop {
                if let Some(m) = env.episode_metrics() {
                    return (
                        seed,
                        decisions,
                        deviations,
                        m.completion_slowdown,
                        base_episode,
                    );
                }
                env.action_mask(&mut mask);
                let chosen = planner.act(&env, &obs, &mask);
                let usual = base.act(&env, &obs, &mask);
                decisions += 1;
                if chosen != usual {
                    let true_cost = play_out(env.clone(), usual, base.as_mut());
                    let true_gain = true_cost - play_out(env.clone(), chosen, base.as_mut());
                    // Worlds seeded apart from the planner's own (it seeds from the episode).
                    let (mut costs, mut gains) = (Vec::new(), Vec::new());
                    for w in 0..worlds {
                        let mut world = env.clone();
                        let world_seed =
                            mix64(PROBE_SALT ^ mix64(seed) ^ mix64(decisions * worlds + w));
                        world.redraw_hidden(world_seed, arrivals);
                        let cost = play_out(world.clone(), usual, base.as_mut());
                        costs.push(cost);
                        gains.push(cost - play_out(world, chosen, base.as_mut()));
                    }
                    let (world_cost, cost_var) = mean_and_variance(&costs);
                    let (mean, var) = mean_and_variance(&gains);
                    let (n, world_cost_sd) = (gains.len() as f64, cost_var.sqrt());
                    deviations.push(Deviation {
                        true_gain,
                        estimated_gain: mean,
                        standard_error: (var / n).sqrt(),
                        waits: chosen == mask.len() - 1,
                        true_cost,
                        world_cost,
                        world_cost_sd,
                    });
                }
                env.step(chosen, &mut obs).expect("legal action");
            }
        })
        .collect();
    let mut all = Vec::new();
    for (seed, decisions, deviations, planner, base) in per_seed {
        let t: f64 = deviations.iter().map(|d| d.true_gain).sum();
        let e: f64 = deviations.iter().map(|d| d.estimated_gain).sum();
        println!(
            "seed {seed}: {planner_name} {planner:.3} vs {base_name} {base:.3}; {decisions} decisions, {} deviations ({} waits); sum of true gains {t:+.4}, of fresh estimates {e:+.4}",
            deviations.len(),
            deviations.iter().filter(|d| d.waits).count()
        );
        all.extend(deviations);
    }
    let n = all.len() as f64;
    let mean = |f: &dyn Fn(&Deviation) -> f64| all.iter().map(f).sum::<f64>() / n;
    println!(
        "{} deviations: mean true gain {:+.5}, mean fresh estimate {:+.5}, mean se {:.5}; true gain > 0 in {:.1}%, estimate > 0 in {:.1}%",
        all.len(),
        mean(&|d| d.true_gain),
        mean(&|d| d.estimated_gain),
        mean(&|d| d.standard_error),
        100.0 * mean(&|d| f64::from(u8::from(d.true_gain > 0.0))),
        100.0 * mean(&|d| f64::from(u8::from(d.estimated_gain > 0.0))),
    );
    println!(
        "  base's cost: true {:.4}, mean over worlds {:.4}, sd within a decision's worlds {:.4}",
        mean(&|d| d.true_cost),
        mean(&|d| d.world_cost),
        mean(&|d| d.world_cost_sd)
    );
    for (label, waits) in [("waits", true), ("placements", false)] {
        let part: Vec<&Deviation> = all.iter().filter(|d| d.waits == waits).collect();
        let k = part.len().max(1) as f64;
        println!(
            "  {label}: {} deviations, mean true gain {:+.5}, mean fresh estimate {:+.5}",
            part.len(),
            part.iter().map(|d| d.true_gain).sum::<f64>() / k,
            part.iter().map(|d| d.estimated_gain).sum::<f64>() / k,
        );
    }
}
