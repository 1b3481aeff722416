//! Env throughput: steps per second with random legal actions, one env on one thread, then a
//! `VecEnv` of N envs stepped by 1 and by 2 threads; CartPole-v1 and the `deeprm` and `cloud`
//! scenarios of `configs/scenarios`.
//!
//! `cargo bench -p lepton-env --bench throughput` (set `LEPTON_BENCH_SECONDS` to change the
//! time spent per measurement, 1 s by default). Numbers go in BENCHMARKS.md with the command.

use std::time::{Duration, Instant};

use lepton_env::scenario::load_named;
use lepton_env::{CartPole, Env, VecEnv};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A uniformly random legal action (the mask is never empty).
fn random_legal_action(mask: &[bool], rng: &mut ChaCha8Rng) -> usize {
    let num_legal = mask.iter().filter(|&&m| m).count();
    let k = rng.random_range(0..num_legal);
    mask.iter()
        .enumerate()
        .filter(|(_, m)| **m)
        .nth(k)
        .map(|(a, _)| a)
        .unwrap()
}

/// Steps per second of one env on the calling thread, resetting when an episode ends.
fn single_env_steps_per_s<E: Env>(mut env: E, budget: Duration) -> f64 {
    let mut obs = vec![0.0; env.observation_space().dim()];
    let mut mask = vec![false; env.action_space().n];
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    env.reset(Some(0), &mut obs);
    let mut run = |num_steps: u64| {
        for _ in 0..num_steps {
            env.action_mask(&mut mask);
            let action = random_legal_action(&mask, &mut rng);
            if env.step(action, &mut obs).unwrap().episode_over() {
                env.reset(None, &mut obs);
            }
        }
    };
    run(10_000);
    let (mut num_steps, start) = (0_u64, Instant::now());
    while start.elapsed() < budget {
        run(10_000);
        num_steps += 10_000;
    }
    num_steps as f64 / start.elapsed().as_secs_f64()
}

/// Env steps per second (N per VecEnv step) of a VecEnv, actions drawn on the caller's thread.
fn vec_env_steps_per_s<E: Env>(envs: Vec<E>, num_threads: usize, budget: Duration) -> f64 {
    let n = envs.len();
    let mut venv = VecEnv::new(envs, num_threads).unwrap();
    let a = venv.num_actions();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut actions = vec![0; n];
    venv.reset(Some(0));
    let mut run = |venv: &mut VecEnv<E>, num_steps: u64| {
        for _ in 0..num_steps {
            for (i, action) in actions.iter_mut().enumerate() {
                *action = random_legal_action(&venv.action_masks()[i * a..(i + 1) * a], &mut rng);
            }
            venv.step(&actions).unwrap();
        }
    };
    let batch = (100_000 / n as u64).max(10);
    run(&mut venv, batch);
    let (mut num_steps, start) = (0_u64, Instant::now());
    while start.elapsed() < budget {
        run(&mut venv, batch);
        num_steps += batch * n as u64;
    }
    num_steps as f64 / start.elapsed().as_secs_f64()
}

fn report<E: Env>(name: &str, make: impl Fn(u64) -> E, budget: Duration) {
    let single = single_env_steps_per_s(make(0), budget);
    println!("{name}: 1 env, 1 thread: {single:>12.0} steps/s");
    println!("{name}: VecEnv   N | 1 thread steps/s | 2 threads steps/s | speed-up");
    for n in [1, 8, 64, 256] {
        let one = vec_env_steps_per_s((0..n).map(&make).collect(), 1, budget);
        let two = vec_env_steps_per_s((0..n).map(&make).collect(), 2, budget);
        println!(
            "{name}: VecEnv {n:>3} | {one:>16.0} | {two:>17.0} | {:>7.2}x",
            two / one
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter on the env name
    // (`cargo bench -p lepton-env --bench throughput -- cloud`).
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let seconds = std::env::var("LEPTON_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let budget = Duration::from_secs_f64(seconds);
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if wanted("cartpole") {
        report("cartpole", CartPole::v1, budget);
    }
    for name in ["deeprm", "cloud"] {
        if wanted(name) {
            let scenario = load_named(name).unwrap_or_else(|e| panic!("{e}"));
            report(
                name,
                |seed| scenario.clone().with_seed(seed).build(),
                budget,
            );
        }
    }
}
