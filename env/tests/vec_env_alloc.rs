//! Stepping a VecEnv allocates nothing in steady state: a counting global allocator counts every
//! heap allocation of the process (all threads) across thousands of steps after a warm-up,
//! autoresets and finished-episode bookkeeping included.
//!
//! The counter is process-wide, so this file runs without libtest's harness (`harness = false`
//! in Cargo.toml): the harness's own threads allocate while a test runs.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use lepton_env::{
    BoxSpace, CartPole, Discrete, Env, EnvError, EpisodeMetrics, EpisodeStatistics, ObsLayout,
    Transition, VecEnv,
};

struct CountingAllocator;

static NUM_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        NUM_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        NUM_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        NUM_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// A scheduling-like env whose episodes end every 7 steps with metrics that own a `Vec`,
/// so that the VecEnv's metrics copy is exercised.
struct WithMetrics {
    t: usize,
    space: BoxSpace,
    metrics: EpisodeMetrics,
}

impl Env for WithMetrics {
    fn observation_space(&self) -> &BoxSpace {
        &self.space
    }
    fn action_space(&self) -> Discrete {
        Discrete { n: 2 }
    }
    fn obs_layout(&self) -> ObsLayout {
        ObsLayout::flat(3)
    }
    fn reset(&mut self, _seed: Option<u64>, obs: &mut [f32]) {
        self.t = 0;
        obs.fill(0.0);
    }
    fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
        self.t += 1;
        obs.fill(self.t as f32);
        self.metrics.num_tasks = self.t;
        self.metrics.utilization[action] = self.t as f64;
        Ok(Transition {
            reward: 1.0,
            terminated: self.t == 7,
            truncated: false,
        })
    }
    fn action_mask(&self, mask: &mut [bool]) {
        mask.fill(true);
    }
    fn episode_metrics(&self) -> Option<&EpisodeMetrics> {
        (self.t == 7).then_some(&self.metrics)
    }
}

/// Allocations made by `num_steps` steps of `venv` after `warmup` steps.
fn allocations_while_stepping<E: Env>(
    venv: &mut VecEnv<E>,
    warmup: usize,
    num_steps: usize,
) -> usize {
    let n = venv.num_envs();
    let mut actions = vec![0; n];
    venv.reset(Some(0));
    let mut step = |venv: &mut VecEnv<E>, k: usize| {
        // A legal action picked by a fixed pseudo-random rule, without allocating.
        let num_actions = venv.num_actions();
        for (i, a) in actions.iter_mut().enumerate() {
            let mask = &venv.action_masks()[i * num_actions..(i + 1) * num_actions];
            let num_legal = mask.iter().filter(|&&m| m).count();
            let pick = (k * 31 + i * 17) % 3 % num_legal;
            *a = mask
                .iter()
                .enumerate()
                .filter(|(_, m)| **m)
                .nth(pick)
                .unwrap()
                .0;
        }
        venv.step(&actions).unwrap();
        std::hint::black_box(venv.finished_episodes().count());
    };
    for k in 0..warmup {
        step(venv, k);
    }
    let before = NUM_ALLOCATIONS.load(Ordering::SeqCst);
    for k in 0..num_steps {
        step(venv, k);
    }
    NUM_ALLOCATIONS.load(Ordering::SeqCst) - before
}

fn main() {
    const NUM_STEPS: usize = 20_000;
    let cartpoles = || {
        (0..8)
            .map(|i| EpisodeStatistics::new(CartPole::v1(i)))
            .collect::<Vec<_>>()
    };

    let mut sequential = VecEnv::new(cartpoles(), 1).unwrap();
    assert_eq!(
        allocations_while_stepping(&mut sequential, 100, NUM_STEPS),
        0,
        "sequential CartPole"
    );

    let schedulers = (0..8)
        .map(|_| WithMetrics {
            t: 0,
            space: BoxSpace::uniform(3, 0.0, 7.0),
            metrics: metrics(),
        })
        .collect();
    let mut sequential = VecEnv::new(schedulers, 1).unwrap();
    assert_eq!(
        allocations_while_stepping(&mut sequential, 100, NUM_STEPS),
        0,
        "sequential, with metrics"
    );

    for name in ["deeprm", "cloud"] {
        let scenario = lepton_env::scenario::load_named(name).unwrap();
        let envs = (0..4)
            .map(|i| scenario.clone().with_seed(i).build())
            .collect();
        let mut sequential = VecEnv::new(envs, 1).unwrap();
        let num_allocations = allocations_while_stepping(&mut sequential, 20_000, NUM_STEPS);
        assert_eq!(num_allocations, 0, "sequential {name}");
    }

    // Rayon's injector queue allocates one block per 63 jobs handed to the pool (one job per
    // step); nothing else may allocate, give or take a one-time registration of a worker
    // thread that steals for the first time after the warm-up.
    let mut parallel = VecEnv::new(cartpoles(), 2).unwrap();
    let num_allocations = allocations_while_stepping(&mut parallel, 1000, NUM_STEPS);
    assert!(
        num_allocations <= NUM_STEPS / 63 + 4,
        "parallel: {num_allocations} allocations in {NUM_STEPS} steps"
    );
    println!(
        "vec_env_alloc: sequential 0 allocations, parallel {num_allocations} in {NUM_STEPS} steps: ok"
    );
}

fn metrics() -> EpisodeMetrics {
    EpisodeMetrics {
        utilization: vec![0.0; 2],
        ..Default::default()
    }
}
