//! Whole-episode rollouts of same-workload groups, and the advantages they allow.
//!
//! On scheduling envs the workload dominates the return: one episode's job sequence can make
//! every policy look good and the next every policy look bad, and a critic that sees only the
//! current queue cannot tell which sequence it is in. DeepRM, Decima and spark-sched-sim
//! therefore roll out several episodes on the *same* job sequence and subtract the group's
//! return-to-go at the same time (Mao et al., "Variance reduction for reinforcement learning in
//! input-driven environments", ICLR 2019): what is left is what the actions changed.
//!
//! Here envs come in groups of `group_size` consecutive envs that share every episode's seed;
//! each rollout plays exactly one whole episode per env ([`EpisodeBuffer`]), and
//! [`EpisodeBuffer::finish`] computes one of three advantages ([`Baseline`]):
//! - `critic`: GAE on the whole episodes (the control: same rollouts, no group baseline);
//! - `group`: `A_t = G_t − b_t`, where `G_t` is the discounted return-to-go and `b_t` the mean,
//!   over the *other* members of the group, of their return-to-go at the same simulated time
//!   (leave-one-out, so the baseline does not depend on the member's own actions); the critic
//!   is still trained on `G_t`, for its explained variance;
//! - `group+critic`: the critic learns what the group baseline leaves, `y_t = G_t − b_t`, and
//!   `A_t = y_t − V(s_t)`.
//!
//! Rewards are discounted by γ per decision or, with `ppo.discount_by = "clock"`, by γ per unit
//! of simulated time between decisions ([`Discount`]).
//!
//! A member's return-to-go at a time `τ` between two of its decisions is interpolated linearly
//! (the reward of a decision accrues until the next one); before its first decision it is the
//! first one's, after its last decision the last one's. The times are the envs'
//! [`clock`](lepton_env::Env::clock), or the decision index for envs without one.

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::rollout::{Batch, Discounts, compute_gae};

/// How advantages are computed from whole-episode group rollouts (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Baseline {
    /// GAE with the critic only.
    #[default]
    #[serde(rename = "critic")]
    Critic,
    /// The group's leave-one-out return-to-go at the same simulated time.
    #[serde(rename = "group")]
    Group,
    /// The group baseline, then the critic on what it leaves.
    #[serde(rename = "group+critic")]
    GroupCritic,
}

impl Baseline {
    pub fn uses_group(self) -> bool {
        matches!(self, Baseline::Group | Baseline::GroupCritic)
    }
}

/// One env's episode: what each decision saw and did, and what followed.
#[derive(Debug, Default)]
struct Trace {
    obs: Vec<f32>,
    masks: Vec<bool>,
    actions: Vec<i64>,
    log_probs: Vec<f32>,
    values: Vec<f32>,
    rewards: Vec<f32>,
    clocks: Vec<f64>,
}

/// One whole episode per env, grown step by step on the CPU, turned into a [`Batch`] once
/// every env's episode has ended.
#[derive(Debug)]
pub struct EpisodeBuffer {
    obs_dim: usize,
    num_actions: usize,
    traces: Vec<Trace>,
}

impl EpisodeBuffer {
    pub fn new(num_envs: usize, obs_dim: usize, num_actions: usize) -> Self {
        Self {
            obs_dim,
            num_actions,
            traces: (0..num_envs).map(|_| Trace::default()).collect(),
        }
    }

    /// Decisions recorded so far, over all envs.
    pub fn len(&self) -> usize {
        self.traces.iter().map(|t| t.actions.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records env `env`'s decision: its observation row (as the policy saw it), mask row,
    /// action, log-probability, value estimate and clock (`None`: the decision's index in the
    /// episode).
    #[allow(clippy::too_many_arguments)]
    pub fn record_decision(
        &mut self,
        env: usize,
        obs: &[f32],
        mask: &[bool],
        action: usize,
        log_prob: f32,
        value: f32,
        clock: Option<f64>,
    ) {
        debug_assert_eq!((obs.len(), mask.len()), (self.obs_dim, self.num_actions));
        let t = &mut self.traces[env];
        let clock = clock.unwrap_or(t.actions.len() as f64);
        t.obs.extend_from_slice(obs);
        t.masks.extend_from_slice(mask);
        t.actions.push(action as i64);
        t.log_probs.push(log_prob);
        t.values.push(value);
        t.clocks.push(clock);
    }

    /// Records the reward that followed env `env`'s last decision (a truncation's bootstrap
    /// already added).
    pub fn record_reward(&mut self, env: usize, reward: f32) {
        self.traces[env].rewards.push(reward);
    }

    /// Advantages and value targets for every env's episode, then one flat batch on `device`
    /// (env 0's decisions first). Clears the buffer for the next rollout.
    ///
    /// # Panics
    /// If an env has a decision without a reward, or (for group baselines) the number of envs
    /// is not a multiple of `group_size`: collector bugs, not input.
    pub fn finish(
        &mut self,
        baseline: Baseline,
        group_size: usize,
        discount: Discount,
        gae_lambda: f64,
        device: Device,
    ) -> Batch {
        let episodes: Vec<Episode<'_>> = self
            .traces
            .iter()
            .map(|t| {
                assert_eq!(t.rewards.len(), t.actions.len(), "one reward per decision");
                Episode {
                    rewards: &t.rewards,
                    values: &t.values,
                    clocks: &t.clocks,
                }
            })
            .collect();
        let (advantages, returns) =
            advantages_and_targets(&episodes, baseline, group_size, discount, gae_lambda);
        let cat_f32 = |f: fn(&Trace) -> &Vec<f32>| -> Vec<f32> {
            self.traces
                .iter()
                .flat_map(|t| f(t).iter().copied())
                .collect()
        };
        let (obs, log_probs, values) = (
            cat_f32(|t| &t.obs),
            cat_f32(|t| &t.log_probs),
            cat_f32(|t| &t.values),
        );
        let masks: Vec<bool> = self
            .traces
            .iter()
            .flat_map(|t| t.masks.iter().copied())
            .collect();
        let actions: Vec<i64> = self
            .traces
            .iter()
            .flat_map(|t| t.actions.iter().copied())
            .collect();
        let rows = actions.len() as i64;
        let on = |t: Tensor| t.to_device(device);
        let batch = Batch {
            obs: on(Tensor::from_slice(&obs).view([rows, self.obs_dim as i64])),
            masks: on(Tensor::from_slice(&masks).view([rows, self.num_actions as i64])),
            actions: on(Tensor::from_slice(&actions)),
            log_probs: on(Tensor::from_slice(&log_probs)),
            values: on(Tensor::from_slice(&values)),
            advantages: on(Tensor::from_slice(&advantages)),
            returns: on(Tensor::from_slice(&returns)),
        };
        for t in &mut self.traces {
            *t = Trace::default();
        }
        batch
    }
}

/// One env's finished episode, as the advantage computation needs it.
#[derive(Clone, Copy, Debug)]
pub struct Episode<'a> {
    pub rewards: &'a [f32],
    pub values: &'a [f32],
    pub clocks: &'a [f64],
}

/// How future rewards are discounted: γ per decision, or γ per unit of the env's clock
/// (per second on clusters, per time step on DeepRM), so that a burst of decisions at one
/// moment does not discount what follows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Discount {
    pub gamma: f64,
    pub by_clock: bool,
}

impl Discount {
    /// The discount from a decision at clock `from` to the next at `to`: γ^(to − from) by the
    /// clock, γ per decision, and γ when either time is unknown (no next decision, or an env
    /// without a clock).
    pub fn between(self, from: Option<f64>, to: Option<f64>) -> f32 {
        match (from, to) {
            (Some(from), Some(to)) if self.by_clock => self.gamma.powf(to - from) as f32,
            _ => self.gamma as f32,
        }
    }

    /// The discount from each decision of an episode to the next (the last one's is γ; it
    /// multiplies nothing, the episode having ended).
    pub fn per_step(self, clocks: &[f64]) -> Vec<f32> {
        (0..clocks.len())
            .map(|t| self.between(Some(clocks[t]), clocks.get(t + 1).copied()))
            .collect()
    }
}

/// `(advantages, value targets)` of every decision of `episodes` (concatenated in order),
/// where episodes `g·k … g·k + k − 1` (k = `group_size`) played the same workload.
pub fn advantages_and_targets(
    episodes: &[Episode<'_>],
    baseline: Baseline,
    group_size: usize,
    discount: Discount,
    gae_lambda: f64,
) -> (Vec<f32>, Vec<f32>) {
    let discounts: Vec<Vec<f32>> = episodes
        .iter()
        .map(|e| discount.per_step(e.clocks))
        .collect();
    let returns: Vec<Vec<f64>> = episodes
        .iter()
        .zip(&discounts)
        .map(|(e, d)| returns_to_go(e.rewards, d))
        .collect();
    let (mut advantages, mut targets) = (Vec::new(), Vec::new());
    if baseline == Baseline::Critic {
        for (e, d) in episodes.iter().zip(&discounts) {
            let adv = episode_gae(e, d, gae_lambda);
            targets.extend(adv.iter().zip(e.values).map(|(a, v)| a + v));
            advantages.extend(adv);
        }
        return (advantages, targets);
    }
    assert!(
        group_size >= 2 && episodes.len().is_multiple_of(group_size),
        "{} episodes do not form groups of {group_size}",
        episodes.len()
    );
    for (j, e) in episodes.iter().enumerate() {
        let group = (j / group_size) * group_size..(j / group_size + 1) * group_size;
        for (t, (&g, &clock)) in returns[j].iter().zip(e.clocks).enumerate() {
            let others = group.clone().filter(|&m| m != j);
            let b = others
                .map(|m| return_at(episodes[m].clocks, &returns[m], clock))
                .sum::<f64>()
                / (group_size - 1) as f64;
            let residual = g - b;
            match baseline {
                Baseline::Group => {
                    advantages.push(residual as f32);
                    targets.push(g as f32);
                }
                Baseline::GroupCritic => {
                    advantages.push((residual - f64::from(e.values[t])) as f32);
                    targets.push(residual as f32);
                }
                Baseline::Critic => unreachable!("handled above"),
            }
        }
    }
    (advantages, targets)
}

/// `G_t = r_t + γ_t G_{t+1}`, `G` after the last decision 0.
fn returns_to_go(rewards: &[f32], discounts: &[f32]) -> Vec<f64> {
    let mut g = vec![0.0; rewards.len()];
    let mut next = 0.0;
    for t in (0..rewards.len()).rev() {
        next = f64::from(rewards[t]) + f64::from(discounts[t]) * next;
        g[t] = next;
    }
    g
}

/// GAE over one whole episode (its last decision ends it), with the rollout module's formula.
fn episode_gae(e: &Episode<'_>, discounts: &[f32], gae_lambda: f64) -> Vec<f32> {
    let n = e.rewards.len() as i64;
    if n == 0 {
        return Vec::new();
    }
    let column = |x: &[f32]| Tensor::from_slice(x).view([n, 1]);
    let mut over = vec![0.0f32; n as usize];
    over[n as usize - 1] = 1.0;
    let adv = compute_gae(
        &column(e.rewards),
        &column(e.values),
        &column(&over),
        &Tensor::zeros([1], (tch::Kind::Float, Device::Cpu)),
        Discounts::PerStep(&column(discounts)),
        gae_lambda,
    );
    Vec::<f32>::try_from(adv.reshape([-1])).expect("advantages are float")
}

/// A member's return-to-go at time `clock`: linear between its decisions, its first value
/// before them, its last value after them.
fn return_at(clocks: &[f64], returns: &[f64], clock: f64) -> f64 {
    let s = clocks.partition_point(|&c| c < clock);
    match s {
        _ if returns.is_empty() => 0.0,
        0 => returns[0],
        s if s == returns.len() => returns[s - 1],
        s => {
            // clocks[s − 1] < clock ≤ clocks[s], so the span is positive.
            let w = (clock - clocks[s - 1]) / (clocks[s] - clocks[s - 1]);
            returns[s - 1] + w * (returns[s] - returns[s - 1])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_decision(gamma: f64) -> Discount {
        Discount {
            gamma,
            by_clock: false,
        }
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    /// Two members of one group, γ = 1. Worked by hand:
    ///   member 0: clocks 0, 10, 20, rewards −1, −2, −3 → G = −6, −5, −3
    ///   member 1: clocks 0, 15,     rewards −4, −1     → G = −5, −1
    /// member 1 at τ = 0: −5; at τ = 10 (between 0 and 15): −5 + (10/15)·4 = −2.3333;
    ///   at τ = 20 (after its last decision): −1.
    ///   → member 0's advantages −6+5 = −1, −5+2.3333 = −2.6667, −3+1 = −2.
    /// member 0 at τ = 0: −6; at τ = 15 (between 10 and 20): −5 + 0.5·2 = −4.
    ///   → member 1's advantages −5+6 = 1, −1+4 = 3.
    #[test]
    fn group_baseline_is_the_others_return_at_the_same_time() {
        let v0 = [1.0f32, 1.0, 1.0];
        let v1 = [0.5f32, 0.5];
        let episodes = [
            Episode {
                rewards: &[-1.0, -2.0, -3.0],
                values: &v0,
                clocks: &[0.0, 10.0, 20.0],
            },
            Episode {
                rewards: &[-4.0, -1.0],
                values: &v1,
                clocks: &[0.0, 15.0],
            },
        ];
        let (adv, targets) =
            advantages_and_targets(&episodes, Baseline::Group, 2, per_decision(1.0), 0.95);
        assert!(close(&adv, &[-1.0, -2.666_667, -2.0, 1.0, 3.0]), "{adv:?}");
        assert!(
            close(&targets, &[-6.0, -5.0, -3.0, -5.0, -1.0]),
            "{targets:?}"
        );
        // group+critic: the critic's target is what the group baseline leaves, and the
        // advantage subtracts the critic's estimate of it.
        let (adv, targets) =
            advantages_and_targets(&episodes, Baseline::GroupCritic, 2, per_decision(1.0), 0.95);
        assert!(
            close(&targets, &[-1.0, -2.666_667, -2.0, 1.0, 3.0]),
            "{targets:?}"
        );
        assert!(close(&adv, &[-2.0, -3.666_667, -3.0, 0.5, 2.5]), "{adv:?}");
    }

    /// Groups do not mix: with two groups of two, each member's baseline is its partner's.
    /// γ = 0.5: G of rewards (2, 2) is (3, 2).
    #[test]
    fn groups_are_consecutive_envs_and_discounted() {
        let episodes = [
            (&[2.0f32, 2.0][..], &[0.0f64, 1.0][..]),
            (&[0.0, 0.0], &[0.0, 1.0]),
            (&[100.0, 100.0], &[0.0, 1.0]),
            (&[100.0, 100.0], &[0.0, 1.0]),
        ]
        .map(|(rewards, clocks)| Episode {
            rewards,
            values: &[0.0, 0.0],
            clocks,
        });
        let (adv, _) =
            advantages_and_targets(&episodes, Baseline::Group, 2, per_decision(0.5), 1.0);
        assert!(
            close(&adv, &[3.0, 2.0, -3.0, -2.0, 0.0, 0.0, 0.0, 0.0]),
            "{adv:?}"
        );
    }

    /// The control: plain GAE on each whole episode. One episode, γ = 0.5, λ = 0.5,
    /// rewards 1, 2, values 1, 2: δ₁ = 2 − 2 = 0 (last step), δ₀ = 1 + 0.5·2 − 1 = 1,
    /// A = (1 + 0.25·0, 0) = (1, 0), targets A + V = (2, 2).
    #[test]
    fn critic_baseline_is_gae_over_whole_episodes() {
        let episodes = [Episode {
            rewards: &[1.0, 2.0],
            values: &[1.0, 2.0],
            clocks: &[0.0, 1.0],
        }];
        let (adv, targets) =
            advantages_and_targets(&episodes, Baseline::Critic, 1, per_decision(0.5), 0.5);
        assert!(close(&adv, &[1.0, 0.0]), "{adv:?}");
        assert!(close(&targets, &[2.0, 2.0]), "{targets:?}");
    }

    /// Discounting by the clock: decisions at 0, 0 and 2 s with γ = 0.5 per second discount
    /// by 1 (same moment), 0.25 (two seconds) and, for the last, γ. Rewards 1, 1, 4 then give
    /// G = 1 + 1·(1 + 0.25·4) = 3, 2, 4 (per decision it would be 1 + 0.5·(1 + 0.5·4) = 2.5).
    #[test]
    fn discounting_by_the_clock() {
        let by_clock = Discount {
            gamma: 0.5,
            by_clock: true,
        };
        let clocks = [0.0, 0.0, 2.0];
        assert_eq!(by_clock.per_step(&clocks), [1.0, 0.25, 0.5]);
        assert_eq!(per_decision(0.5).per_step(&clocks), [0.5, 0.5, 0.5]);
        let episodes = [Episode {
            rewards: &[1.0, 1.0, 4.0],
            values: &[0.0; 3],
            clocks: &clocks,
        }];
        let (adv, _) = advantages_and_targets(&episodes, Baseline::Critic, 1, by_clock, 1.0);
        assert!(close(&adv, &[3.0, 2.0, 4.0]), "{adv:?}");
        let (adv, _) =
            advantages_and_targets(&episodes, Baseline::Critic, 1, per_decision(0.5), 1.0);
        assert!(close(&adv, &[2.5, 3.0, 4.0]), "{adv:?}");
    }

    #[test]
    fn return_at_interpolates_and_holds_the_ends() {
        let (clocks, returns) = ([5.0, 5.0, 9.0], [-8.0, -6.0, -2.0]);
        assert_eq!(return_at(&clocks, &returns, 0.0), -8.0);
        assert_eq!(
            return_at(&clocks, &returns, 5.0),
            -8.0,
            "the first decision at τ"
        );
        assert_eq!(return_at(&clocks, &returns, 7.0), -4.0);
        assert_eq!(return_at(&clocks, &returns, 99.0), -2.0);
        assert_eq!(return_at(&[], &[], 1.0), 0.0);
    }

    /// Rows come out env by env, with the advantages of the same rows, and the buffer is
    /// empty afterwards.
    #[test]
    fn finish_flattens_env_by_env_and_clears() {
        let mut buf = EpisodeBuffer::new(2, 1, 2);
        buf.record_decision(1, &[10.0], &[true, false], 0, -0.1, 0.0, None);
        buf.record_decision(0, &[20.0], &[true, true], 1, -0.2, 0.0, Some(0.0));
        buf.record_reward(0, -1.0);
        buf.record_reward(1, -3.0);
        buf.record_decision(0, &[21.0], &[false, true], 1, -0.3, 0.0, Some(4.0));
        buf.record_reward(0, -1.0);
        assert_eq!(buf.len(), 3);
        let batch = buf.finish(Baseline::Group, 2, per_decision(1.0), 1.0, Device::Cpu);
        assert_eq!(
            Vec::<f32>::try_from(batch.obs.reshape([-1])).unwrap(),
            [20.0, 21.0, 10.0]
        );
        assert_eq!(Vec::<i64>::try_from(&batch.actions).unwrap(), [1, 1, 0]);
        // env 0: G = −2, −1 against env 1's −3 (held): 1, 2; env 1: −3 against env 0 at τ = 0: −2 → −1.
        assert_eq!(
            Vec::<f32>::try_from(&batch.advantages).unwrap(),
            [1.0, 2.0, -1.0]
        );
        assert_eq!(batch.masks.size(), [3, 2]);
        assert!(buf.is_empty());
    }
}
