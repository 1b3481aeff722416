//! [`CartPoleVec`]: N `CartPole-v1` envs in structure-of-arrays layout, stepped in one loop.
//!
//! The same envs as a [`VecEnv`](crate::VecEnv) of [`CartPole::v1`](crate::CartPole::v1), bit
//! for bit: the same dynamics (`cartpole::dynamics`), the same starting-state streams (env `i`
//! reset with `seed + i`), the same 500-step truncation, the same `SAME_STEP` autoreset and
//! buffer layout (`observations()[4i..4i+4]`, `rewards()[i]`, …). What it drops is the
//! generality: no per-env trait object, wrapper or episode record (the mask is one constant
//! all-`true` buffer), only four `f64` columns of state, a step counter and a random stream
//! per env, so the loop is the physics and little else (`tests`: equal to the `VecEnv` step
//! for step; steps/s in BENCHMARKS.md "PPO at large batch: training throughput").

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::api::{Env, EnvError};
use crate::cartpole::{
    CARTPOLE_V1_MAX_EPISODE_STEPS, CartPole, dynamics, initial_state, out_of_bounds,
};
use crate::metrics::EpisodeMetrics;
use crate::spaces::BoxSpace;
use crate::vec_env::{VecEnvError, VectorEnv};
use crate::wrappers::EpisodeStats;

/// Observation length of CartPole.
const OBS: usize = 4;

/// N `CartPole-v1` envs, structure of arrays. See the module docs.
#[derive(Clone, Debug)]
pub struct CartPoleVec {
    x: Vec<f64>,
    x_dot: Vec<f64>,
    theta: Vec<f64>,
    theta_dot: Vec<f64>,
    /// Steps taken in each env's current episode (for the time limit).
    lengths: Vec<u32>,
    rngs: Vec<ChaCha8Rng>,
    observations: Vec<f32>,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    /// Whether env `i`'s episode ended on the last step, its last observation and length.
    ended: Vec<bool>,
    final_observations: Vec<f32>,
    final_lengths: Vec<u32>,
    /// Every action is always legal: the mask rows, all `true`.
    masks: Vec<bool>,
    observation_space: BoxSpace,
    is_reset: bool,
}

impl CartPoleVec {
    /// `num_envs` envs, stepped through [`VectorEnv`] (reset them before the first step).
    pub fn new(num_envs: usize) -> Self {
        Self {
            x: vec![0.0; num_envs],
            x_dot: vec![0.0; num_envs],
            theta: vec![0.0; num_envs],
            theta_dot: vec![0.0; num_envs],
            lengths: vec![0; num_envs],
            rngs: (0..num_envs as u64)
                .map(ChaCha8Rng::seed_from_u64)
                .collect(),
            observations: vec![0.0; num_envs * OBS],
            rewards: vec![0.0; num_envs],
            terminated: vec![false; num_envs],
            truncated: vec![false; num_envs],
            ended: vec![false; num_envs],
            final_observations: vec![0.0; num_envs * OBS],
            final_lengths: vec![0; num_envs],
            masks: vec![true; num_envs * 2],
            observation_space: CartPole::new(0).observation_space().clone(),
            is_reset: false,
        }
    }

    fn reset_with(&mut self, seed_of: impl Fn(usize) -> Option<u64>) {
        for i in 0..self.num_envs() {
            if let Some(seed) = seed_of(i) {
                self.rngs[i] = ChaCha8Rng::seed_from_u64(seed);
            }
            let state = initial_state(&mut self.rngs[i]);
            self.set_state(i, state);
            self.lengths[i] = 0;
        }
        self.rewards.fill(0.0);
        self.terminated.fill(false);
        self.truncated.fill(false);
        self.ended.fill(false);
        self.is_reset = true;
    }

    fn set_state(&mut self, i: usize, [x, x_dot, theta, theta_dot]: [f64; 4]) {
        (self.x[i], self.x_dot[i], self.theta[i], self.theta_dot[i]) = (x, x_dot, theta, theta_dot);
        write_obs(
            &[x, x_dot, theta, theta_dot],
            &mut self.observations[i * OBS..(i + 1) * OBS],
        );
    }

    /// The length (and return: +1 per step) of env `i`'s episode if it ended on the last step.
    fn finished_length(&self, i: usize) -> Option<u32> {
        self.ended[i].then_some(self.final_lengths[i])
    }
}

impl VectorEnv for CartPoleVec {
    fn num_envs(&self) -> usize {
        self.x.len()
    }
    fn obs_dim(&self) -> usize {
        OBS
    }
    fn num_actions(&self) -> usize {
        2
    }
    fn num_threads(&self) -> usize {
        1
    }
    fn observation_space(&self) -> &BoxSpace {
        &self.observation_space
    }
    /// Resets every env, env `i` with `seed + i` (wrapping) when `seed` is `Some`, as
    /// [`VecEnv::reset`](crate::VecEnv::reset) does; `None` continues every env's stream.
    fn reset(&mut self, seed: Option<u64>) {
        self.reset_with(|i| seed.map(|s| s.wrapping_add(i as u64)));
    }

    /// Resets env `i` with `seeds[i]` (equal seeds, equal episodes).
    ///
    /// # Panics
    /// If `seeds` does not have one seed per env (a caller's bug, not input).
    fn reset_each(&mut self, seeds: &[u64]) {
        assert_eq!(seeds.len(), self.num_envs(), "one seed per env");
        self.reset_with(|i| Some(seeds[i]));
    }

    /// Pushes env `i` right when `actions[i] == 1`, left when 0, and resets the envs whose
    /// episode ends (`SAME_STEP`). An action outside `{0, 1}` is refused before any env moves.
    fn step(&mut self, actions: &[usize]) -> Result<(), VecEnvError> {
        if !self.is_reset {
            return Err(VecEnvError::NotReset);
        }
        if actions.len() != self.num_envs() {
            return Err(VecEnvError::WrongNumberOfActions {
                expected: self.num_envs(),
                got: actions.len(),
            });
        }
        if let Some(index) = actions.iter().position(|&a| a >= 2) {
            let source = EnvError::OutOfRange {
                action: actions[index],
                n: 2,
            };
            return Err(VecEnvError::Env { index, source });
        }
        for (i, &action) in actions.iter().enumerate() {
            let state = [self.x[i], self.x_dot[i], self.theta[i], self.theta_dot[i]];
            let next = dynamics(state, action == 1);
            let terminated = out_of_bounds(&next);
            self.lengths[i] += 1;
            let truncated = self.lengths[i] as usize >= CARTPOLE_V1_MAX_EPISODE_STEPS;
            self.rewards[i] = 1.0;
            self.terminated[i] = terminated;
            self.truncated[i] = truncated;
            let ended = terminated || truncated;
            self.ended[i] = ended;
            if ended {
                write_obs(&next, &mut self.final_observations[i * OBS..(i + 1) * OBS]);
                self.final_lengths[i] = self.lengths[i];
                self.lengths[i] = 0;
                let state = initial_state(&mut self.rngs[i]);
                self.set_state(i, state);
            } else {
                self.set_state(i, next);
            }
        }
        Ok(())
    }

    fn observations(&self) -> &[f32] {
        &self.observations
    }
    fn rewards(&self) -> &[f32] {
        &self.rewards
    }
    fn terminated(&self) -> &[bool] {
        &self.terminated
    }
    fn truncated(&self) -> &[bool] {
        &self.truncated
    }
    fn action_masks(&self) -> &[bool] {
        &self.masks
    }
    /// The last observation of env `i`'s episode if it ended on the last step.
    fn final_observation(&self, i: usize) -> Option<&[f32]> {
        self.ended[i].then(|| &self.final_observations[i * OBS..(i + 1) * OBS])
    }

    fn final_action_mask(&self, index: usize) -> Option<&[bool]> {
        self.ended[index].then(|| &self.masks[index * 2..index * 2 + 2])
    }
    /// CartPole's return is its length (+1 per step) and it has no scheduling metrics.
    fn finished_episode(&self, index: usize) -> Option<(EpisodeStats, Option<&EpisodeMetrics>)> {
        self.finished_length(index).map(|length| {
            let stats = EpisodeStats {
                episode_return: f64::from(length),
                length: length as usize,
            };
            (stats, None)
        })
    }
}

/// The observation of a state: its four values rounded to `f32`, as Gymnasium's.
#[inline(always)]
fn write_obs(state: &[f64; 4], obs: &mut [f32]) {
    for (o, s) in obs.iter_mut().zip(state) {
        *o = *s as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VecEnv;
    use rand::Rng;

    /// Step for step the same as a `VecEnv` of `CartPole::v1`, through terminations,
    /// truncations (a policy that balances reaches 500 steps) and autoresets.
    #[test]
    fn equals_a_vec_env_of_cartpole_v1_step_for_step() {
        let n = 16;
        let mut soa = CartPoleVec::new(n);
        let mut aos = VecEnv::new((0..n as u64).map(CartPole::v1).collect(), 1).unwrap();
        // Through the trait both implement: equal seeds per env, then a seeded reset.
        let (soa_dyn, aos_dyn): (&mut dyn VectorEnv, &mut dyn VectorEnv) = (&mut soa, &mut aos);
        let seeds: Vec<u64> = (0..n as u64).map(|i| i % 3).collect();
        soa_dyn.reset_each(&seeds);
        aos_dyn.reset_each(&seeds);
        assert_eq!(soa_dyn.observations(), aos_dyn.observations());
        assert_eq!(soa_dyn.observation_space(), aos_dyn.observation_space());
        soa.reset(Some(7));
        aos.reset(Some(7));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (mut truncations, mut terminations) = (0, 0);
        for step in 0..4000 {
            assert_eq!(soa.observations(), aos.observations(), "step {step}");
            // Half the envs balance (push toward the pole's lean), half act at random.
            let actions: Vec<usize> = (0..n)
                .map(|i| match i % 2 {
                    0 => usize::from(aos.observation(i)[2] + 0.5 * aos.observation(i)[3] > 0.0),
                    _ => rng.random_range(0..2),
                })
                .collect();
            soa.step(&actions).unwrap();
            aos.step(&actions).unwrap();
            assert_eq!(soa.rewards(), aos.rewards());
            assert_eq!(soa.terminated(), aos.terminated());
            assert_eq!(soa.truncated(), aos.truncated());
            assert_eq!(soa.action_masks(), aos.action_masks());
            for i in 0..n {
                assert_eq!(
                    soa.final_observation(i),
                    aos.final_observation(i),
                    "step {step}"
                );
                let length = aos.finished_episode(i).map(|(e, _)| e.length as u32);
                assert_eq!(soa.finished_length(i), length);
                let (a, b) = (&soa as &dyn VectorEnv, &aos as &dyn VectorEnv);
                assert_eq!(a.finished_episode(i), b.finished_episode(i));
                assert_eq!(a.final_action_mask(i), b.final_action_mask(i));
            }
            truncations += soa.truncated().iter().filter(|&&t| t).count();
            terminations += soa.terminated().iter().filter(|&&t| t).count();
        }
        assert!(
            truncations > 0 && terminations > 100,
            "{truncations} {terminations}"
        );
    }

    #[test]
    fn bad_steps_are_refused_before_any_env_moves() {
        let mut env = CartPoleVec::new(3);
        assert_eq!(env.step(&[0, 0, 0]), Err(VecEnvError::NotReset));
        env.reset(Some(0));
        let before = env.observations().to_vec();
        assert_eq!(
            env.step(&[0, 1]),
            Err(VecEnvError::WrongNumberOfActions {
                expected: 3,
                got: 2
            })
        );
        let err = env.step(&[1, 0, 2]).unwrap_err();
        assert!(matches!(err, VecEnvError::Env { index: 2, .. }), "{err:?}");
        assert_eq!(env.observations(), before.as_slice());
    }
}
