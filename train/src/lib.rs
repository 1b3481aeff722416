//! # lepton-train
//!
//! The training CLI's library. From the bottom up (each module imports only those above it):
//! * [`config`] — TOML → `--set` → strict serde → one validation step;
//! * [`run`] — the run vocabulary: [`run::RunOptions`], [`run::Outcome`], [`run::RunSummary`],
//!   [`run::TrainError`] and the exit codes;
//! * [`envs`] — env construction with restorable episode streams; [`tensorboard`] — event files;
//! * [`evaluation`] — greedy evaluation on held-out seeds;
//! * `session` — opening a run, its logs, episode bookkeeping, stop requests, `summary.json`;
//! * `checkpointing` — the one resume path and the one evaluate-and-checkpoint step;
//! * [`imitation`] — the imitation warm start's demonstrations, cloning and KL prior;
//! * [`ppo_loop`], [`dqn_loop`] and [`es_loop`] — the three algorithms, each read top to
//!   bottom;
//! * [`trainer`] — [`trainer::run`] sends a config to its algorithm's loop;
//! * [`export`] — a checkpoint as a TorchScript file, built by `python/lepton_policy.py` and
//!   checked against lepton's greedy actions;
//! * [`search`] — hyperparameter search (genetic algorithm or population-based training), every
//!   trial trained by [`trainer::run`].
//!
//! `src/main.rs` is the thin command-line layer over [`trainer::run`], [`search::run`] and
//! [`export::export`].
//!
//! ```no_run
//! use std::sync::{Arc, atomic::AtomicBool};
//! use lepton_train::{config, run, trainer};
//! let table = config::read_table("configs/ppo_cartpole.toml".as_ref()).unwrap();
//! let cfg = config::TrainConfig::from_table(table, "configs/ppo_cartpole.toml").unwrap();
//! let options = run::RunOptions {
//!     run_dir: "runs/example".into(),
//!     resume: false,
//!     stop_at_step: None,
//!     progress: true,
//!     interrupt: Arc::new(AtomicBool::new(false)),
//! };
//! let summary = trainer::run(&cfg, &options).unwrap();
//! println!("mean return {:?}", summary.mean_return);
//! ```

mod checkpointing;
pub mod config;
pub mod dqn_loop;
pub mod envs;
pub mod es_loop;
pub mod evaluation;
pub mod export;
pub mod imitation;
pub mod ppo_loop;
pub mod run;
pub mod search;
mod session;
pub mod tensorboard;
pub mod trainer;
