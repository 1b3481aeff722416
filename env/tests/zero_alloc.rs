//! Stepping (and resetting, as vector envs do inside `step`) allocates nothing once warmed
//! up, on `cloud` and `deeprm`. A counting global allocator proves it; it lives alone in
//! this test binary, and counts per thread so the harness's own threads do not interfere.
#![allow(unsafe_code)]

use lepton_env::Env;
use lepton_env::scenario;
use rand::{Rng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with` fails only during thread teardown; not counting then is harmless.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards to `System` unchanged; counting touches no allocator state.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Random legal actions for `steps` steps with autoreset; returns allocations during them.
fn allocations_while_stepping(name: &str, warmup_steps: usize, steps: usize) -> u64 {
    let mut env = scenario::load_named(name).unwrap().build();
    let n = env.action_space().n;
    let mut obs = vec![0.0; env.obs_layout().dim()];
    let mut mask = vec![false; n];
    let mut legal = Vec::with_capacity(n);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    env.reset(Some(1), &mut obs);
    let mut run = |env: &mut lepton_env::ScenarioEnv, steps: usize| {
        for _ in 0..steps {
            env.action_mask(&mut mask);
            legal.clear();
            legal.extend((0..n).filter(|&a| mask[a]));
            let action = legal[rng.random_range(0..legal.len())];
            if env.step(action, &mut obs).unwrap().episode_over() {
                std::hint::black_box(env.episode_metrics());
                env.reset(None, &mut obs);
            }
        }
    };
    run(&mut env, warmup_steps);
    let before = allocations();
    run(&mut env, steps);
    allocations() - before
}

#[test]
fn no_allocation_per_step_after_warmup() {
    // Warm-up spans several episodes so every buffer reaches its steady size.
    assert_eq!(
        allocations_while_stepping("deeprm", 20_000, 50_000),
        0,
        "deeprm allocated"
    );
    assert_eq!(
        allocations_while_stepping("cloud", 20_000, 20_000),
        0,
        "cloud allocated"
    );
    // Failures, health readings, running rows, preempt and migrate actions; its event heap
    // and queue reach their steady size later than cloud's.
    assert_eq!(
        allocations_while_stepping("cloud-ops", 100_000, 20_000),
        0,
        "cloud-ops allocated"
    );
}
