//! Does holding long tasks back pay on a scenario? A probe of the room a scheduler that sees
//! only the present has, of the kind DeepRM's learned policy found (Mao et al., HotNets'16:
//! it holds large jobs back so that small ones can go).
//!
//! It prints two things for one base heuristic on the given seeds:
//! 1. where the base's mean slowdown comes from: the finished tasks by slowdown band, each
//!    band's share of the tasks and its contribution to the mean's excess over 1;
//! 2. the base with a holding rule, swept over a grid: the `reserve` heuristic
//!    (`schedulers/reserve.rs`): a visible task whose estimate exceeds `LONG` seconds and that
//!    would leave less than the fraction `FREE` of the cluster's `RESOURCE` free is passed
//!    over (the env then waits when every task is passed over and it allows waiting).
//!    Completion-aware mean slowdown, relative to the base on the same seeds.
//!
//! Each cell is tuned on the seeds it is run on: pick `reserve`'s thresholds on seeds other
//! than the ones its score is reported on.
//!
//! Run: `cargo run --release -p lepton-env --example holding -- configs/scenarios/cloud-inference.toml 4000000 32 sjf gpu`
//! (RESOURCE is a name on cluster scenarios, an index on DeepRM's: `... deeprm-hold.toml 4000000 64 tetris 0`)

use lepton_env::scenario::{self, Scenario, ScenarioEnv};
use lepton_env::schedulers::{Filter, Heuristic, Rule, Scheduler, run_episode_with};
use rayon::prelude::*;
use std::path::Path;

fn base_rule(name: &str) -> Rule {
    match name {
        "sjf" => Rule::Sjf,
        "tetris" => Rule::Tetris { srtf_weight: 1.0 },
        "best_fit" => Rule::BestFit,
        other => panic!("base must be sjf, tetris or best_fit, not {other}"),
    }
}

/// Each seed's completion-aware mean slowdown and, on cluster scenarios, its finished tasks'
/// slowdowns.
fn run(
    scenario: &Scenario,
    seeds: &[u64],
    make: impl Fn() -> Box<dyn Scheduler> + Sync,
) -> Vec<(f64, Vec<f64>)> {
    seeds
        .par_iter()
        .map(|&seed| {
            let mut env = scenario.build();
            let metrics =
                run_episode_with(make().as_mut(), &mut env, seed, |_, _| {}).expect("episode");
            let slowdowns = match &env {
                ScenarioEnv::Cluster(cluster) => cluster.finished_slowdowns().collect(),
                ScenarioEnv::DeepRm(_) => Vec::new(),
            };
            (metrics.completion_slowdown, slowdowns)
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, first_seed, num_seeds, base, resource] = &args[..] else {
        panic!("usage: holding SCENARIO FIRST_SEED NUM_SEEDS BASE RESOURCE");
    };
    let scenario = scenario::load_file(Path::new(path)).unwrap_or_else(|e| panic!("{e}"));
    let first: u64 = first_seed.parse().expect("first seed");
    let seeds: Vec<u64> = (first..first + num_seeds.parse::<u64>().expect("seed count")).collect();
    let rule = base_rule(base);
    let resource_name = resource;
    // A resource by name on cluster scenarios, by index on DeepRM's (cpu, mem).
    let resource = match scenario.build() {
        ScenarioEnv::Cluster(cluster) => {
            cluster.resource_names().iter().position(|r| r == resource)
        }
        ScenarioEnv::DeepRm(_) => resource.parse().ok(),
    }
    .unwrap_or_else(|| panic!("no resource {resource} in {path}"));
    let mean = |runs: &[(f64, Vec<f64>)]| runs.iter().map(|r| r.0).sum::<f64>() / runs.len() as f64;

    let plain = run(&scenario, &seeds, || {
        Box::new(Heuristic::new(base.clone(), rule))
    });
    let slowdowns: Vec<f64> = plain.iter().flat_map(|r| r.1.iter().copied()).collect();
    let reference = mean(&plain);
    println!(
        "{path}, seeds {first}..{}: {base} {reference:.3}",
        first + seeds.len() as u64
    );
    // DeepRM's env keeps no per-task slowdowns: no bands there.
    if !slowdowns.is_empty() {
        println!("where {base}'s mean slowdown comes from (finished tasks):");
        let bands = [0.0, 1.0, 1.1, 2.0, 5.0, 20.0, f64::INFINITY];
        for band in bands.windows(2) {
            let inside: Vec<f64> = slowdowns
                .iter()
                .copied()
                .filter(|&s| s >= band[0] && s < band[1])
                .collect();
            println!(
                "  slowdown in [{:>4}, {:>4}): {:5.1}% of tasks, {:+.3} of the mean's excess over 1",
                band[0],
                band[1],
                100.0 * inside.len() as f64 / slowdowns.len() as f64,
                inside.iter().map(|s| s - 1.0).sum::<f64>() / slowdowns.len() as f64
            );
        }
    }
    println!(
        "{base} holding back tasks longer than LONG s (time steps on DeepRM) that would leave under FREE of {resource_name} free:"
    );
    for long_s in [3.0, 10.0, 30.0, 100.0] {
        let row: Vec<String> = [0.05, 0.1, 0.2, 0.3, 0.5]
            .iter()
            .map(|&min_free| {
                let held = mean(&run(&scenario, &seeds, || {
                    Box::new(Heuristic::new(base.clone(), rule).with_filter(
                        "reserve",
                        Filter::Reserve {
                            resource: Some(resource),
                            long_s,
                            min_free,
                        },
                    ))
                }));
                format!(
                    "FREE {min_free:.2}: {held:.3} ({:+5.1}%)",
                    100.0 * (held - reference) / reference
                )
            })
            .collect();
        println!("  LONG {long_s:>5}: {}", row.join("  "));
    }
}
