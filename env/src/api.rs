//! The Gymnasium-style contract every environment in this crate implements.
//!
//! Rust-side differences from Gymnasium, all for speed and zero allocation per step:
//! observations and masks are written into caller-owned buffers instead of being returned,
//! and the `info` dict is replaced by typed accessors ([`Env::episode_metrics`]).

use crate::metrics::EpisodeMetrics;
use crate::spaces::{BoxSpace, Discrete};

/// What one [`Env::step`] returns besides the observation (written into the caller's buffer).
///
/// `terminated` and `truncated` are Gymnasium's: terminated means the episode reached a
/// terminal state of the MDP (do not bootstrap); truncated means it was cut off by a time or
/// decision limit (bootstrap from the final observation).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Transition {
    pub reward: f32,
    pub terminated: bool,
    pub truncated: bool,
}

impl Transition {
    pub fn episode_over(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// How the flat observation vector is laid out: `global` features first, then
/// `server_rows × server_features`, then `slot_rows × slot_features`, row-major.
/// Networks that treat servers and slots as sets read the rows with shared weights.
/// Envs with no set structure (CartPole) have only a global block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObsLayout {
    pub global: usize,
    pub server_rows: usize,
    pub server_features: usize,
    pub slot_rows: usize,
    pub slot_features: usize,
}

impl ObsLayout {
    pub fn flat(dim: usize) -> Self {
        Self {
            global: dim,
            ..Self::default()
        }
    }

    pub fn dim(&self) -> usize {
        self.global + self.server_rows * self.server_features + self.slot_rows * self.slot_features
    }
}

/// Why a step was refused. The env's state is unchanged when a step returns an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("action {action} is outside the action space Discrete({n})")]
    OutOfRange { action: usize, n: usize },
    #[error("action {action} is illegal in the current state (masked out): {reason}")]
    Illegal { action: usize, reason: &'static str },
    #[error("step called after the episode ended; call reset first")]
    EpisodeOver,
}

/// A Gymnasium-style environment with a discrete action space and an action mask.
pub trait Env: Send {
    fn observation_space(&self) -> &BoxSpace;
    fn action_space(&self) -> Discrete;
    fn obs_layout(&self) -> ObsLayout;

    /// Starts a new episode and writes its first observation into `obs`.
    /// `Some(seed)` reseeds every random stream of the env from `seed` (same seed, same
    /// episode); `None` continues the streams, so consecutive episodes differ.
    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]);

    /// Applies `action` and writes the next observation into `obs`.
    fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError>;

    /// Writes the legal-action mask into `mask` (`true` = legal); at least one entry is
    /// always legal. Envs without invalid actions fill it with `true`.
    fn action_mask(&self, mask: &mut [bool]);

    /// Scheduling metrics of the episode that just ended (`None` while it runs, and for envs
    /// that are not schedulers, such as CartPole).
    fn episode_metrics(&self) -> Option<&EpisodeMetrics> {
        None
    }
}
