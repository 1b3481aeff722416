//! Measures how libtorch's intra-op thread count affects the two network workloads of PPO on a
//! small machine: per-step inference on a batch of envs, and a minibatch update.
//!
//! `cargo run --release -p lepton-agent --example torch_threads`
//! The figures behind the default thread setting are in BENCHMARKS.md.

use std::time::Instant;
use tch::{Device, Kind, Tensor, nn, nn::Module, nn::OptimizerConfig};

fn mlp(vs: &nn::Path, obs_dim: i64, hidden: i64, out: i64) -> nn::Sequential {
    nn::seq()
        .add(nn::linear(vs / "l1", obs_dim, hidden, Default::default()))
        .add_fn(|x| x.tanh())
        .add(nn::linear(vs / "l2", hidden, hidden, Default::default()))
        .add_fn(|x| x.tanh())
        .add(nn::linear(vs / "l3", hidden, out, Default::default()))
}

/// Microseconds per call of `f`, median of 5 repeats of `iters` calls.
fn time_us(iters: usize, mut f: impl FnMut()) -> f64 {
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_secs_f64() * 1e6 / iters as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[2]
}

fn main() {
    tch::manual_seed(0);
    tch::set_num_interop_threads(1);
    let (obs_dim, hidden, actions) = (512, 64, 321);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = mlp(&vs.root(), obs_dim, hidden, actions);
    let mut opt = nn::Adam::default().build(&vs, 2.5e-4).unwrap();
    println!("MLP {obs_dim}-{hidden}-{hidden}-{actions}, CPU, interop threads 1");
    println!(
        "{:>8} {:>22} {:>22} {:>26}",
        "threads", "inference 8 obs (us)", "inference 64 obs (us)", "update minibatch 256 (us)"
    );
    for threads in [1, 2] {
        tch::set_num_threads(threads);
        let infer = |batch: i64| {
            let x = Tensor::randn([batch, obs_dim], (Kind::Float, Device::Cpu));
            time_us(2000, || {
                let _ = tch::no_grad(|| net.forward(&x));
            })
        };
        let x = Tensor::randn([256, obs_dim], (Kind::Float, Device::Cpu));
        let update = time_us(200, || {
            let loss = net.forward(&x).pow_tensor_scalar(2).mean(Kind::Float);
            opt.backward_step(&loss);
        });
        println!(
            "{threads:>8} {:>22.1} {:>22.1} {:>26.1}",
            infer(8),
            infer(64),
            update
        );
    }
}
