//! Env throughput: single-thread steps/s with random legal actions (mask computed every
//! step, autoreset included) on the shipped `deeprm` and `cloud` scenarios, and the trace
//! scenarios (`hpc-lublin`, `tiresias`, and `alibaba-gpu`: 1,523 servers).
//!
//! Run: `cargo bench -p lepton-env --bench env_throughput` (optionally `-- <seconds per env>`).

use lepton_env::{Env, scenario};
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

fn measure(name: &str, budget: Duration) {
    let mut env = scenario::load_named(name)
        .expect("shipped scenario")
        .build();
    let n = env.action_space().n;
    let mut obs = vec![0.0; env.obs_layout().dim()];
    let mut mask = vec![false; n];
    let mut legal = Vec::with_capacity(n);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    env.reset(Some(0), &mut obs);
    let (mut steps, mut episodes, mut mean_slowdown_sum) = (0u64, 0u64, 0.0);
    let start = Instant::now();
    while start.elapsed() < budget {
        // Check the clock every 4096 steps, so timing costs nothing measurable.
        for _ in 0..4096 {
            env.action_mask(&mut mask);
            legal.clear();
            legal.extend((0..n).filter(|&a| mask[a]));
            let action = legal[rng.random_range(0..legal.len())];
            let t = env.step(action, &mut obs).expect("legal action");
            steps += 1;
            if t.episode_over() {
                episodes += 1;
                mean_slowdown_sum += env.episode_metrics().map_or(0.0, |m| m.mean_slowdown);
                env.reset(None, &mut obs);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:>11}: {:>12.0} steps/s  ({steps} steps in {secs:.2} s; {episodes} episodes, {:.0} steps/episode, \
         random-policy mean slowdown {:.2}; obs dim {}, {n} actions)",
        steps as f64 / secs,
        steps as f64 / episodes.max(1) as f64,
        mean_slowdown_sum / episodes.max(1) as f64,
        obs.len(),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a plain number sets the seconds per env.
    let secs = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<f64>().ok())
        .unwrap_or(5.0);
    for name in ["deeprm", "cloud", "hpc-lublin", "tiresias", "alibaba-gpu"] {
        measure(name, Duration::from_secs_f64(secs));
    }
}
