//! Gymnasium's `CartPole-v1`, step for step: the task whose learning curves are known, used
//! to validate the learning algorithms before they meet the scheduler.
//!
//! A pole is attached by an un-actuated joint to a cart moving along a frictionless track; the
//! agent pushes the cart left or right to keep the pole upright. The dynamics are those of
//! `gymnasium/envs/classic_control/cartpole.py` (Gymnasium 1.2): explicit Euler integration,
//! computed in `f64` like NumPy, the observation rounded to `f32` like Gymnasium's. A test
//! (`tests/cartpole_vs_gymnasium.rs`) drives Gymnasium's own CartPole and this one from the
//! same states with the same actions and compares the trajectories.
//!
//! ## Action Space
//! `Discrete(2)`: 0 pushes the cart to the left, 1 to the right, with a force of 10 N.
//! Every action is always legal (the mask is all `true`).
//!
//! ## Observation
//! `Box(4)` of `f32`:
//!
//! | Index | Observation           | Min                  | Max                |
//! |-------|-----------------------|----------------------|--------------------|
//! | 0     | Cart position         | −4.8                 | 4.8                |
//! | 1     | Cart velocity         | −∞                   | ∞                  |
//! | 2     | Pole angle (rad)      | ≈ −0.418 (−24°)      | ≈ 0.418 (24°)      |
//! | 3     | Pole angular velocity | −∞                   | ∞                  |
//!
//! The bounds are twice the termination thresholds, as in Gymnasium, so that the observation
//! of the terminating step is still inside the space.
//!
//! ## Rewards
//! +1 for every step, the terminating step included.
//!
//! ## Starting State
//! Every state variable is drawn uniformly from `[−0.05, 0.05)`.
//!
//! ## Episode End
//! - Terminated: the pole angle leaves `[−12°, 12°]` or the cart position leaves `[−2.4, 2.4]`.
//! - Truncated: never by [`CartPole`] itself. As in Gymnasium, where `gym.make("CartPole-v1")`
//!   is `TimeLimit(CartPoleEnv, 500)`, the 500-step limit of v1 is a
//!   [`TimeLimit`] around it: use [`CartPole::v1`].
//!
//! Stepping after the episode ended is an [`EnvError::EpisodeOver`] (Gymnasium warns and
//! returns reward 0 instead).
//!
//! ## Arguments
//! [`CartPole::new`] takes the seed of the starting-state stream; [`Env::reset`] with
//! `Some(seed)` reseeds it. [`CartPole::set_state`] sets the physical state exactly.
//!
//! ```
//! use lepton_env::{CartPole, Env};
//! let mut env = CartPole::v1(7);
//! let mut obs = [0.0_f32; 4];
//! env.reset(Some(7), &mut obs);
//! let mut length = 0;
//! loop {
//!     let t = env.step(length % 2, &mut obs).unwrap();
//!     length += 1;
//!     if t.episode_over() {
//!         break;
//!     }
//! }
//! assert!(length < 500);
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::api::{Env, EnvError, ObsLayout, Transition};
use crate::spaces::{BoxSpace, Discrete};
use crate::wrappers::TimeLimit;

/// Gravity (m/s²).
const GRAVITY: f64 = 9.8;
const MASS_CART: f64 = 1.0;
const MASS_POLE: f64 = 0.1;
/// Half the pole's length (m).
const LENGTH: f64 = 0.5;
const FORCE_MAG: f64 = 10.0;
/// Seconds between state updates.
const TAU: f64 = 0.02;
const X_THRESHOLD: f64 = 2.4;
/// Number of steps after which `CartPole-v1` is truncated.
pub const CARTPOLE_V1_MAX_EPISODE_STEPS: usize = 500;

/// 12° in radians, computed like Gymnasium's `12 * 2 * math.pi / 360`.
fn theta_threshold_rad() -> f64 {
    12.0 * 2.0 * std::f64::consts::PI / 360.0
}

/// `CartPole-v1` without its time limit, like Gymnasium's `CartPoleEnv`. See the module docs.
#[derive(Clone, Debug)]
pub struct CartPole {
    /// `[x, x_dot, theta, theta_dot]`, in `f64` as Gymnasium keeps it.
    state: [f64; 4],
    rng: ChaCha8Rng,
    observation_space: BoxSpace,
    /// True before the first reset and after termination.
    episode_over: bool,
}

/// The registered `CartPole-v1`: [`CartPole`] truncated after 500 steps.
pub type CartPoleV1 = TimeLimit<CartPole>;

impl CartPole {
    /// A CartPole whose starting states are drawn from a stream seeded by `seed`.
    /// Call [`Env::reset`] before the first step.
    pub fn new(seed: u64) -> Self {
        let theta = theta_threshold_rad();
        let high = [
            (X_THRESHOLD * 2.0) as f32,
            f32::INFINITY,
            (theta * 2.0) as f32,
            f32::INFINITY,
        ];
        Self {
            state: [0.0; 4],
            rng: ChaCha8Rng::seed_from_u64(seed),
            observation_space: BoxSpace {
                low: high.iter().map(|h| -h).collect(),
                high: high.to_vec(),
            },
            episode_over: true,
        }
    }

    /// `gym.make("CartPole-v1")`: [`CartPole`] inside a 500-step [`TimeLimit`].
    pub fn v1(seed: u64) -> CartPoleV1 {
        TimeLimit::new(Self::new(seed), CARTPOLE_V1_MAX_EPISODE_STEPS)
    }

    /// The physical state `[x, x_dot, theta, theta_dot]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Sets the physical state exactly (Gymnasium: `env.unwrapped.state = ...`) and makes the
    /// episode steppable, without touching the random stream. A wrapping [`TimeLimit`] keeps
    /// its step count; reset it first to start a fresh episode from this state.
    pub fn set_state(&mut self, state: [f64; 4]) {
        self.state = state;
        self.episode_over = false;
    }

    fn write_obs(&self, obs: &mut [f32]) {
        for (o, s) in obs.iter_mut().zip(self.state) {
            *o = s as f32;
        }
    }
}

impl Env for CartPole {
    fn observation_space(&self) -> &BoxSpace {
        &self.observation_space
    }

    fn action_space(&self) -> Discrete {
        Discrete { n: 2 }
    }

    fn obs_layout(&self) -> ObsLayout {
        ObsLayout::flat(4)
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        self.state = initial_state(&mut self.rng);
        self.episode_over = false;
        self.write_obs(obs);
    }

    fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
        if action >= 2 {
            return Err(EnvError::OutOfRange { action, n: 2 });
        }
        if self.episode_over {
            return Err(EnvError::EpisodeOver);
        }
        self.state = dynamics(self.state, action == 1);
        let terminated = out_of_bounds(&self.state);
        self.episode_over = terminated;
        self.write_obs(obs);
        Ok(Transition {
            reward: 1.0,
            terminated,
            truncated: false,
        })
    }

    fn action_mask(&self, mask: &mut [bool]) {
        mask.fill(true);
    }
}

/// Every state variable uniform in `[−0.05, 0.05)`, drawn in state order (Gymnasium's reset).
pub(crate) fn initial_state(rng: &mut ChaCha8Rng) -> [f64; 4] {
    std::array::from_fn(|_| rng.random_range(-0.05..0.05))
}

/// One Euler step of the cart and pole, pushed right or left.
#[inline(always)]
pub(crate) fn dynamics(state: [f64; 4], push_right: bool) -> [f64; 4] {
    // The operations and their order are Gymnasium's, so that the f64 results are the same
    // bit for bit (no fused multiply-add: Rust never contracts on its own).
    let total_mass = MASS_POLE + MASS_CART;
    let polemass_length = MASS_POLE * LENGTH;
    let [x, x_dot, theta, theta_dot] = state;
    let force = if push_right { FORCE_MAG } else { -FORCE_MAG };
    let costheta = theta.cos();
    let sintheta = theta.sin();
    let temp = (force + polemass_length * (theta_dot * theta_dot) * sintheta) / total_mass;
    let thetaacc = (GRAVITY * sintheta - costheta * temp)
        / (LENGTH * (4.0 / 3.0 - MASS_POLE * (costheta * costheta) / total_mass));
    let xacc = temp - polemass_length * thetaacc * costheta / total_mass;
    [
        x + TAU * x_dot,
        x_dot + TAU * xacc,
        theta + TAU * theta_dot,
        theta_dot + TAU * thetaacc,
    ]
}

/// The pole fell past 12° or the cart left the track (the episode terminates).
#[inline(always)]
pub(crate) fn out_of_bounds(state: &[f64; 4]) -> bool {
    let [x, _, theta, _] = *state;
    let theta_threshold = theta_threshold_rad();
    !(-X_THRESHOLD..=X_THRESHOLD).contains(&x)
        || !(-theta_threshold..=theta_threshold).contains(&theta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::{EpisodeStatistics, EpisodeStats};

    #[test]
    fn one_step_from_a_known_state_matches_the_hand_computed_values() {
        // From (0, 0, 0, 0) pushing right: sin = 0, cos = 1, temp = 10/1.1,
        // thetaacc = -temp / (0.5 * (4/3 - 0.1/1.1)), xacc = temp - 0.05 * thetaacc / 1.1.
        // Euler: positions advance by the old velocities (0), velocities by 0.02 * acc.
        let mut env = CartPole::new(0);
        env.set_state([0.0; 4]);
        let mut obs = [0.0; 4];
        let t = env.step(1, &mut obs).unwrap();
        let temp = 10.0 / 1.1;
        let thetaacc = -temp / (0.5 * (4.0 / 3.0 - 0.1 / 1.1));
        let xacc = temp - 0.05 * thetaacc / 1.1;
        assert!(
            (thetaacc - -14.634_146_341_463_415_f64).abs() < 1e-12,
            "{thetaacc}"
        );
        assert!((xacc - 9.756_097_560_975_61_f64).abs() < 1e-12, "{xacc}");
        let expected = [0.0, 0.195_121_95_f32, 0.0, -0.292_682_93_f32];
        for (o, e) in obs.iter().zip(expected) {
            assert!((o - e).abs() < 1e-7, "{obs:?} vs {expected:?}");
        }
        assert_eq!(
            t,
            Transition {
                reward: 1.0,
                terminated: false,
                truncated: false
            }
        );
    }

    #[test]
    fn terminates_beyond_the_angle_and_position_thresholds() {
        let mut obs = [0.0; 4];
        let mut env = CartPole::new(0);
        // theta = 0.2 moving at 1 rad/s crosses 12° (0.2094) after one step of 0.02 s.
        env.set_state([0.0, 0.0, 0.2, 1.0]);
        assert!(env.step(0, &mut obs).unwrap().terminated);
        assert_eq!(env.step(0, &mut obs), Err(EnvError::EpisodeOver));
        env.set_state([2.39, 1.0, 0.0, 0.0]);
        assert!(env.step(1, &mut obs).unwrap().terminated);
        env.set_state([-2.39, -1.0, 0.0, 0.0]);
        let t = env.step(0, &mut obs).unwrap();
        assert!(t.terminated && !t.truncated);
        assert_eq!(t.reward, 1.0, "the terminating step is rewarded too");
    }

    #[test]
    fn step_before_reset_and_out_of_range_actions_are_errors() {
        let mut env = CartPole::new(0);
        let mut obs = [0.0; 4];
        assert_eq!(env.step(0, &mut obs), Err(EnvError::EpisodeOver));
        env.reset(Some(1), &mut obs);
        let before = env.state();
        assert_eq!(
            env.step(2, &mut obs),
            Err(EnvError::OutOfRange { action: 2, n: 2 })
        );
        assert_eq!(
            env.state(),
            before,
            "a refused step leaves the state unchanged"
        );
    }

    #[test]
    fn observation_space_matches_gymnasium() {
        let env = CartPole::new(0);
        let space = env.observation_space();
        assert_eq!(
            space.high,
            vec![4.8, f32::INFINITY, 0.418_879_03, f32::INFINITY]
        );
        assert_eq!(
            space.low,
            vec![-4.8, f32::NEG_INFINITY, -0.418_879_03, f32::NEG_INFINITY]
        );
        assert_eq!(env.action_space(), Discrete { n: 2 });
        assert_eq!(env.obs_layout().dim(), 4);
    }

    #[test]
    fn reset_state_is_uniform_in_five_hundredths() {
        let mut env = CartPole::new(3);
        let mut obs = [0.0; 4];
        let (mut min, mut max) = (f64::MAX, f64::MIN);
        for _ in 0..2000 {
            env.reset(None, &mut obs);
            for s in env.state() {
                min = min.min(s);
                max = max.max(s);
            }
            assert!(obs.iter().zip(env.state()).all(|(o, s)| *o == s as f32));
        }
        assert!(min >= -0.05 && max < 0.05, "{min} {max}");
        assert!(
            min < -0.049 && max > 0.049,
            "the whole range is used: {min} {max}"
        );
    }

    #[test]
    fn same_seed_same_episode_different_seed_different_episode() {
        let rollout = |seed: u64| {
            let mut env = CartPole::v1(0);
            let mut obs = [0.0; 4];
            env.reset(Some(seed), &mut obs);
            let mut trajectory = vec![obs];
            for i in 0..30 {
                match env.step(i % 2, &mut obs) {
                    Ok(_) => trajectory.push(obs),
                    Err(_) => break,
                }
            }
            trajectory
        };
        assert_eq!(rollout(5), rollout(5));
        assert_ne!(rollout(5), rollout(6));
    }

    #[test]
    fn observations_stay_in_the_space_over_thousands_of_steps() {
        let mut env = CartPole::v1(11);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut obs = [0.0; 4];
        env.reset(Some(11), &mut obs);
        let mut num_episodes = 0;
        for _ in 0..20_000 {
            let t = env.step(rng.random_range(0..2), &mut obs).unwrap();
            assert!(env.observation_space().contains(&obs), "{obs:?}");
            if t.episode_over() {
                num_episodes += 1;
                env.reset(None, &mut obs);
                assert!(env.observation_space().contains(&obs));
            }
        }
        assert!(
            num_episodes > 100,
            "random actions end episodes quickly: {num_episodes}"
        );
    }

    #[test]
    fn cartpole_v1_is_truncated_at_500_steps() {
        // A PD controller on the pole angle and the cart keeps CartPole up for the whole
        // episode; the 500th step is truncated.
        let mut env = EpisodeStatistics::new(CartPole::v1(0));
        let mut obs = [0.0; 4];
        env.reset(Some(0), &mut obs);
        let mut last = Transition::default();
        for _ in 0..500 {
            last = env.step(balance(&obs), &mut obs).unwrap();
        }
        assert!(last.truncated && !last.terminated);
        assert_eq!(
            env.last_episode(),
            Some(&EpisodeStats {
                episode_return: 500.0,
                length: 500
            })
        );
    }

    /// A controller that balances CartPole indefinitely.
    fn balance(obs: &[f32]) -> usize {
        let u = 0.05 * obs[0] + 0.5 * obs[1] + 10.0 * obs[2] + 1.5 * obs[3];
        usize::from(u > 0.0)
    }
}
