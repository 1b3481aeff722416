//! Mean metrics of a few heuristics on a shipped scenario, over seeds 0..N.
//!
//! Run: `cargo run --release -p lepton-env --example baselines -- cloud 10`

use lepton_env::scenario;
use lepton_env::schedulers::{by_name, run_episode};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "cloud".into());
    let seeds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let mut env = scenario::load_named(&name)
        .unwrap_or_else(|e| panic!("{e}"))
        .build();
    println!("{name}, seeds 0..{seeds}: mean over episodes");
    for policy in ["random", "fcfs", "sjf", "best_fit", "tetris"] {
        let mut scheduler = by_name(policy).expect("registered scheduler");
        let (mut sd, mut bsd, mut wait, mut util, mut kwh, mut fails) =
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for seed in 0..seeds {
            let m = run_episode(scheduler.as_mut(), &mut env, seed).expect("episode");
            sd += m.mean_slowdown;
            bsd += m.mean_bounded_slowdown;
            wait += m.mean_wait;
            util += m.utilization.iter().copied().fold(0.0, f64::max);
            kwh += m.energy_kwh;
            fails += m.num_failures as f64;
        }
        let n = seeds as f64;
        println!(
            "{policy:>9}: slowdown {:7.2}  bounded {:7.2}  wait {:8.1} s  max util {:.2}  energy {:6.1} kWh  failures {:.1}",
            sd / n,
            bsd / n,
            wait / n,
            util / n,
            kwh / n,
            fails / n
        );
    }
}
