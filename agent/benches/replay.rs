//! Replay throughput: inserts, batch-256 samples and batch-256 priority updates per
//! second on a 1M-transition buffer, prioritized and uniform, next to the cost of the network
//! update those samples feed (CleanRL's CartPole Q-network, 4 → 120 → 84 → 2, on the CPU).
//!
//! `cargo bench -p lepton-agent --bench replay` (set `LEPTON_BENCH_SECONDS` to change the
//! time spent per measurement, 1 s by default). Numbers go in BENCHMARKS.md with the command.

use std::hint::black_box;
use std::time::{Duration, Instant};

use lepton_agent::dqn::{self, DqnConfig, QNetwork};
use lepton_agent::networks::{Activation, Arch, NetworkConfig};
use lepton_agent::optim::Adam;
use lepton_agent::replay::{ReplayBuffer, ReplayConfig, SampleBatch, StepRecord};
use lepton_env::ObsLayout;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CAPACITY: usize = 1_000_000;
const BATCH: usize = 256;

/// Calls `f` in growing rounds until `budget` has passed; returns calls per second.
fn per_second(budget: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0u64;
    let mut round = 1u64;
    while start.elapsed() < budget {
        for _ in 0..round {
            f();
        }
        calls += round;
        round = (round * 2).min(1 << 16);
    }
    calls as f64 / start.elapsed().as_secs_f64()
}

fn row(what: &str, per_s: f64, unit: &str) {
    println!(
        "{what:<44} {per_s:>14.0} {unit}/s {:>10.2} µs each",
        1e6 / per_s
    );
}

fn bench_buffer(prioritized: bool, obs_dim: usize, budget: Duration) {
    let num_actions = 2;
    let config = ReplayConfig {
        capacity: CAPACITY,
        prioritized,
        n_step: 3,
        ..ReplayConfig::default()
    };
    let mut buffer = ReplayBuffer::new(&config, 0.99, obs_dim, num_actions, 1, 0);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let obs: Vec<f32> = (0..obs_dim).map(|i| i as f32).collect();
    let mask = vec![true; num_actions];
    let mut t = 0u64;
    let mut push = |buffer: &mut ReplayBuffer| {
        t += 1;
        buffer.push(
            0,
            &StepRecord {
                obs: &obs,
                action: (t % 2) as usize,
                reward: 1.0,
                next_obs: &obs,
                next_mask: &mask,
                terminated: t.is_multiple_of(200),
                truncated: t.is_multiple_of(501),
            },
        );
    };
    let kind = if prioritized {
        "prioritized"
    } else {
        "uniform"
    };
    // Fill once, timing it: this is the insert rate into a buffer that is filling, then full.
    let start = Instant::now();
    while buffer.len() < CAPACITY {
        push(&mut buffer);
    }
    let fill_s = start.elapsed().as_secs_f64();
    row(
        &format!("{kind} obs_dim {obs_dim}: insert (fill 1M)"),
        buffer.num_added() as f64 / fill_s,
        "transitions",
    );
    row(
        &format!("{kind} obs_dim {obs_dim}: insert (full)"),
        per_second(budget, || push(&mut buffer)),
        "transitions",
    );
    if prioritized {
        // Spread the priorities as learning would.
        let indices: Vec<usize> = (0..CAPACITY).collect();
        let errors: Vec<f32> = (0..CAPACITY).map(|_| rng.random::<f32>() * 10.0).collect();
        buffer.update_priorities(&indices, &errors);
    }
    let mut batch = SampleBatch::default();
    row(
        &format!("{kind} obs_dim {obs_dim}: sample batch {BATCH}"),
        per_second(budget, || {
            buffer.sample(BATCH, 0.5, &mut batch);
            black_box(&batch);
        }),
        "batches",
    );
    if prioritized {
        let errors: Vec<f32> = (0..BATCH).map(|_| rng.random::<f32>()).collect();
        buffer.sample(BATCH, 0.5, &mut batch);
        let indices = batch.indices.clone();
        row(
            &format!("{kind} obs_dim {obs_dim}: priority update batch {BATCH}"),
            per_second(budget, || buffer.update_priorities(&indices, &errors)),
            "batches",
        );
    }
}

fn bench_network_update(budget: Duration) {
    tch::manual_seed(0);
    lepton_agent::device::set_torch_threads(1);
    let network = NetworkConfig {
        arch: Arch::Mlp,
        hidden: vec![120, 84],
        activation: Activation::Relu,
        shared_trunk: true,
        ..NetworkConfig::default()
    };
    let layout = ObsLayout::flat(4);
    let actions = lepton_env::ActionLayout::plain(2);
    let q_network = || QNetwork::new(&network, false, layout, &actions, tch::Device::Cpu).unwrap();
    let (online, target) = (q_network(), q_network());
    let config = DqnConfig::default();
    let mut adam = Adam::new(online.policy().named_parameters(), config.adam_eps);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let batch = SampleBatch {
        indices: (0..BATCH).collect(),
        weights: vec![1.0; BATCH],
        obs: (0..BATCH * 4).map(|_| rng.random::<f32>()).collect(),
        actions: (0..BATCH).map(|i| (i % 2) as i64).collect(),
        returns: vec![1.0; BATCH],
        discounts: vec![0.99; BATCH],
        next_obs: (0..BATCH * 4).map(|_| rng.random::<f32>()).collect(),
        next_masks: vec![true; BATCH * 2],
    };
    row(
        &format!("DQN update, CartPole MLP, batch {BATCH}, CPU 1 thread"),
        per_second(budget, || {
            black_box(dqn::update(&config, &online, &target, &mut adam, &batch));
        }),
        "updates",
    );
}

fn main() {
    let seconds: f64 = std::env::var("LEPTON_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let budget = Duration::from_secs_f64(seconds);
    println!("replay buffer capacity {CAPACITY}, n_step 3, {seconds} s per measurement");
    for obs_dim in [4, 128] {
        bench_buffer(true, obs_dim, budget);
        bench_buffer(false, obs_dim, budget);
    }
    bench_network_update(budget);
}
