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
/// `server_rows × server_features`, then `slot_rows × slot_features`, then
/// `running_rows × running_features` (running tasks, with `[preemption]`), row-major.
/// Networks that treat servers and slots as sets read the rows with shared weights.
/// Envs with no set structure (CartPole) have only a global block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObsLayout {
    pub global: usize,
    pub server_rows: usize,
    pub server_features: usize,
    pub slot_rows: usize,
    pub slot_features: usize,
    pub running_rows: usize,
    pub running_features: usize,
    /// Resources `R` when the rows have the cluster's resource columns (0 otherwise): a
    /// server row starts with its free units over its capacity (`R` columns), then its
    /// capacity over the largest server's (`R`); a slot row starts with a presence flag,
    /// then the task's demand over the largest server's capacity (`R`). Networks use them to
    /// form (slot, server) features such as demand·free.
    pub resources: usize,
}

impl ObsLayout {
    pub fn flat(dim: usize) -> Self {
        Self {
            global: dim,
            ..Self::default()
        }
    }

    pub fn dim(&self) -> usize {
        self.global
            + self.server_rows * self.server_features
            + self.slot_rows * self.slot_features
            + self.running_rows * self.running_features
    }

    /// Whether a policy trained on `trained` reads this layout: the same sizes, and the same
    /// resource columns unless `trained` records none (a checkpoint written before they were
    /// recorded).
    pub fn reads_as(&self, trained: &ObsLayout) -> bool {
        let resources = if trained.resources == 0 {
            0
        } else {
            self.resources
        };
        ObsLayout { resources, ..*self } == *trained
    }

    /// [`ObsLayout::dim`], or `None` if it overflows (a layout read from a file).
    pub fn checked_dim(&self) -> Option<usize> {
        let rows = |r: usize, f: usize| r.checked_mul(f);
        self.global
            .checked_add(rows(self.server_rows, self.server_features)?)?
            .checked_add(rows(self.slot_rows, self.slot_features)?)?
            .checked_add(rows(self.running_rows, self.running_features)?)
    }
}

/// One contiguous block of a discrete action space, in the order the env numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionBlock {
    /// `slots × servers` actions: index `k · servers + n` (from the block's start) places the
    /// task of visible slot `k` on server `n`.
    Placements { slots: usize, servers: usize },
    /// One action per visible slot: the env places the slot's task by its own rule.
    Slots { slots: usize },
    /// The single "do nothing now" action.
    Wait,
    /// `n` actions with no structure the env describes (CartPole's push left/right).
    Plain { n: usize },
    /// One action per decision rule: index `k` carries out what rule `k` of
    /// [`ActionLayout::rules`] decides now (rule selection, `schedulers::RuleSelectionEnv`).
    Rules { n: usize },
    /// One action per running row: index `j` stops the task of running row `j` and requeues
    /// it (`[preemption]`).
    Preempt { rows: usize },
    /// `rows × servers` actions: index `j · servers + n` moves the task of running row `j`
    /// to server `n` (`[preemption]`).
    Migrate { rows: usize, servers: usize },
}

impl ActionBlock {
    /// How many action indices the block spans.
    pub fn len(&self) -> usize {
        match *self {
            Self::Placements { slots, servers } => slots * servers,
            Self::Migrate { rows, servers } => rows * servers,
            Self::Slots { slots } => slots,
            Self::Preempt { rows } => rows,
            Self::Wait => 1,
            Self::Plain { n } | Self::Rules { n } => n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What each index of a `Discrete` action space means: blocks laid end to end. Networks that
/// score actions from the entities they involve (a slot, a server) and greedy decoders read
/// it instead of guessing from sizes, which is ambiguous (one server: placements = slots).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActionLayout {
    pub blocks: Vec<ActionBlock>,
    /// The scheduler names behind a [`ActionBlock::Rules`] block, in action order (empty
    /// without one): what a checkpoint needs to act on the env the rules were chosen in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
}

impl ActionLayout {
    /// `n` unstructured actions.
    pub fn plain(n: usize) -> Self {
        Self {
            blocks: vec![ActionBlock::Plain { n }],
            rules: Vec::new(),
        }
    }

    /// `slots × servers` placements, then wait: the cluster env's placement mode.
    pub fn placements_then_wait(slots: usize, servers: usize) -> Self {
        Self {
            blocks: vec![
                ActionBlock::Placements { slots, servers },
                ActionBlock::Wait,
            ],
            rules: Vec::new(),
        }
    }

    /// One action per slot, then wait: slot mode and DeepRM's actions.
    pub fn slots_then_wait(slots: usize) -> Self {
        Self {
            blocks: vec![ActionBlock::Slots { slots }, ActionBlock::Wait],
            rules: Vec::new(),
        }
    }

    /// The size of the action space.
    pub fn num_actions(&self) -> usize {
        self.blocks.iter().map(ActionBlock::len).sum()
    }

    /// [`ActionLayout::num_actions`], or `None` if it overflows (a layout read from a file).
    pub fn checked_num_actions(&self) -> Option<usize> {
        self.blocks.iter().try_fold(0usize, |n, block| {
            let len = match *block {
                ActionBlock::Placements { slots, servers } => slots.checked_mul(servers)?,
                ActionBlock::Migrate { rows, servers } => rows.checked_mul(servers)?,
                other => other.len(),
            };
            n.checked_add(len)
        })
    }

    /// The first index of every block, beside the block.
    pub fn offsets(&self) -> impl Iterator<Item = (usize, ActionBlock)> + '_ {
        self.blocks.iter().scan(0, |start, &block| {
            let offset = *start;
            *start += block.len();
            Some((offset, block))
        })
    }

    /// The index of the wait action, if the layout has one.
    pub fn wait(&self) -> Option<usize> {
        self.offsets()
            .find(|(_, b)| *b == ActionBlock::Wait)
            .map(|(offset, _)| offset)
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
    #[error("task {index} cannot be chosen now: {reason}")]
    IllegalTask { index: u32, reason: &'static str },
}

/// A Gymnasium-style environment with a discrete action space and an action mask.
pub trait Env: Send {
    fn observation_space(&self) -> &BoxSpace;
    fn action_space(&self) -> Discrete;
    fn obs_layout(&self) -> ObsLayout;

    /// What each action index means (by default: `action_space().n` unstructured actions).
    /// Its [`ActionLayout::num_actions`] always equals `action_space().n`.
    fn action_layout(&self) -> ActionLayout {
        ActionLayout::plain(self.action_space().n)
    }

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

    /// The env's simulated time now (seconds for clusters, time steps for DeepRM), for
    /// comparing episodes of the same workload at the same moment; `None` for envs without a
    /// clock (CartPole), whose callers fall back to the decision index.
    fn clock(&self) -> Option<f64> {
        None
    }
}

/// A boxed env is an env (`Box<dyn Env>` included): every method forwards to the box's
/// content, the defaulted ones too, so callers need no forwarding newtype.
impl<E: Env + ?Sized> Env for Box<E> {
    fn observation_space(&self) -> &BoxSpace {
        (**self).observation_space()
    }
    fn action_space(&self) -> Discrete {
        (**self).action_space()
    }
    fn obs_layout(&self) -> ObsLayout {
        (**self).obs_layout()
    }
    fn action_layout(&self) -> ActionLayout {
        (**self).action_layout()
    }
    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        (**self).reset(seed, obs)
    }
    fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
        (**self).step(action, obs)
    }
    fn action_mask(&self, mask: &mut [bool]) {
        (**self).action_mask(mask)
    }
    fn episode_metrics(&self) -> Option<&EpisodeMetrics> {
        (**self).episode_metrics()
    }
    fn clock(&self) -> Option<f64> {
        (**self).clock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts down from 2 to 0; overrides both defaulted methods so that the forwarding of
    /// `Box<dyn Env>` is visible.
    struct Countdown {
        left: u32,
        space: BoxSpace,
        metrics: EpisodeMetrics,
    }

    impl Env for Countdown {
        fn observation_space(&self) -> &BoxSpace {
            &self.space
        }
        fn action_space(&self) -> Discrete {
            Discrete { n: 2 }
        }
        fn obs_layout(&self) -> ObsLayout {
            ObsLayout::flat(1)
        }
        fn action_layout(&self) -> ActionLayout {
            ActionLayout::slots_then_wait(1)
        }
        fn reset(&mut self, _seed: Option<u64>, obs: &mut [f32]) {
            self.left = 2;
            obs[0] = 1.0;
        }
        fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
            if action >= 2 {
                return Err(EnvError::OutOfRange { action, n: 2 });
            }
            self.left -= 1;
            obs[0] = self.left as f32 / 2.0;
            Ok(Transition {
                reward: 1.0,
                terminated: self.left == 0,
                truncated: false,
            })
        }
        fn action_mask(&self, mask: &mut [bool]) {
            mask.fill(true);
        }
        fn episode_metrics(&self) -> Option<&EpisodeMetrics> {
            (self.left == 0).then_some(&self.metrics)
        }
        fn clock(&self) -> Option<f64> {
            Some(f64::from(2 - self.left) * 10.0)
        }
    }

    #[test]
    fn a_boxed_dyn_env_steps_and_forwards_every_method() {
        let mut env: Box<dyn Env> = Box::new(Countdown {
            left: 0,
            space: BoxSpace::uniform(1, 0.0, 1.0),
            metrics: EpisodeMetrics::default(),
        });
        let mut obs = [0.0];
        let mut mask = [false; 2];
        env.reset(Some(0), &mut obs);
        assert_eq!(obs, [1.0]);
        assert_eq!(env.action_space().n, 2);
        assert_eq!(env.observation_space().dim(), 1);
        assert_eq!(env.obs_layout(), ObsLayout::flat(1));
        assert_eq!(env.action_layout().wait(), Some(1));
        env.action_mask(&mut mask);
        assert_eq!(mask, [true, true]);
        assert!(env.episode_metrics().is_none());
        assert_eq!(env.clock(), Some(0.0));
        assert!(!env.step(0, &mut obs).unwrap().episode_over());
        assert_eq!(env.clock(), Some(10.0));
        assert!(env.step(1, &mut obs).unwrap().terminated);
        assert_eq!(obs, [0.0]);
        assert!(env.episode_metrics().is_some());
        assert_eq!(
            env.step(2, &mut obs),
            Err(EnvError::OutOfRange { action: 2, n: 2 })
        );
    }

    #[test]
    fn action_layout_offsets_and_wait() {
        let layout = ActionLayout::placements_then_wait(3, 2);
        assert_eq!(layout.num_actions(), 7);
        assert_eq!(layout.wait(), Some(6));
        let offsets: Vec<usize> = layout.offsets().map(|(o, _)| o).collect();
        assert_eq!(offsets, [0, 6]);
        assert_eq!(ActionLayout::plain(2).wait(), None);
        assert_eq!(ActionLayout::plain(2).num_actions(), 2);
    }
}
