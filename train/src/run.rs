//! The vocabulary of a training run, shared by the loops, the router, the search and the CLI:
//! how to run ([`RunOptions`]), how a run ended ([`Outcome`], [`RunSummary`]) or failed
//! ([`TrainError`]), and the process exit code of each.
//!
//! Exit codes of `lepton-train`:
//! * 0 — training finished, or stopped at `--stop-at-step` (resumable);
//! * 1 — runtime error (IO, env failure, a checkpoint that cannot be written);
//! * 2 — bad command line or config, or a refused `--resume` (the message names the key or file);
//! * 3 — training diverged (non-finite loss); the last good checkpoint is kept and named;
//! * 130 — interrupted by Ctrl-C after saving a resumable checkpoint.
//!
//! This module is a leaf: it imports nothing else from the crate but [`crate::config`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use lepton_agent::checkpoint::CheckpointError;
use lepton_agent::networks::NetworkError;
use lepton_agent::ppo::UpdateStats;
use lepton_agent::replay::ReplayError;
use lepton_env::{VecEnvBuildError, VecEnvError};

use crate::config::ConfigError;

/// Episodes in the running mean shown by the progress bar and recorded in `summary.json`.
pub const RETURN_WINDOW: usize = 20;

/// libtorch's thread counts are process-wide and can be set only once: the first run (or the
/// search) sets them.
pub(crate) static TORCH_THREADS: std::sync::Once = std::sync::Once::new();

/// How to run besides the config.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// `runs/<name>`: config, event files, `checkpoints/`, `summary.json`.
    pub run_dir: PathBuf,
    /// Continue from the newest periodic checkpoint in `run_dir/checkpoints`.
    pub resume: bool,
    /// Stop with a resumable checkpoint once this many env steps are done (as if interrupted).
    pub stop_at_step: Option<u64>,
    /// Show a progress bar (when stderr is a terminal); otherwise log lines.
    pub progress: bool,
    /// Set (e.g. by a Ctrl-C handler) to stop after the current iteration, with a checkpoint.
    pub interrupt: Arc<AtomicBool>,
}

/// How a run ended without error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// `stop_at_step` reached; resumable.
    Stopped,
    /// Interrupted (Ctrl-C); resumable.
    Interrupted,
}

impl Outcome {
    /// The process exit code: 0, or 130 when interrupted.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Finished | Self::Stopped => 0,
            Self::Interrupted => 130,
        }
    }
}

/// What a run did.
#[derive(Debug)]
pub struct RunSummary {
    pub outcome: Outcome,
    pub global_step: u64,
    /// One entry per PPO update of this session, in order (empty for DQN runs, whose losses go
    /// to TensorBoard).
    pub updates: Vec<UpdateStats>,
    /// The metadata file of the last checkpoint written.
    pub last_checkpoint: PathBuf,
    pub mean_return: Option<f64>,
}

/// Why a run failed; [`TrainError::exit_code`] says which exit code each cause gets.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    // Bad command line or config (exit code 2).
    /// A config problem, or an env config whose scenario cannot be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{} already holds a run; pick another --run-name, delete it, or --resume {}", .0.display(), .0.display())]
    RunExists(PathBuf),
    #[error(
        "--run-name {0:?}: a run name is one directory name inside --runs-dir (no '/', not empty, not '.' or '..')"
    )]
    RunName(String),
    #[error("run.device: {0}")]
    Device(String),
    /// `train.init_from` names no checkpoint, or one that does not fit this run.
    #[error("train.init_from {}: {reason}", path.display())]
    InitFrom { path: PathBuf, reason: String },
    #[error(transparent)]
    Network(#[from] NetworkError),

    // A refused resume (exit code 2).
    #[error("cannot resume from {}: {source}", run_dir.display())]
    NoCheckpoint {
        run_dir: PathBuf,
        source: CheckpointError,
    },
    /// A checkpoint file that cannot be read or does not fit the networks.
    #[error("cannot resume: {0}")]
    ResumeCheckpoint(#[source] CheckpointError),
    #[error("cannot resume {}: unreadable config: {source}", checkpoint.display())]
    SavedConfig {
        checkpoint: PathBuf,
        source: toml::de::Error,
    },
    #[error("cannot resume {}: bad trainer state: {source}", checkpoint.display())]
    TrainerState {
        checkpoint: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot resume: {}: {source}", path.display())]
    ReadTensors {
        path: PathBuf,
        source: tch::TchError,
    },
    #[error("cannot resume: {}: {source}", path.display())]
    ReadReplay { path: PathBuf, source: ReplayError },
    /// The checkpoint does not fit this config or env (the reason names the keys or sizes).
    #[error("cannot resume {}: {reason}", checkpoint.display())]
    Resume { checkpoint: PathBuf, reason: String },

    // Training diverged (exit code 3).
    #[error("training diverged at env step {step}: {reason}\n  last good checkpoint: {}", last_checkpoint.as_ref().map_or("none yet".into(), |p| p.display().to_string()))]
    Diverged {
        step: u64,
        reason: String,
        last_checkpoint: Option<PathBuf>,
    },

    // Runtime errors (exit code 1).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    WriteTensors {
        path: PathBuf,
        source: tch::TchError,
    },
    #[error("cannot build the envs: {0}")]
    BuildEnvs(#[from] VecEnvBuildError),
    #[error("env step failed: {0}")]
    EnvStep(#[from] VecEnvError),
    #[error("eval env step failed: {0}")]
    EvalEnvStep(#[source] VecEnvError),
    #[error("reference heuristics: {0}")]
    Heuristics(String),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("imitation warm start: {0}")]
    Imitation(String),
    #[error("no iteration ran, so no checkpoint was written")]
    NoCheckpointWritten,
}

impl TrainError {
    /// The process exit code: 2 for a bad command line or config or a refused resume, 3 for a
    /// diverged run, 1 for anything else (see the module docs).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_)
            | Self::RunExists(_)
            | Self::RunName(_)
            | Self::Device(_)
            | Self::InitFrom { .. }
            | Self::Network(_)
            | Self::NoCheckpoint { .. }
            | Self::ResumeCheckpoint(_)
            | Self::SavedConfig { .. }
            | Self::TrainerState { .. }
            | Self::ReadTensors { .. }
            | Self::ReadReplay { .. }
            | Self::Resume { .. } => 2,
            Self::Diverged { .. } => 3,
            Self::Checkpoint(_)
            | Self::Io { .. }
            | Self::WriteTensors { .. }
            | Self::BuildEnvs(_)
            | Self::EnvStep(_)
            | Self::EvalEnvStep(_)
            | Self::Heuristics(_)
            | Self::Torch(_)
            | Self::Imitation(_)
            | Self::NoCheckpointWritten => 1,
        }
    }

    /// An IO error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        let refused = TrainError::Resume {
            checkpoint: "runs/a/checkpoints/step_0000000512.json".into(),
            reason: "the config differs from the checkpoint's in ppo.lr".into(),
        };
        assert_eq!(refused.exit_code(), 2);
        assert!(refused.to_string().contains("step_0000000512.json"));
        assert_eq!(TrainError::RunExists("runs/a".into()).exit_code(), 2);
        assert_eq!(TrainError::Device("cuda:9".into()).exit_code(), 2);
        let diverged = TrainError::Diverged {
            step: 64,
            reason: "non-finite loss".into(),
            last_checkpoint: None,
        };
        assert_eq!(diverged.exit_code(), 3);
        assert_eq!(TrainError::NoCheckpointWritten.exit_code(), 1);
        let io = TrainError::io("runs/a/config.toml")(std::io::ErrorKind::PermissionDenied.into());
        assert_eq!(io.exit_code(), 1);
        assert!(io.to_string().contains("runs/a/config.toml"), "{io}");
        assert_eq!(Outcome::Finished.exit_code(), 0);
        assert_eq!(Outcome::Stopped.exit_code(), 0);
        assert_eq!(Outcome::Interrupted.exit_code(), 130);
    }
}
