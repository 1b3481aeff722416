//! One episode of a scenario as JSON lines, for comparing another front end (the Python
//! package's tests) with the Rust API step for step.
//!
//! Run: `cargo run -p lepton-env --example trajectory -- SCENARIO SEED MAX_STEPS`
//!
//! Line 0 is the reset: `{"obs": [...], "mask": [...]}`; each later line a step:
//! `{"action": a, "reward": r, "terminated": t, "truncated": t, "obs": [...], "mask": [...]}`.
//! The action at step `k` is the `(7k mod L)`-th of the `L` legal actions, so the episode
//! visits many kinds of decision without any randomness of its own. Numbers print in Rust's
//! shortest round-trip form: parsed back as `f32` they are bit-identical.

use lepton_env::{Env, scenario};
use std::fmt::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, seed, max_steps] = args.as_slice() else {
        eprintln!("usage: trajectory SCENARIO SEED MAX_STEPS");
        std::process::exit(2);
    };
    let (Ok(seed), Ok(max_steps)) = (seed.parse::<u64>(), max_steps.parse::<usize>()) else {
        eprintln!("SEED and MAX_STEPS must be non-negative integers");
        std::process::exit(2);
    };
    let mut env = scenario::load_named(name)
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2);
        })
        .build();
    let mut obs = vec![0.0; env.observation_space().dim()];
    let mut mask = vec![false; env.action_space().n];
    env.reset(Some(seed), &mut obs);
    env.action_mask(&mut mask);
    println!("{{{}}}", state_json(&obs, &mask));
    for k in 0..max_steps {
        let legal: Vec<usize> = (0..mask.len()).filter(|&a| mask[a]).collect();
        let action = legal[(7 * k) % legal.len()];
        let step = env.step(action, &mut obs).expect("a legal action");
        env.action_mask(&mut mask);
        println!(
            "{{\"action\": {action}, \"reward\": {}, \"terminated\": {}, \"truncated\": {}, {}}}",
            step.reward,
            step.terminated,
            step.truncated,
            state_json(&obs, &mask)
        );
        if step.episode_over() {
            break;
        }
    }
}

fn state_json(obs: &[f32], mask: &[bool]) -> String {
    let mut out = String::from("\"obs\": [");
    for (i, x) in obs.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        write!(out, "{sep}{x}").expect("writing to a String");
    }
    out.push_str("], \"mask\": [");
    for (i, m) in mask.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        write!(out, "{sep}{m}").expect("writing to a String");
    }
    out.push(']');
    out
}
