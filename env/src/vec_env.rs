//! [`VecEnv`]: N copies of an [`Env`] stepped together, in parallel with rayon, into
//! preallocated contiguous buffers.
//!
//! ## Layout
//! Env `i` owns row `i` of every buffer: `observations()[i*D..(i+1)*D]`, `rewards()[i]`,
//! `terminated()[i]`, `truncated()[i]`, `action_masks()[i*A..(i+1)*A]`, where `D` is the
//! observation length and `A` the number of actions. The buffers are allocated once, in
//! [`VecEnv::new`]; stepping allocates nothing (see "Allocation" below).
//!
//! ## Seeds
//! [`VecEnv::reset`] with `Some(seed)` resets env `i` with seed `seed + i` (wrapping), as
//! EnvPool does; `None` continues every env's random streams. [`VecEnv::reset_each`] gives
//! each env its own seed (equal seeds, equal episodes: same-workload groups).
//!
//! ## Stepping some envs
//! [`VecEnv::step_active`] steps only the envs flagged active; the others keep their rows and
//! report reward 0 and no episode end (a collector of whole episodes parks an env there).
//!
//! ## Autoreset: Gymnasium's `SAME_STEP` mode
//! When env `i`'s episode ends on a step (`terminated[i] || truncated[i]`), the env is reset
//! within the same step, as in Stable-Baselines3 and Gymnasium's `AutoresetMode.SAME_STEP`:
//! - `observations()` row `i` is the *first observation of the next episode*, and
//!   `action_masks()` row `i` its mask, so the next action can be chosen from them directly;
//! - `rewards()[i]`, `terminated()[i]`, `truncated()[i]` are those of the finished episode's
//!   last step;
//! - [`VecEnv::final_observation`] is the finished episode's last observation (what to
//!   bootstrap from when `truncated[i]`), [`VecEnv::final_action_mask`] the legal actions in
//!   that state, and [`VecEnv::finished_episode`] its return, length and scheduling metrics
//!   (Gymnasium's `final_obs` / `final_info`). All are `Some` for exactly the indices whose
//!   episode ended on the last step.
//!
//! The automatic resets pass `seed = None`, continuing each env's stream.
//!
//! ## Allocation
//! Sequential stepping (`num_threads == 1`) performs no heap allocation at all after the first
//! reset. Parallel stepping hands one job per step to rayon's thread pool, whose injector queue
//! allocates one 63-slot block every 63 jobs (about 1.5 KiB each); the envs and this module
//! allocate nothing. Episode metrics are copied into buffers reused from one episode to the
//! next. `tests/vec_env_alloc.rs` counts.
//!
//! ```
//! use lepton_env::{CartPole, VecEnv};
//! let envs = (0..4).map(|i| CartPole::v1(i)).collect();
//! let mut venv = VecEnv::new(envs, 1).unwrap();
//! venv.reset(Some(42));
//! let mut num_finished = 0;
//! for _ in 0..100 {
//!     let actions: Vec<usize> = (0..4).map(|i| usize::from(venv.observation(i)[2] > 0.0)).collect();
//!     venv.step(&actions).unwrap();
//!     num_finished += venv.finished_episodes().count();
//! }
//! assert_eq!(venv.observations().len(), 4 * 4);
//! ```

use rayon::prelude::*;

use crate::api::{Env, EnvError};
use crate::metrics::EpisodeMetrics;
use crate::spaces::BoxSpace;
use crate::wrappers::EpisodeStats;

/// Why a [`VecEnv`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VecEnvBuildError {
    #[error("a VecEnv needs at least one env")]
    NoEnvs,
    #[error("num_threads must be at least 1")]
    NoThreads,
    #[error(
        "env {index} has observation length {obs_dim} and {num_actions} actions, \
         env 0 has {expected_obs_dim} and {expected_num_actions}"
    )]
    ShapeMismatch {
        index: usize,
        obs_dim: usize,
        num_actions: usize,
        expected_obs_dim: usize,
        expected_num_actions: usize,
    },
    #[error("could not start the rayon thread pool: {0}")]
    ThreadPool(String),
}

/// Why a [`VecEnv::step`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VecEnvError {
    #[error("expected {expected} actions (one per env), got {got}")]
    WrongNumberOfActions { expected: usize, got: usize },
    #[error("step called before reset")]
    NotReset,
    /// The action of env `index` was refused. When the action is outside the action space
    /// or masked out, no env has been stepped.
    #[error("env {index}: {source}")]
    Env {
        index: usize,
        #[source]
        source: EnvError,
    },
}

/// One env with its running episode statistics and its finished-episode record.
#[derive(Debug)]
struct Slot<E> {
    env: E,
    running: EpisodeStats,
    /// The episode that ended on the last step (valid when `ended`).
    finished: EpisodeStats,
    /// Metrics of that episode (valid when `ended && has_metrics`); reused across episodes.
    metrics: EpisodeMetrics,
    has_metrics: bool,
    /// Legal actions in the state that episode ended in (valid when `ended`): the mask row of
    /// the step buffers already belongs to the next episode.
    final_mask: Vec<bool>,
    ended: bool,
}

/// N copies of an env stepped together. See the module docs for the buffer layout and the
/// autoreset semantics.
#[derive(Debug)]
pub struct VecEnv<E> {
    slots: Vec<Slot<E>>,
    obs_dim: usize,
    num_actions: usize,
    observations: Vec<f32>,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    masks: Vec<bool>,
    final_observations: Vec<f32>,
    /// `None` steps sequentially on the caller's thread.
    pool: Option<rayon::ThreadPool>,
    is_reset: bool,
}

/// The rows of the step buffers that belong to one env.
struct Rows<'a, E> {
    slot: &'a mut Slot<E>,
    action: usize,
    obs: &'a mut [f32],
    final_obs: &'a mut [f32],
    mask: &'a mut [bool],
    reward: &'a mut f32,
    terminated: &'a mut bool,
    truncated: &'a mut bool,
}

impl<E: Env> VecEnv<E> {
    /// Wraps `envs` (all with the same spaces); `num_threads == 1` steps them sequentially on
    /// the caller's thread, more starts a dedicated rayon pool of that many threads.
    /// Call [`VecEnv::reset`] before the first step.
    ///
    /// Each parallel step costs a hand-off to the pool and back (about 20–25 µs on the 2-core
    /// development VM), so threads pay off only when stepping all N envs takes much longer
    /// than that: never for CartPole, from a few hundred `deeprm` or about a hundred `cloud`
    /// envs (BENCHMARKS.md). Results are identical whatever the number of threads.
    pub fn new(envs: Vec<E>, num_threads: usize) -> Result<Self, VecEnvBuildError> {
        let first = envs.first().ok_or(VecEnvBuildError::NoEnvs)?;
        let obs_dim = first.observation_space().dim();
        let num_actions = first.action_space().n;
        for (index, env) in envs.iter().enumerate() {
            let (d, a) = (env.observation_space().dim(), env.action_space().n);
            if (d, a) != (obs_dim, num_actions) {
                return Err(VecEnvBuildError::ShapeMismatch {
                    index,
                    obs_dim: d,
                    num_actions: a,
                    expected_obs_dim: obs_dim,
                    expected_num_actions: num_actions,
                });
            }
        }
        let pool = match num_threads {
            0 => return Err(VecEnvBuildError::NoThreads),
            1 => None,
            n => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("lepton-vecenv-{i}"))
                    .build()
                    .map_err(|e| VecEnvBuildError::ThreadPool(e.to_string()))?,
            ),
        };
        let n = envs.len();
        let slots = envs
            .into_iter()
            .map(|env| Slot {
                env,
                running: EpisodeStats::default(),
                finished: EpisodeStats::default(),
                metrics: EpisodeMetrics::default(),
                has_metrics: false,
                final_mask: vec![false; num_actions],
                ended: false,
            })
            .collect();
        Ok(Self {
            slots,
            obs_dim,
            num_actions,
            observations: vec![0.0; n * obs_dim],
            rewards: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
            masks: vec![false; n * num_actions],
            final_observations: vec![0.0; n * obs_dim],
            pool,
            is_reset: false,
        })
    }

    pub fn num_envs(&self) -> usize {
        self.slots.len()
    }

    /// `D`, the length of one env's observation.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// `A`, the size of the discrete action space.
    pub fn num_actions(&self) -> usize {
        self.num_actions
    }

    /// Threads stepping the envs (1 = sequential on the caller's thread).
    pub fn num_threads(&self) -> usize {
        self.pool
            .as_ref()
            .map_or(1, rayon::ThreadPool::current_num_threads)
    }

    pub fn env(&self, index: usize) -> &E {
        &self.slots[index].env
    }

    /// Direct access to one env. Stepping or resetting it behind the VecEnv's back leaves the
    /// buffers stale until the next [`VecEnv::step`] or [`VecEnv::reset`].
    pub fn env_mut(&mut self, index: usize) -> &mut E {
        &mut self.slots[index].env
    }

    /// Resets every env (env `i` with `seed + i` when `seed` is `Some`) and fills the
    /// observation and mask buffers.
    pub fn reset(&mut self, seed: Option<u64>) {
        self.reset_with(|i| seed.map(|s| s.wrapping_add(i as u64)));
    }

    /// Resets env `i` with `seeds[i]` (Gymnasium's `reset(seed=[...])`): envs given equal
    /// seeds play the same episodes.
    ///
    /// # Panics
    /// If `seeds` does not have one seed per env (a caller's bug, not input).
    pub fn reset_each(&mut self, seeds: &[u64]) {
        assert_eq!(seeds.len(), self.slots.len(), "one seed per env");
        self.reset_with(|i| Some(seeds[i]));
    }

    fn reset_with(&mut self, seed_of: impl Fn(usize) -> Option<u64>) {
        let (d, a) = (self.obs_dim, self.num_actions);
        let rows = self.slots.iter_mut().zip(
            self.observations
                .chunks_mut(d)
                .zip(self.masks.chunks_mut(a)),
        );
        for (i, (slot, (obs, mask))) in rows.enumerate() {
            slot.env.reset(seed_of(i), obs);
            slot.env.action_mask(mask);
            slot.running = EpisodeStats::default();
            slot.ended = false;
            slot.has_metrics = false;
        }
        self.rewards.fill(0.0);
        self.terminated.fill(false);
        self.truncated.fill(false);
        self.is_reset = true;
    }

    /// Steps env `i` with `actions[i]`, autoresetting the envs whose episode ends.
    ///
    /// Actions outside the action space or masked out in [`VecEnv::action_masks`] are
    /// refused before any env is stepped, with the index of the first offending env.
    pub fn step(&mut self, actions: &[usize]) -> Result<(), VecEnvError> {
        self.step_where(actions, None)
    }

    /// [`VecEnv::step`] for the envs with `active[i]` only; the others are not touched
    /// (their action is ignored, their observation and mask rows stay, their reward is 0 and
    /// no episode of theirs ends on this step). Lets a collector stop an env at an episode
    /// boundary while the others finish theirs.
    ///
    /// # Panics
    /// If `active` does not have one flag per env (a caller's bug, not input).
    pub fn step_active(&mut self, actions: &[usize], active: &[bool]) -> Result<(), VecEnvError> {
        assert_eq!(active.len(), self.slots.len(), "one flag per env");
        self.step_where(actions, Some(active))
    }

    fn step_where(
        &mut self,
        actions: &[usize],
        active: Option<&[bool]>,
    ) -> Result<(), VecEnvError> {
        let is_active = |i: usize| active.is_none_or(|a| a[i]);
        if !self.is_reset {
            return Err(VecEnvError::NotReset);
        }
        if actions.len() != self.slots.len() {
            return Err(VecEnvError::WrongNumberOfActions {
                expected: self.slots.len(),
                got: actions.len(),
            });
        }
        let a = self.num_actions;
        for (index, (&action, mask)) in actions.iter().zip(self.masks.chunks(a)).enumerate() {
            if !is_active(index) {
                continue;
            }
            if action >= a {
                return Err(VecEnvError::Env {
                    index,
                    source: EnvError::OutOfRange { action, n: a },
                });
            }
            if !mask[action] {
                let reason = "masked out in the VecEnv's action mask";
                return Err(VecEnvError::Env {
                    index,
                    source: EnvError::Illegal { action, reason },
                });
            }
        }

        let d = self.obs_dim;
        let result = match &self.pool {
            None => (0..self.slots.len()).try_for_each(|i| {
                let rows = Rows {
                    slot: &mut self.slots[i],
                    action: actions[i],
                    obs: &mut self.observations[i * d..(i + 1) * d],
                    final_obs: &mut self.final_observations[i * d..(i + 1) * d],
                    mask: &mut self.masks[i * a..(i + 1) * a],
                    reward: &mut self.rewards[i],
                    terminated: &mut self.terminated[i],
                    truncated: &mut self.truncated[i],
                };
                step_one(i, rows, is_active(i))
            }),
            Some(pool) => {
                // One chunk of consecutive envs per thread: the fewest hand-offs.
                let per_thread = self.slots.len().div_ceil(pool.current_num_threads());
                let rows = (
                    self.slots.par_iter_mut(),
                    actions.par_iter(),
                    self.observations.par_chunks_mut(d),
                    self.final_observations.par_chunks_mut(d),
                    self.masks.par_chunks_mut(a),
                    self.rewards.par_iter_mut(),
                    self.terminated.par_iter_mut(),
                    self.truncated.par_iter_mut(),
                )
                    .into_par_iter()
                    .map(
                        |(slot, &action, obs, final_obs, mask, reward, terminated, truncated)| {
                            Rows {
                                slot,
                                action,
                                obs,
                                final_obs,
                                mask,
                                reward,
                                terminated,
                                truncated,
                            }
                        },
                    );
                pool.install(|| {
                    rows.enumerate()
                        .with_min_len(per_thread)
                        .try_for_each(|(i, r)| step_one(i, r, is_active(i)))
                })
            }
        };
        if result.is_err() {
            // An env refused a masked-in action: its state is unchanged but others may have
            // stepped, so the buffers no longer describe one step. Require a reset.
            self.is_reset = false;
        }
        result
    }

    /// All observations, `N × D` row-major. After an autoreset, row `i` is the new episode's.
    pub fn observations(&self) -> &[f32] {
        &self.observations
    }

    /// Row `i` of [`VecEnv::observations`].
    pub fn observation(&self, index: usize) -> &[f32] {
        &self.observations[index * self.obs_dim..(index + 1) * self.obs_dim]
    }

    /// Rewards of the last step, one per env.
    pub fn rewards(&self) -> &[f32] {
        &self.rewards
    }

    /// Whether the last step terminated env `i`'s episode (do not bootstrap).
    pub fn terminated(&self) -> &[bool] {
        &self.terminated
    }

    /// Whether the last step truncated env `i`'s episode (bootstrap from
    /// [`VecEnv::final_observation`]).
    pub fn truncated(&self) -> &[bool] {
        &self.truncated
    }

    /// Legal-action masks for the next step, `N × A` row-major (`true` = legal).
    pub fn action_masks(&self) -> &[bool] {
        &self.masks
    }

    /// The last observation of env `index`'s episode if that episode ended on the last step.
    pub fn final_observation(&self, index: usize) -> Option<&[f32]> {
        let d = self.obs_dim;
        self.slots[index]
            .ended
            .then(|| &self.final_observations[index * d..(index + 1) * d])
    }

    /// The action mask of the state env `index`'s episode ended in, if it ended on the last
    /// step (what an off-policy learner bootstraps over at a truncation).
    pub fn final_action_mask(&self, index: usize) -> Option<&[bool]> {
        let slot = &self.slots[index];
        slot.ended.then_some(slot.final_mask.as_slice())
    }

    /// Return, length and (for scheduling envs) metrics of env `index`'s episode if it ended
    /// on the last step.
    pub fn finished_episode(
        &self,
        index: usize,
    ) -> Option<(&EpisodeStats, Option<&EpisodeMetrics>)> {
        let slot = &self.slots[index];
        slot.ended
            .then(|| (&slot.finished, slot.has_metrics.then_some(&slot.metrics)))
    }

    /// `(index, stats, metrics)` of every episode that ended on the last step, by index.
    pub fn finished_episodes(
        &self,
    ) -> impl Iterator<Item = (usize, &EpisodeStats, Option<&EpisodeMetrics>)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.ended)
            .map(|(i, slot)| (i, &slot.finished, slot.has_metrics.then_some(&slot.metrics)))
    }
}

/// Steps one env and autoresets it if its episode ended; an inactive env only clears its
/// step outputs.
fn step_one<E: Env>(index: usize, r: Rows<'_, E>, active: bool) -> Result<(), VecEnvError> {
    let slot = r.slot;
    if !active {
        (*r.reward, *r.terminated, *r.truncated) = (0.0, false, false);
        slot.ended = false;
        return Ok(());
    }
    let t = slot
        .env
        .step(r.action, r.obs)
        .map_err(|source| VecEnvError::Env { index, source })?;
    *r.reward = t.reward;
    *r.terminated = t.terminated;
    *r.truncated = t.truncated;
    slot.running.episode_return += f64::from(t.reward);
    slot.running.length += 1;
    slot.ended = t.episode_over();
    if slot.ended {
        r.final_obs.copy_from_slice(r.obs);
        slot.env.action_mask(&mut slot.final_mask);
        slot.finished = std::mem::take(&mut slot.running);
        slot.has_metrics = match slot.env.episode_metrics() {
            Some(metrics) => {
                copy_metrics(&mut slot.metrics, metrics);
                true
            }
            None => false,
        };
        slot.env.reset(None, r.obs);
    }
    slot.env.action_mask(r.mask);
    Ok(())
}

/// `*dst = src.clone()` reusing `dst`'s allocations. A new non-`Copy` field in
/// [`EpisodeMetrics`] fails to compile here, which is the point: it must be copied by hand.
fn copy_metrics(dst: &mut EpisodeMetrics, src: &EpisodeMetrics) {
    let mut utilization = std::mem::take(&mut dst.utilization);
    utilization.clone_from(&src.utilization);
    *dst = EpisodeMetrics {
        utilization,
        ..*src
    };
}

/// What a batch of envs stepped together gives its caller: [`VecEnv`] for any env, and
/// [`CartPoleVec`](crate::CartPoleVec) for CartPole in structure-of-arrays layout. The buffer
/// layout, seeds and `SAME_STEP` autoreset are [`VecEnv`]'s (see the module docs), so a caller
/// written against this trait (the Python package's vector env) takes either.
pub trait VectorEnv: Send {
    fn num_envs(&self) -> usize;
    fn obs_dim(&self) -> usize;
    fn num_actions(&self) -> usize;
    fn num_threads(&self) -> usize;
    /// Every env's observation space (they are all the same).
    fn observation_space(&self) -> &BoxSpace;
    fn reset(&mut self, seed: Option<u64>);
    fn reset_each(&mut self, seeds: &[u64]);
    fn step(&mut self, actions: &[usize]) -> Result<(), VecEnvError>;
    fn observations(&self) -> &[f32];
    fn rewards(&self) -> &[f32];
    fn terminated(&self) -> &[bool];
    fn truncated(&self) -> &[bool];
    fn action_masks(&self) -> &[bool];
    fn final_observation(&self, index: usize) -> Option<&[f32]>;
    fn final_action_mask(&self, index: usize) -> Option<&[bool]>;
    /// The return and length of the episode env `index` ended on the last step, with its
    /// scheduling metrics when the env has them.
    fn finished_episode(&self, index: usize) -> Option<(EpisodeStats, Option<&EpisodeMetrics>)>;
}

impl<E: Env> VectorEnv for VecEnv<E> {
    fn num_envs(&self) -> usize {
        VecEnv::num_envs(self)
    }
    fn obs_dim(&self) -> usize {
        VecEnv::obs_dim(self)
    }
    fn num_actions(&self) -> usize {
        VecEnv::num_actions(self)
    }
    fn num_threads(&self) -> usize {
        VecEnv::num_threads(self)
    }
    fn observation_space(&self) -> &BoxSpace {
        self.env(0).observation_space()
    }
    fn reset(&mut self, seed: Option<u64>) {
        VecEnv::reset(self, seed)
    }
    fn reset_each(&mut self, seeds: &[u64]) {
        VecEnv::reset_each(self, seeds)
    }
    fn step(&mut self, actions: &[usize]) -> Result<(), VecEnvError> {
        VecEnv::step(self, actions)
    }
    fn observations(&self) -> &[f32] {
        VecEnv::observations(self)
    }
    fn rewards(&self) -> &[f32] {
        VecEnv::rewards(self)
    }
    fn terminated(&self) -> &[bool] {
        VecEnv::terminated(self)
    }
    fn truncated(&self) -> &[bool] {
        VecEnv::truncated(self)
    }
    fn action_masks(&self) -> &[bool] {
        VecEnv::action_masks(self)
    }
    fn final_observation(&self, index: usize) -> Option<&[f32]> {
        VecEnv::final_observation(self, index)
    }
    fn final_action_mask(&self, index: usize) -> Option<&[bool]> {
        VecEnv::final_action_mask(self, index)
    }
    fn finished_episode(&self, index: usize) -> Option<(EpisodeStats, Option<&EpisodeMetrics>)> {
        VecEnv::finished_episode(self, index).map(|(stats, metrics)| (*stats, metrics))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ObsLayout, Transition};
    use crate::cartpole::CartPole;
    use crate::spaces::{BoxSpace, Discrete};

    /// Observation = steps since reset; action 2 is masked out; the episode terminates after
    /// `length` steps, reward = the action; reports metrics whose `num_tasks` = length.
    struct Counter {
        length: usize,
        t: usize,
        space: BoxSpace,
        metrics: EpisodeMetrics,
    }

    impl Counter {
        fn new(length: usize) -> Self {
            Self {
                length,
                t: 0,
                space: BoxSpace::uniform(1, 0.0, 100.0),
                metrics: EpisodeMetrics::default(),
            }
        }
    }

    impl Env for Counter {
        fn observation_space(&self) -> &BoxSpace {
            &self.space
        }
        fn action_space(&self) -> Discrete {
            Discrete { n: 3 }
        }
        fn obs_layout(&self) -> ObsLayout {
            ObsLayout::flat(1)
        }
        fn reset(&mut self, _seed: Option<u64>, obs: &mut [f32]) {
            self.t = 0;
            obs[0] = 0.0;
        }
        fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
            if action == 2 {
                return Err(EnvError::Illegal {
                    action,
                    reason: "never legal",
                });
            }
            self.t += 1;
            obs[0] = self.t as f32;
            let terminated = self.t == self.length;
            self.metrics = EpisodeMetrics {
                num_tasks: self.length,
                utilization: vec![0.5; 2],
                ..Default::default()
            };
            Ok(Transition {
                reward: action as f32,
                terminated,
                truncated: false,
            })
        }
        fn action_mask(&self, mask: &mut [bool]) {
            mask.copy_from_slice(&[true, true, false]);
        }
        fn episode_metrics(&self) -> Option<&EpisodeMetrics> {
            (self.t == self.length).then_some(&self.metrics)
        }
    }

    /// A 3-action env whose state is the step count `t`: action `t % 3` is illegal, and the
    /// episode is truncated after 4 steps.
    struct MaskByTime {
        t: usize,
        space: BoxSpace,
    }

    impl Env for MaskByTime {
        fn observation_space(&self) -> &BoxSpace {
            &self.space
        }
        fn action_space(&self) -> Discrete {
            Discrete { n: 3 }
        }
        fn obs_layout(&self) -> ObsLayout {
            ObsLayout::flat(1)
        }
        fn reset(&mut self, _seed: Option<u64>, obs: &mut [f32]) {
            self.t = 0;
            obs[0] = 0.0;
        }
        fn step(&mut self, _action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
            self.t += 1;
            obs[0] = self.t as f32;
            Ok(Transition {
                reward: 1.0,
                terminated: false,
                truncated: self.t == 4,
            })
        }
        fn action_mask(&self, mask: &mut [bool]) {
            for (a, m) in mask.iter_mut().enumerate() {
                *m = a != self.t % 3;
            }
        }
    }

    /// At a truncation the mask row is already the next episode's; the final state's mask,
    /// which a truncated transition bootstraps over, is kept beside the final observation.
    #[test]
    fn the_final_state_mask_survives_the_autoreset() {
        let env = MaskByTime {
            t: 0,
            space: BoxSpace::uniform(1, 0.0, 10.0),
        };
        let mut venv = VecEnv::new(vec![env], 1).unwrap();
        venv.reset(Some(0));
        for _ in 0..4 {
            assert_eq!(venv.final_action_mask(0), None);
            let legal = venv.action_masks().iter().position(|&m| m).unwrap();
            venv.step(&[legal]).unwrap();
        }
        assert!(venv.truncated()[0]);
        assert_eq!(venv.final_observation(0), Some(&[4.0][..]));
        assert_eq!(
            venv.final_action_mask(0),
            Some(&[true, false, true][..]),
            "state t = 4: action 1 illegal"
        );
        assert_eq!(
            venv.action_masks(),
            [false, true, true],
            "the reset state t = 0"
        );
    }

    #[test]
    fn autoreset_same_step_keeps_final_obs_stats_and_metrics() {
        let mut venv = VecEnv::new(vec![Counter::new(2), Counter::new(3)], 1).unwrap();
        venv.reset(Some(0));
        assert_eq!(venv.action_masks(), &[true, true, false, true, true, false]);
        venv.step(&[1, 0]).unwrap();
        assert_eq!(venv.observations(), &[1.0, 1.0]);
        assert_eq!(venv.finished_episodes().count(), 0);
        venv.step(&[1, 1]).unwrap();
        // Env 0 ended: its row holds the reset observation, the final one is kept aside.
        assert_eq!(venv.observations(), &[0.0, 2.0]);
        assert_eq!(venv.terminated(), &[true, false]);
        assert_eq!(venv.rewards(), &[1.0, 1.0]);
        assert_eq!(venv.final_observation(0), Some(&[2.0][..]));
        assert_eq!(venv.final_observation(1), None);
        let (stats, metrics) = venv.finished_episode(0).unwrap();
        assert_eq!(
            *stats,
            EpisodeStats {
                episode_return: 2.0,
                length: 2
            }
        );
        assert_eq!(metrics.unwrap().num_tasks, 2);
        assert_eq!(metrics.unwrap().utilization, vec![0.5; 2]);
        venv.step(&[0, 1]).unwrap();
        let finished: Vec<_> = venv.finished_episodes().map(|(i, s, _)| (i, *s)).collect();
        assert_eq!(
            finished,
            vec![(
                1,
                EpisodeStats {
                    episode_return: 2.0,
                    length: 3
                }
            )]
        );
        assert_eq!(venv.observations(), &[1.0, 0.0]);
    }

    /// An inactive env is not stepped (its masked-out action is not even checked), reports
    /// reward 0 and no episode end, and keeps its row; on 2 threads as on 1.
    #[test]
    fn step_active_leaves_inactive_envs_alone() {
        for threads in [1, 2] {
            let mut venv = VecEnv::new(vec![Counter::new(2), Counter::new(2)], threads).unwrap();
            venv.reset(None);
            venv.step(&[1, 1]).unwrap();
            venv.step(&[1, 1]).unwrap();
            assert_eq!(venv.finished_episodes().count(), 2);
            venv.step_active(&[1, 2], &[true, false]).unwrap();
            assert_eq!(venv.observations(), &[1.0, 0.0]);
            assert_eq!(venv.rewards(), &[1.0, 0.0]);
            assert_eq!(venv.terminated(), &[false, false]);
            assert_eq!(
                venv.finished_episodes().count(),
                0,
                "env 1's old end is not repeated"
            );
            venv.step_active(&[0, 1], &[false, true]).unwrap();
            assert_eq!(venv.observations(), &[1.0, 1.0]);
            assert_eq!(venv.rewards(), &[0.0, 1.0]);
        }
    }

    /// Envs given equal seeds play the same episode; `reset(Some(s))` is `reset_each(s + i)`.
    #[test]
    fn reset_each_gives_each_env_its_seed() {
        let make = || VecEnv::new((0..3).map(CartPole::v1).collect(), 1).unwrap();
        let mut a = make();
        a.reset_each(&[7, 7, 9]);
        let obs = a.observations().to_vec();
        assert_eq!(obs[0..4], obs[4..8]);
        assert_ne!(obs[0..4], obs[8..12]);
        let mut b = make();
        b.reset(Some(7));
        let mut c = make();
        c.reset_each(&[7, 8, 9]);
        assert_eq!(b.observations(), c.observations());
        assert_eq!(b.observations()[8..12], obs[8..12]);
    }

    #[test]
    fn illegal_actions_name_the_env_and_step_nothing() {
        let mut venv =
            VecEnv::new(vec![Counter::new(5), Counter::new(5), Counter::new(5)], 2).unwrap();
        assert_eq!(venv.step(&[0, 0, 0]), Err(VecEnvError::NotReset));
        venv.reset(None);
        let err = venv.step(&[0, 2, 0]).unwrap_err();
        assert!(
            matches!(
                err,
                VecEnvError::Env {
                    index: 1,
                    source: EnvError::Illegal { action: 2, .. }
                }
            ),
            "{err}"
        );
        assert!(err.to_string().starts_with("env 1: "), "{err}");
        let err = venv.step(&[0, 0, 7]).unwrap_err();
        assert_eq!(
            err,
            VecEnvError::Env {
                index: 2,
                source: EnvError::OutOfRange { action: 7, n: 3 }
            }
        );
        assert_eq!(venv.observations(), &[0.0; 3], "no env stepped");
        assert_eq!(
            venv.step(&[0]),
            Err(VecEnvError::WrongNumberOfActions {
                expected: 3,
                got: 1
            })
        );
    }

    #[test]
    fn build_errors() {
        assert_eq!(
            VecEnv::<CartPole>::new(vec![], 1).unwrap_err(),
            VecEnvBuildError::NoEnvs
        );
        assert_eq!(
            VecEnv::new(vec![CartPole::new(0)], 0).unwrap_err(),
            VecEnvBuildError::NoThreads
        );
    }

    /// Per step: observations, rewards, terminated, truncated, final observations.
    type Trace = Vec<(Vec<f32>, Vec<f32>, Vec<bool>, Vec<bool>, Vec<f32>)>;

    fn rollout(num_threads: usize, seed: u64) -> Trace {
        let envs = (0..7).map(CartPole::v1).collect();
        let mut venv = VecEnv::new(envs, num_threads).unwrap();
        venv.reset(Some(seed));
        let mut out = vec![];
        for step in 0..300 {
            let actions: Vec<usize> = (0..7).map(|i| (step * 7 + i * 3) % 5 % 2).collect();
            venv.step(&actions).unwrap();
            let finals = (0..7)
                .flat_map(|i| venv.final_observation(i).unwrap_or(&[]).to_vec())
                .collect();
            out.push((
                venv.observations().to_vec(),
                venv.rewards().to_vec(),
                venv.terminated().to_vec(),
                venv.truncated().to_vec(),
                finals,
            ));
        }
        out
    }

    #[test]
    fn sequential_and_parallel_stepping_agree() {
        assert_eq!(rollout(1, 3), rollout(2, 3));
        assert_eq!(rollout(1, 3), rollout(3, 3));
    }

    #[test]
    fn seed_plus_index_same_seed_same_run_different_seed_different_run() {
        assert_eq!(rollout(2, 9), rollout(2, 9));
        assert_ne!(rollout(2, 9), rollout(2, 10));
        // Env i of a VecEnv reset with seed s starts like a lone env reset with s + i.
        let mut venv = VecEnv::new((0..3).map(CartPole::new).collect(), 1).unwrap();
        venv.reset(Some(100));
        for i in 0..3 {
            let mut env = CartPole::new(0);
            let mut obs = [0.0; 4];
            env.reset(Some(100 + i as u64), &mut obs);
            assert_eq!(venv.observation(i), &obs);
        }
    }
}
