//! On-device rollout storage and generalised advantage estimation.
//!
//! Conventions: row `t` holds the observation an action was taken from, its action mask, the
//! action, its log-probability and value estimate, the reward received and `episode_over[t]`
//! (the step ended the episode, terminated or truncated). Truncation is bootstrapped by the
//! collector with [`bootstrap_truncated`], which adds γ·V(final observation) to the reward of a
//! truncated step (as Stable-Baselines3 does): a time limit is not part of the MDP. A
//! terminated step gets no bootstrap. GAE then simply stops at every episode end.

use tch::{Device, Kind, Tensor};

/// Adds γ·V(final observation) to the reward of every env whose episode was truncated and not
/// terminated on this step. `final_values` gets the indices of those envs (never called when
/// there are none) and returns the values of their final observations, in that order.
pub fn bootstrap_truncated(
    rewards: &mut [f32],
    terminated: &[bool],
    truncated: &[bool],
    gamma: f64,
    final_values: impl FnOnce(&[usize]) -> Vec<f32>,
) {
    let envs: Vec<usize> = (0..rewards.len())
        .filter(|&i| truncated[i] && !terminated[i])
        .collect();
    if envs.is_empty() {
        return;
    }
    let values = final_values(&envs);
    assert_eq!(
        values.len(),
        envs.len(),
        "one final value per truncated env"
    );
    for (&i, &v) in envs.iter().zip(&values) {
        rewards[i] += (gamma * f64::from(v)) as f32;
    }
}

/// Preallocated `[num_steps, num_envs, ...]` tensors on the training device.
#[derive(Debug)]
pub struct RolloutBuffer {
    pub num_steps: usize,
    pub num_envs: usize,
    pub obs: Tensor,
    pub masks: Tensor,
    pub actions: Tensor,
    pub log_probs: Tensor,
    pub values: Tensor,
    pub rewards: Tensor,
    pub episode_over: Tensor,
    /// Per-step discounts when they vary (discounting by elapsed simulated time); `None`: γ
    /// at every step.
    pub discounts: Option<Tensor>,
}

/// A rollout flattened to `[num_steps * num_envs, ...]` with its advantages and returns.
#[derive(Debug)]
pub struct Batch {
    pub obs: Tensor,
    pub masks: Tensor,
    pub actions: Tensor,
    pub log_probs: Tensor,
    pub values: Tensor,
    pub advantages: Tensor,
    pub returns: Tensor,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.actions.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RolloutBuffer {
    pub fn new(
        num_steps: usize,
        num_envs: usize,
        obs_dim: usize,
        num_actions: usize,
        device: Device,
    ) -> Self {
        let (t, n) = (num_steps as i64, num_envs as i64);
        let f = (Kind::Float, device);
        Self {
            num_steps,
            num_envs,
            obs: Tensor::zeros([t, n, obs_dim as i64], f),
            masks: Tensor::zeros([t, n, num_actions as i64], (Kind::Bool, device)),
            actions: Tensor::zeros([t, n], (Kind::Int64, device)),
            log_probs: Tensor::zeros([t, n], f),
            values: Tensor::zeros([t, n], f),
            rewards: Tensor::zeros([t, n], f),
            episode_over: Tensor::zeros([t, n], f),
            discounts: None,
        }
    }

    /// Stores what the policy saw and did at step `t` (all tensors already on the device).
    pub fn record_decision(
        &mut self,
        t: usize,
        obs: &Tensor,
        masks: &Tensor,
        actions: &Tensor,
        log_probs: &Tensor,
        values: &Tensor,
    ) {
        let t = t as i64;
        self.obs.get(t).copy_(obs);
        self.masks.get(t).copy_(masks);
        self.actions.get(t).copy_(actions);
        self.log_probs.get(t).copy_(log_probs);
        self.values.get(t).copy_(values);
    }

    /// Stores the outcome of step `t`: rewards (bootstrap already added for truncations) and
    /// whether each env's episode ended.
    pub fn record_outcome(&mut self, t: usize, rewards: &[f32], episode_over: &[f32]) {
        let device = self.rewards.device();
        let t = t as i64;
        self.rewards
            .get(t)
            .copy_(&Tensor::from_slice(rewards).to_device(device));
        self.episode_over
            .get(t)
            .copy_(&Tensor::from_slice(episode_over).to_device(device));
    }

    /// Stores the discount between step `t` and the next decision of each env (used instead
    /// of γ once any step has one).
    pub fn record_discounts(&mut self, t: usize, discounts: &[f32]) {
        let device = self.rewards.device();
        let all = self
            .discounts
            .get_or_insert_with(|| self.rewards.zeros_like());
        all.get(t as i64)
            .copy_(&Tensor::from_slice(discounts).to_device(device));
    }

    /// Computes GAE and flattens the rollout. `next_values` is V of the observation after the
    /// last step (ignored for envs whose last step ended an episode).
    pub fn finish(&self, next_values: &Tensor, gamma: f64, gae_lambda: f64) -> Batch {
        let discounts = match &self.discounts {
            Some(d) => Discounts::PerStep(d),
            None => Discounts::Constant(gamma),
        };
        let advantages = compute_gae(
            &self.rewards,
            &self.values,
            &self.episode_over,
            next_values,
            discounts,
            gae_lambda,
        );
        let returns = &advantages + &self.values;
        let obs_dim = self.obs.size()[2];
        let num_actions = self.masks.size()[2];
        Batch {
            obs: self.obs.reshape([-1, obs_dim]),
            masks: self.masks.reshape([-1, num_actions]),
            actions: self.actions.reshape([-1]),
            log_probs: self.log_probs.reshape([-1]),
            values: self.values.reshape([-1]),
            advantages: advantages.reshape([-1]),
            returns: returns.reshape([-1]),
        }
    }
}

/// The discount between a decision and the next.
#[derive(Clone, Copy, Debug)]
pub enum Discounts<'a> {
    /// γ at every step.
    Constant(f64),
    /// `[T, N]`: γ raised to the simulated time between decision t and the next.
    PerStep(&'a Tensor),
}

/// Generalised advantage estimation over `[T, N]` tensors:
/// `δ_t = r_t + γ_t V_{t+1} (1 − over_t) − V_t`, `A_t = δ_t + γ_t λ (1 − over_t) A_{t+1}`,
/// with `V_T = next_values`.
pub fn compute_gae(
    rewards: &Tensor,
    values: &Tensor,
    episode_over: &Tensor,
    next_values: &Tensor,
    discounts: Discounts<'_>,
    gae_lambda: f64,
) -> Tensor {
    let num_steps = rewards.size()[0];
    let advantages = rewards.zeros_like();
    let mut last_gae = next_values.zeros_like();
    for t in (0..num_steps).rev() {
        let not_over = 1.0 - episode_over.get(t);
        let next_value = if t + 1 == num_steps {
            next_values.shallow_clone()
        } else {
            values.get(t + 1)
        };
        let (delta, decay) = match discounts {
            Discounts::Constant(gamma) => (
                rewards.get(t) + gamma * &next_value * &not_over - values.get(t),
                gamma * gae_lambda * &not_over,
            ),
            Discounts::PerStep(d) => {
                let gamma = d.get(t);
                (
                    rewards.get(t) + &gamma * &next_value * &not_over - values.get(t),
                    &gamma * gae_lambda * &not_over,
                )
            }
        };
        last_gae = delta + decay * &last_gae;
        advantages.get(t).copy_(&last_gae);
    }
    advantages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t2(v: &[f32], n: i64) -> Tensor {
        Tensor::from_slice(v).view([-1, n])
    }

    /// Env 0 runs on, env 1 hits the time limit (bootstrap: 2 + 0.9 · 10 = 11), env 2
    /// terminates on the same step it is truncated (no bootstrap: the MDP ended).
    #[test]
    fn truncation_is_bootstrapped_and_termination_is_not() {
        let mut rewards = [1.0f32, 2.0, 3.0];
        let mut asked = Vec::new();
        bootstrap_truncated(
            &mut rewards,
            &[false, false, true],
            &[false, true, true],
            0.9,
            |envs| {
                asked = envs.to_vec();
                vec![10.0]
            },
        );
        assert_eq!(asked, [1]);
        assert_eq!(rewards, [1.0, 11.0, 3.0]);
        // Through GAE: one step that ended the episode, V(s) = 4: advantage 11 − 4 = 7.
        let adv = compute_gae(
            &t2(&[rewards[1]], 1),
            &t2(&[4.0], 1),
            &t2(&[1.0], 1),
            &Tensor::from_slice(&[99.0f32]),
            Discounts::Constant(0.9),
            0.95,
        );
        assert!((adv.double_value(&[0, 0]) - 7.0).abs() < 1e-6);
        // Nothing truncated: the value function is not even asked.
        let mut rewards = [1.0f32];
        bootstrap_truncated(&mut rewards, &[true], &[false], 0.9, |_| unreachable!());
        assert_eq!(rewards, [1.0]);
    }

    /// One env, three steps, the second step ends an episode; γ = 0.5, λ = 0.5.
    /// Worked by hand:
    ///   t=2: δ = 1 + 0.5·4 − 3 = 0                        A₂ = 0
    ///   t=1: over → δ = 2 − 2 = 0                          A₁ = 0
    ///   t=0: δ = 1 + 0.5·2 − 1 = 1, A₀ = 1 + 0.25·A₁ = 1
    /// and with no episode end:
    ///   A₂ = 0, t=1: δ = 2 + 0.5·3 − 2 = 1.5, A₁ = 1.5
    ///   t=0: δ = 1, A₀ = 1 + 0.25·1.5 = 1.375
    #[test]
    fn gae_by_hand() {
        let rewards = t2(&[1.0, 2.0, 1.0], 1);
        let values = t2(&[1.0, 2.0, 3.0], 1);
        let next = Tensor::from_slice(&[4.0f32]);
        let half = Discounts::Constant(0.5);
        let adv = compute_gae(
            &rewards,
            &values,
            &t2(&[0.0, 1.0, 0.0], 1),
            &next,
            half,
            0.5,
        );
        assert_eq!(
            Vec::<f32>::try_from(adv.reshape([-1])).unwrap(),
            vec![1.0, 0.0, 0.0]
        );
        let adv = compute_gae(
            &rewards,
            &values,
            &t2(&[0.0, 0.0, 0.0], 1),
            &next,
            half,
            0.5,
        );
        assert_eq!(
            Vec::<f32>::try_from(adv.reshape([-1])).unwrap(),
            vec![1.375, 1.5, 0.0]
        );
    }

    /// The last step of the rollout ends the episode: the next value is not used.
    #[test]
    fn gae_does_not_bootstrap_across_the_rollout_end_of_a_finished_episode() {
        let adv = compute_gae(
            &t2(&[1.0], 1),
            &t2(&[0.25], 1),
            &t2(&[1.0], 1),
            &Tensor::from_slice(&[100.0f32]),
            Discounts::Constant(0.9),
            0.95,
        );
        assert_eq!(adv.double_value(&[0, 0]), 0.75);
    }

    /// SB3-style check that GAE with λ = 1 and γ = 1 gives Monte-Carlo returns minus values,
    /// per env, with two envs in parallel.
    #[test]
    fn gae_lambda_one_is_monte_carlo() {
        // env 0 rewards 1,1,1 with an episode end at t=1; env 1 rewards 0,0,2, no end.
        let rewards = t2(&[1.0, 0.0, 1.0, 0.0, 1.0, 2.0], 2);
        let values = t2(&[0.5, 0.5, 0.5, 0.5, 0.5, 0.5], 2);
        let over = t2(&[0.0, 0.0, 1.0, 0.0, 0.0, 0.0], 2);
        let next = Tensor::from_slice(&[10.0f32, 1.0]);
        let adv = compute_gae(
            &rewards,
            &values,
            &over,
            &next,
            Discounts::Constant(1.0),
            1.0,
        );
        let returns = Vec::<f32>::try_from((adv + values).reshape([-1])).unwrap();
        // env 0: G0 = 1+1 = 2, G1 = 1, G2 = 1 + 10 = 11; env 1: G = 2+1 = 3 at every step.
        assert_eq!(returns, vec![2.0, 3.0, 1.0, 3.0, 11.0, 3.0]);
    }

    /// Per-step discounts (discounting by elapsed time): one env, rewards 1, 2, values 0, the
    /// second step ends the episode, λ = 1. With a discount of 0.5 from step 0 to step 1:
    /// A₁ = 2, A₀ = 1 + 0.5·2 = 2; with the constant 0.9: A₀ = 1 + 0.9·2 = 2.8.
    #[test]
    fn per_step_discounts_replace_gamma() {
        let mut buf = RolloutBuffer::new(2, 1, 1, 1, Device::Cpu);
        let zeros = Tensor::zeros([1], (Kind::Float, Device::Cpu));
        let obs = Tensor::zeros([1, 1], (Kind::Float, Device::Cpu));
        let mask = Tensor::from_slice(&[true]).view([1, 1]);
        for (t, (r, over)) in [(1.0, 0.0), (2.0, 1.0)].into_iter().enumerate() {
            buf.record_decision(t, &obs, &mask, &Tensor::from_slice(&[0i64]), &zeros, &zeros);
            buf.record_outcome(t, &[r], &[over]);
        }
        let constant = buf.finish(&zeros, 0.9, 1.0);
        assert_eq!(
            Vec::<f32>::try_from(&constant.advantages).unwrap(),
            [2.8, 2.0]
        );
        buf.record_discounts(0, &[0.5]);
        buf.record_discounts(1, &[0.9]);
        let per_step = buf.finish(&zeros, 0.9, 1.0);
        assert_eq!(
            Vec::<f32>::try_from(&per_step.advantages).unwrap(),
            [2.0, 2.0]
        );
    }

    #[test]
    fn buffer_flattens_time_major() {
        let mut buf = RolloutBuffer::new(2, 2, 1, 2, Device::Cpu);
        for t in 0..2 {
            let obs = Tensor::from_slice(&[t as f32, 10.0 + t as f32]).view([2, 1]);
            let masks = Tensor::from_slice(&[true, false, true, true]).view([2, 2]);
            let zeros = Tensor::zeros([2], (Kind::Float, Device::Cpu));
            let actions = Tensor::from_slice(&[0i64, 1]);
            buf.record_decision(t, &obs, &masks, &actions, &zeros, &zeros);
            buf.record_outcome(t, &[1.0, 1.0], &[0.0, 0.0]);
        }
        let batch = buf.finish(&Tensor::zeros([2], (Kind::Float, Device::Cpu)), 1.0, 1.0);
        assert_eq!(
            Vec::<f32>::try_from(batch.obs.reshape([-1])).unwrap(),
            vec![0.0, 10.0, 1.0, 11.0]
        );
        assert_eq!(
            Vec::<f32>::try_from(&batch.returns).unwrap(),
            vec![2.0, 2.0, 1.0, 1.0]
        );
        assert_eq!(batch.len(), 4);
    }
}
