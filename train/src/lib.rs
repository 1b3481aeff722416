//! # lepton-train
//!
//! The training CLI's library: config resolution ([`config`]), env construction with
//! restorable episode streams ([`envs`]), TensorBoard logging ([`tensorboard`]), the PPO loop
//! ([`trainer`]) and its DQN sibling ([`dqn_loop`], chosen by `algo = "dqn"`). `src/main.rs` is
//! the thin command-line layer over [`trainer::run`] and, for `lepton-train search`,
//! over the hyperparameter search ([`search`]: genetic algorithm or population-based training).
//!
//! ```no_run
//! use std::sync::{Arc, atomic::AtomicBool};
//! use lepton_train::{config, trainer};
//! let table = config::read_table("configs/ppo_cartpole.toml".as_ref()).unwrap();
//! let cfg = config::TrainConfig::from_table(table, "configs/ppo_cartpole.toml").unwrap();
//! let options = trainer::RunOptions {
//!     run_dir: "runs/example".into(),
//!     resume: false,
//!     stop_at_step: None,
//!     progress: true,
//!     interrupt: Arc::new(AtomicBool::new(false)),
//! };
//! let summary = trainer::run(&cfg, &options).unwrap();
//! println!("mean return {:?}", summary.mean_return);
//! ```

pub mod config;
pub mod dqn_loop;
pub mod envs;
pub mod search;
mod session;
pub mod tensorboard;
pub mod trainer;
