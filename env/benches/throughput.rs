//! CartPole and VecEnv throughput: env steps/s with random legal actions (uniform over the
//! action mask, drawn on the caller's thread), episodes reset as they end. "1 env" steps one
//! env directly; "VecEnv N" counts env steps (N per `VecEnv::step`) with `num_threads` 1 and 2.
//!
//! Run: `cargo bench -p lepton-env --bench throughput [-- <env>]` (env: cartpole, deeprm,
//! cloud); `LEPTON_BENCH_SECONDS` sets the seconds per measurement (default 1).
//!
//! Note: a reconstruction. The original of this file (written alongside `VecEnv`) was
//! overwritten by accident when `benches/env_throughput.rs` was added; this version follows
//! the interface and table that BENCHMARKS.md documents for it.

use lepton_env::{CartPole, Env, VecEnv, scenario};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

const VEC_SIZES: [usize; 4] = [1, 8, 64, 256];

/// Uniform over the legal actions of one mask row.
fn pick(mask: &[bool], legal: &mut Vec<usize>, rng: &mut ChaCha8Rng) -> usize {
    legal.clear();
    legal.extend((0..mask.len()).filter(|&a| mask[a]));
    legal[rng.random_range(0..legal.len())]
}

fn single<E: Env>(mut env: E, budget: Duration) -> f64 {
    let n = env.action_space().n;
    let mut obs = vec![0.0; env.observation_space().dim()];
    let (mut mask, mut legal) = (vec![false; n], Vec::with_capacity(n));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    env.reset(Some(0), &mut obs);
    let (mut steps, start) = (0u64, Instant::now());
    while start.elapsed() < budget {
        for _ in 0..4096 {
            env.action_mask(&mut mask);
            let action = pick(&mask, &mut legal, &mut rng);
            if env
                .step(action, &mut obs)
                .expect("legal action")
                .episode_over()
            {
                env.reset(None, &mut obs);
            }
            steps += 1;
        }
    }
    steps as f64 / start.elapsed().as_secs_f64()
}

fn vectorised<E: Env>(envs: Vec<E>, num_threads: usize, budget: Duration) -> f64 {
    let num_envs = envs.len();
    let mut vec_env = VecEnv::new(envs, num_threads).expect("vec env");
    let n = vec_env.num_actions();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (mut actions, mut legal) = (vec![0; num_envs], Vec::with_capacity(n));
    vec_env.reset(Some(0));
    let (mut steps, start) = (0u64, Instant::now());
    while start.elapsed() < budget {
        for _ in 0..16 {
            for (i, action) in actions.iter_mut().enumerate() {
                *action = pick(
                    &vec_env.action_masks()[i * n..(i + 1) * n],
                    &mut legal,
                    &mut rng,
                );
            }
            vec_env.step(&actions).expect("legal actions");
            steps += num_envs as u64;
        }
    }
    steps as f64 / start.elapsed().as_secs_f64()
}

fn report<E: Env>(name: &str, make: impl Fn(u64) -> E, budget: Duration) {
    println!(
        "{name}: 1 env, 1 thread {:>12.0} steps/s",
        single(make(0), budget)
    );
    for num_envs in VEC_SIZES {
        let envs = || (0..num_envs as u64).map(&make).collect::<Vec<_>>();
        let one = vectorised(envs(), 1, budget);
        let two = vectorised(envs(), 2, budget);
        println!(
            "{name}: VecEnv {num_envs:>3}: 1 thread {one:>12.0}, 2 threads {two:>12.0} steps/s ({:.2}x)",
            two / one
        );
    }
}

fn main() {
    let secs = std::env::var("LEPTON_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let budget = Duration::from_secs_f64(secs);
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if wanted("cartpole") {
        report("cartpole", CartPole::v1, budget);
    }
    for name in ["deeprm", "cloud"] {
        if wanted(name) {
            let scenario = scenario::load_named(name).expect("shipped scenario");
            report(
                name,
                |seed| scenario.clone().with_seed(seed).build(),
                budget,
            );
        }
    }
}
