//! The two wrappers users expect from Gymnasium: [`TimeLimit`] and [`EpisodeStatistics`].
//! Both are [`Env`]s around another [`Env`], so they nest:
//! `EpisodeStatistics::new(TimeLimit::new(env, 500))`.
//!
//! `VecEnv` records the same episode statistics itself (it sees every reward), so vectorised
//! training needs no [`EpisodeStatistics`] inside it.

use crate::api::{ActionLayout, Env, EnvError, ObsLayout, Transition};
use crate::metrics::EpisodeMetrics;
use crate::spaces::{BoxSpace, Discrete};

/// Return and length of one finished episode, Gymnasium's `info["episode"]["r"]` and `["l"]`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EpisodeStats {
    /// Undiscounted sum of the episode's rewards (summed in `f64`).
    pub episode_return: f64,
    /// Number of steps in the episode.
    pub length: usize,
}

/// Gymnasium's `TimeLimit`: the step that brings the episode to `max_episode_steps` steps
/// returns `truncated = true`; `terminated` is passed through unchanged (both may be true).
/// Stepping after the episode ended (either way) is [`EnvError::EpisodeOver`].
#[derive(Clone, Debug)]
pub struct TimeLimit<E> {
    inner: E,
    max_episode_steps: usize,
    elapsed_steps: usize,
    episode_over: bool,
}

impl<E: Env> TimeLimit<E> {
    /// Panics if `max_episode_steps` is 0 (a programming error: no episode could be played).
    pub fn new(inner: E, max_episode_steps: usize) -> Self {
        assert!(
            max_episode_steps > 0,
            "TimeLimit needs max_episode_steps > 0"
        );
        Self {
            inner,
            max_episode_steps,
            elapsed_steps: 0,
            episode_over: true,
        }
    }

    pub fn max_episode_steps(&self) -> usize {
        self.max_episode_steps
    }

    /// Steps taken in the current episode.
    pub fn elapsed_steps(&self) -> usize {
        self.elapsed_steps
    }

    pub fn inner(&self) -> &E {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.inner
    }

    pub fn into_inner(self) -> E {
        self.inner
    }
}

impl<E: Env> Env for TimeLimit<E> {
    fn observation_space(&self) -> &BoxSpace {
        self.inner.observation_space()
    }

    fn action_space(&self) -> Discrete {
        self.inner.action_space()
    }

    fn obs_layout(&self) -> ObsLayout {
        self.inner.obs_layout()
    }

    fn action_layout(&self) -> ActionLayout {
        self.inner.action_layout()
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        self.inner.reset(seed, obs);
        self.elapsed_steps = 0;
        self.episode_over = false;
    }

    fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
        if self.episode_over {
            return Err(EnvError::EpisodeOver);
        }
        let mut transition = self.inner.step(action, obs)?;
        self.elapsed_steps += 1;
        if self.elapsed_steps >= self.max_episode_steps {
            transition.truncated = true;
        }
        self.episode_over = transition.episode_over();
        Ok(transition)
    }

    fn action_mask(&self, mask: &mut [bool]) {
        self.inner.action_mask(mask);
    }

    /// The inner env's metrics. An env cut off by this wrapper does not know its episode
    /// ended, so scheduling envs should use their own time or decision limit instead.
    fn episode_metrics(&self) -> Option<&EpisodeMetrics> {
        self.inner.episode_metrics()
    }

    fn clock(&self) -> Option<f64> {
        self.inner.clock()
    }
}

/// Gymnasium's `RecordEpisodeStatistics`: accumulates the return and length of the running
/// episode; [`EpisodeStatistics::last_episode`] is `Some` from the step that ends an episode
/// until the next reset.
#[derive(Clone, Debug)]
pub struct EpisodeStatistics<E> {
    inner: E,
    running: EpisodeStats,
    last_episode: Option<EpisodeStats>,
    num_episodes: usize,
}

impl<E: Env> EpisodeStatistics<E> {
    pub fn new(inner: E) -> Self {
        Self {
            inner,
            running: EpisodeStats::default(),
            last_episode: None,
            num_episodes: 0,
        }
    }

    /// The episode that just ended, if the last step ended one.
    pub fn last_episode(&self) -> Option<&EpisodeStats> {
        self.last_episode.as_ref()
    }

    /// Episodes finished since this wrapper was created.
    pub fn num_episodes(&self) -> usize {
        self.num_episodes
    }

    pub fn inner(&self) -> &E {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.inner
    }

    pub fn into_inner(self) -> E {
        self.inner
    }
}

impl<E: Env> Env for EpisodeStatistics<E> {
    fn observation_space(&self) -> &BoxSpace {
        self.inner.observation_space()
    }

    fn action_space(&self) -> Discrete {
        self.inner.action_space()
    }

    fn obs_layout(&self) -> ObsLayout {
        self.inner.obs_layout()
    }

    fn action_layout(&self) -> ActionLayout {
        self.inner.action_layout()
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        self.inner.reset(seed, obs);
        self.running = EpisodeStats::default();
        self.last_episode = None;
    }

    fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
        let transition = self.inner.step(action, obs)?;
        self.running.episode_return += f64::from(transition.reward);
        self.running.length += 1;
        if transition.episode_over() {
            self.last_episode = Some(self.running);
            self.num_episodes += 1;
        }
        Ok(transition)
    }

    fn action_mask(&self, mask: &mut [bool]) {
        self.inner.action_mask(mask);
    }

    fn episode_metrics(&self) -> Option<&EpisodeMetrics> {
        self.inner.episode_metrics()
    }

    fn clock(&self) -> Option<f64> {
        self.inner.clock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Terminates on the step whose action is 1; reward = 0.5 per step.
    struct Countdown {
        space: BoxSpace,
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
        fn reset(&mut self, _seed: Option<u64>, obs: &mut [f32]) {
            obs[0] = 0.0;
        }
        fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
            obs[0] += 1.0;
            Ok(Transition {
                reward: 0.5,
                terminated: action == 1,
                truncated: false,
            })
        }
        fn action_mask(&self, mask: &mut [bool]) {
            mask.fill(true);
        }
    }

    fn countdown() -> Countdown {
        Countdown {
            space: BoxSpace::uniform(1, 0.0, f32::INFINITY),
        }
    }

    #[test]
    fn time_limit_truncates_on_the_nth_step_and_leaves_terminated_alone() {
        let mut env = TimeLimit::new(countdown(), 3);
        let mut obs = [0.0];
        env.reset(None, &mut obs);
        assert!(!env.step(0, &mut obs).unwrap().episode_over());
        assert!(!env.step(0, &mut obs).unwrap().episode_over());
        let t = env.step(0, &mut obs).unwrap();
        assert!(t.truncated && !t.terminated);
        assert_eq!(env.step(0, &mut obs), Err(EnvError::EpisodeOver));

        env.reset(None, &mut obs);
        assert_eq!(env.elapsed_steps(), 0);
        env.step(0, &mut obs).unwrap();
        env.step(0, &mut obs).unwrap();
        let t = env.step(1, &mut obs).unwrap();
        assert!(
            t.truncated && t.terminated,
            "both flags on the limit step, as in Gymnasium"
        );
    }

    #[test]
    fn time_limit_passes_early_termination_through() {
        let mut env = TimeLimit::new(countdown(), 10);
        let mut obs = [0.0];
        env.reset(None, &mut obs);
        let t = env.step(1, &mut obs).unwrap();
        assert!(t.terminated && !t.truncated);
        assert_eq!(env.step(0, &mut obs), Err(EnvError::EpisodeOver));
    }

    #[test]
    fn episode_statistics_reports_return_and_length_at_the_end_only() {
        let mut env = EpisodeStatistics::new(TimeLimit::new(countdown(), 4));
        let mut obs = [0.0];
        env.reset(None, &mut obs);
        env.step(0, &mut obs).unwrap();
        env.step(0, &mut obs).unwrap();
        assert_eq!(env.last_episode(), None);
        env.step(1, &mut obs).unwrap();
        assert_eq!(
            env.last_episode(),
            Some(&EpisodeStats {
                episode_return: 1.5,
                length: 3
            })
        );
        env.reset(None, &mut obs);
        assert_eq!(env.last_episode(), None);
        for _ in 0..4 {
            env.step(0, &mut obs).unwrap();
        }
        assert_eq!(
            env.last_episode(),
            Some(&EpisodeStats {
                episode_return: 2.0,
                length: 4
            })
        );
        assert_eq!(env.num_episodes(), 2);
    }
}
