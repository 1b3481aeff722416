//! The entry point of training: [`run`] sends a resolved config to its algorithm's loop —
//! [`crate::ppo_loop`] for `algo = "ppo"`, [`crate::dqn_loop`] for `algo = "dqn"`,
//! [`crate::es_loop`] for `algo = "es"`. The CLI,
//! the hyperparameter search and the tests train through here and nowhere else.

use std::path::{Path, PathBuf};

use crate::config::{Algo, TrainConfig};
use crate::run::{RunOptions, RunSummary, TrainError};
use crate::{dqn_loop, es_loop, ppo_loop};

/// Trains with `config` (already resolved and validated) in `options.run_dir`.
pub fn run(config: &TrainConfig, options: &RunOptions) -> Result<RunSummary, TrainError> {
    match config.algo {
        Algo::Ppo => ppo_loop::run(config, options),
        Algo::Dqn => dqn_loop::run(config, options),
        Algo::Es => es_loop::run(config, options),
    }
}

/// The run directory for `name` under `runs_dir`.
pub fn run_dir(runs_dir: &Path, name: &str) -> PathBuf {
    runs_dir.join(name)
}
