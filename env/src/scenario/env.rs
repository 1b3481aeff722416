//! [`ScenarioEnv`]: any scenario's env behind one concrete type.

use crate::api::{ActionLayout, Env, EnvError, ObsLayout, Transition};
use crate::cluster::{ClusterEnv, Discipline};
use crate::deeprm::DeepRmEnv;
use crate::metrics::EpisodeMetrics;
use crate::spaces::{BoxSpace, Discrete};

/// Any scenario's env, behind one concrete type (so vector envs need no boxing).
// The variants differ by a few hundred bytes of inline arrays; boxing would add a pointer
// chase to every step for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum ScenarioEnv {
    Cluster(ClusterEnv),
    DeepRm(DeepRmEnv),
}

macro_rules! delegate {
    ($self:ident, $env:ident => $body:expr) => {
        match $self {
            ScenarioEnv::Cluster($env) => $body,
            ScenarioEnv::DeepRm($env) => $body,
        }
    };
}

impl Env for ScenarioEnv {
    fn observation_space(&self) -> &BoxSpace {
        delegate!(self, e => e.observation_space())
    }
    fn action_space(&self) -> Discrete {
        delegate!(self, e => e.action_space())
    }
    fn obs_layout(&self) -> ObsLayout {
        delegate!(self, e => e.obs_layout())
    }
    fn action_layout(&self) -> ActionLayout {
        delegate!(self, e => e.action_layout())
    }
    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        delegate!(self, e => e.reset(seed, obs))
    }
    fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
        delegate!(self, e => e.step(action, obs))
    }
    fn action_mask(&self, mask: &mut [bool]) {
        delegate!(self, e => e.action_mask(mask))
    }
    fn episode_metrics(&self) -> Option<&EpisodeMetrics> {
        delegate!(self, e => e.episode_metrics())
    }
    fn clock(&self) -> Option<f64> {
        delegate!(self, e => e.clock())
    }
}

// Per-task outcomes for evaluation reports (slowdown CDFs); schedulers never read them.
impl ScenarioEnv {
    /// Slowdown of every task that has finished this episode, in arrival order (see
    /// [`ClusterEnv::finished_slowdowns`]); for reports, never for a scheduler's decisions.
    pub fn finished_slowdowns(&self) -> Box<dyn Iterator<Item = f64> + '_> {
        match self {
            ScenarioEnv::Cluster(e) => Box::new(e.finished_slowdowns()),
            ScenarioEnv::DeepRm(e) => Box::new(e.finished_slowdowns()),
        }
    }
}

// Planning without the future.
impl ScenarioEnv {
    /// Turns this env (a copy, typically) into one possible world consistent with what a
    /// scheduler has observed: see [`ClusterEnv::redraw_hidden`] and
    /// [`DeepRmEnv::redraw_hidden`].
    pub fn redraw_hidden(&mut self, seed: u64, arrivals: Option<usize>) {
        delegate!(self, e => e.redraw_hidden(seed, arrivals))
    }

    /// Writes the observation of the current state (what the last `reset` or `step` wrote),
    /// e.g. to check that a redrawn world looks the same.
    pub fn write_observation(&self, obs: &mut [f32]) {
        delegate!(self, e => e.write_observation(obs))
    }
}

// Batch scheduling: a discipline per episode, and choosing a task from the whole queue.
impl ScenarioEnv {
    /// What choosing a task means now (DeepRM's env: always greedy).
    pub fn discipline(&self) -> Discipline {
        match self {
            ScenarioEnv::Cluster(e) => e.discipline(),
            ScenarioEnv::DeepRm(_) => Discipline::Greedy,
        }
    }

    /// Switches the discipline; DeepRM's env has only the greedy one.
    pub fn set_discipline(&mut self, discipline: Discipline) -> Result<(), &'static str> {
        match self {
            ScenarioEnv::Cluster(e) => {
                e.set_discipline(discipline);
                Ok(())
            }
            ScenarioEnv::DeepRm(_) if !discipline.commits() => Ok(()),
            ScenarioEnv::DeepRm(_) => Err("DeepRM's env has no commit disciplines"),
        }
    }

    /// Preempts a running task (see [`ClusterEnv::step_preempt`]).
    pub fn step_preempt(&mut self, index: u32, obs: &mut [f32]) -> Result<Transition, EnvError> {
        match self {
            ScenarioEnv::Cluster(e) => e.step_preempt(index, obs),
            ScenarioEnv::DeepRm(_) => Err(EnvError::IllegalTask {
                index,
                reason: "DeepRM's env has no preemption",
            }),
        }
    }

    /// Moves a running task to another server (see [`ClusterEnv::step_migrate`]).
    pub fn step_migrate(
        &mut self,
        index: u32,
        server: usize,
        obs: &mut [f32],
    ) -> Result<Transition, EnvError> {
        match self {
            ScenarioEnv::Cluster(e) => e.step_migrate(index, server, obs),
            ScenarioEnv::DeepRm(_) => Err(EnvError::IllegalTask {
                index,
                reason: "DeepRM's env has no migration",
            }),
        }
    }

    /// Chooses a queued task by its index (see [`ClusterEnv::step_task`]).
    pub fn step_task(&mut self, index: u32, obs: &mut [f32]) -> Result<Transition, EnvError> {
        match self {
            ScenarioEnv::Cluster(e) => e.step_task(index, obs),
            ScenarioEnv::DeepRm(_) => Err(EnvError::IllegalTask {
                index,
                reason: "DeepRM's env takes slot actions only",
            }),
        }
    }
}
