//! CartPole and VecEnv throughput: env steps/s with random legal actions (uniform over the
//! action mask, drawn on the caller's thread), episodes reset as they end. "1 env" steps one
//! env directly; "VecEnv N" counts env steps (N per `VecEnv::step`) with `num_threads` 1 and 2.
//!
//! Run: `cargo bench -p lepton-env --bench throughput [-- <env>]` (env: cartpole, deeprm,
//! cloud, cartpole-soa); `LEPTON_BENCH_SECONDS` sets the seconds per measurement (default 1).
//!
//! `cartpole-soa` compares the structure-of-arrays [`CartPoleVec`] with a `VecEnv` of
//! `CartPole::v1` at 256 envs on one thread, both given the same actions (random bits, one
//! 64-bit draw per 64 envs, so the action source costs little next to the env), alternating
//! three times; it prints each measurement and the median ratio.
//!
//! Note: a reconstruction. The original of this file (written alongside `VecEnv`) was
//! overwritten by accident when `benches/env_throughput.rs` was added; this version follows
//! the interface and table that BENCHMARKS.md documents for it.

use lepton_env::{CartPole, CartPoleVec, Env, VecEnv, VectorEnv, scenario};
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

/// Fills `actions` with random bits, one 64-bit draw per 64 envs.
fn random_bits(actions: &mut [usize], rng: &mut ChaCha8Rng) {
    for chunk in actions.chunks_mut(64) {
        let bits: u64 = rng.random();
        for (k, a) in chunk.iter_mut().enumerate() {
            *a = ((bits >> k) & 1) as usize;
        }
    }
}

/// Steps/s of `step` (one call steps `num_envs` envs) with random-bit actions.
fn steps_per_s(num_envs: usize, budget: Duration, mut step: impl FnMut(&[usize])) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut actions = vec![0; num_envs];
    let (mut steps, start) = (0u64, Instant::now());
    while start.elapsed() < budget {
        for _ in 0..64 {
            random_bits(&mut actions, &mut rng);
            step(&actions);
            steps += num_envs as u64;
        }
    }
    steps as f64 / start.elapsed().as_secs_f64()
}

fn cartpole_soa(budget: Duration) {
    const N: usize = 256;
    let mut ratios = Vec::new();
    for round in 0..3 {
        let mut soa = CartPoleVec::new(N);
        soa.reset(Some(0));
        let fast = steps_per_s(N, budget, |a| soa.step(a).expect("actions 0 or 1"));
        let mut venv = VecEnv::new((0..N as u64).map(CartPole::v1).collect(), 1).expect("vec env");
        venv.reset(Some(0));
        let slow = steps_per_s(N, budget, |a| venv.step(a).expect("actions 0 or 1"));
        println!(
            "cartpole-soa round {round}: CartPoleVec {N}: {fast:>12.0}, VecEnv {N}: {slow:>12.0} steps/s ({:.2}x)",
            fast / slow
        );
        ratios.push(fast / slow);
    }
    ratios.sort_by(f64::total_cmp);
    println!("cartpole-soa: median ratio {:.2}x", ratios[1]);
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
    if wanted("cartpole-soa") {
        cartpole_soa(budget);
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
