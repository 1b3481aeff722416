//! The PPO update of CleanRL's `ppo.py` ("The 37 implementation details of PPO"), discrete
//! actions with invalid-action masking.
//!
//! Per update: `update_epochs` passes over the rollout in `num_minibatches` shuffled
//! minibatches; per minibatch: advantage normalisation, clipped surrogate objective, clipped
//! value loss, entropy bonus, one Adam step (eps 1e-5) after global gradient-norm clipping. An
//! epoch that ends with `approx_kl > target_kl` stops the update early. The learning rate is
//! annealed linearly to 0 over the run by the caller ([`annealed_lr`]).
//!
//! With `skip_forced`, steps whose mask leaves a single legal action (on `deeprm`, a wait
//! forced by a full machine: 58% of a random policy's decisions) never reach the learner: the
//! trainer's envs take them themselves. Those that still reach it (an episode's first state)
//! are left out of the policy loss, the entropy bonus, the advantage normalisation and the
//! logged `approx_kl`/`clipfrac`; they still carry rewards into GAE and train the critic.
//! Their policy gradient is zero either way; what changes is that they no longer dilute the
//! minibatch means and advantage statistics, nor cost inference and update time.
//!
//! The masks stored with each step are reused when re-evaluating the policy, so on the first
//! minibatch the new and old log-probabilities agree and the ratio is 1 (the update reports the
//! largest deviation, see [`UpdateStats::first_ratio_deviation`]).

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::distributions::MaskedCategorical;
use crate::episodes::{Baseline, Discount};
use crate::networks::Policy;
use crate::optim::Adam;
use crate::rollout::Batch;

/// The most envs a training run may step: each is a whole simulator (and a thread's worth of
/// work per step).
pub const MAX_ENVS: usize = 4_096;

/// The most decisions one fixed-length rollout may hold (its observations stay on the device:
/// 10⁷ × 100 floats is 4 GB).
pub const MAX_BATCH: usize = 10_000_000;

/// The `[ppo]` section of a training config (CleanRL's defaults in [`PpoConfig::default`]).
/// Missing keys take these defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Parallel environments.
    pub num_envs: usize,
    /// Steps per environment per rollout (batch = num_envs × num_steps).
    pub num_steps: usize,
    /// Adam learning rate (the start value when annealing).
    pub lr: f64,
    /// Anneal the learning rate linearly to 0 over the run.
    pub anneal_lr: bool,
    /// Discount factor γ.
    pub gamma: f64,
    /// GAE λ.
    pub gae_lambda: f64,
    /// Minibatches per epoch (minibatch = batch / num_minibatches).
    pub num_minibatches: usize,
    /// Passes over each rollout.
    pub update_epochs: usize,
    /// Normalise advantages per minibatch.
    pub norm_adv: bool,
    /// Surrogate clipping coefficient ε.
    pub clip_coef: f64,
    /// Clip the value loss around the old values with the same ε.
    pub clip_vloss: bool,
    /// Entropy bonus coefficient.
    pub ent_coef: f64,
    /// Value loss coefficient.
    pub vf_coef: f64,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    /// Stop the update after an epoch whose approximate KL exceeds this (none: never).
    #[serde(default)]
    pub target_kl: Option<f64>,
    /// Adam's ε (1e-5 as in CleanRL, not PyTorch's 1e-8).
    #[serde(default = "default_adam_eps")]
    pub adam_eps: f64,
    /// Running observation normalisation (saved with checkpoints).
    #[serde(default)]
    pub normalize_obs: bool,
    /// Rewards are multiplied by this before GAE (keeps value targets near unit scale on
    /// scheduling envs, whose returns are minus a sum of slowdowns). Logged returns are raw.
    pub reward_scale: f64,
    /// Divide rewards (after `reward_scale`) by the running standard deviation of the
    /// discounted return (SB3's `VecNormalize(norm_reward=True)`), see
    /// [`ReturnNormalizer`](crate::normalize::ReturnNormalizer).
    #[serde(default)]
    pub normalize_returns: bool,
    /// Steps with exactly one legal action are taken by the training envs themselves, their
    /// rewards added to the step before (they still count as env steps), and the few that
    /// remain (an episode's first state) are left out of the policy loss, the entropy bonus and
    /// the advantage statistics (they still count for GAE and the value loss).
    #[serde(default)]
    pub skip_forced: bool,
    /// Envs per same-workload group: with more than 1, consecutive groups of this many envs
    /// share every episode's seed and each rollout is one whole episode per env
    /// ([`episodes`](crate::episodes); `num_steps` is then unused).
    #[serde(default = "default_group_size")]
    pub group_size: usize,
    /// How advantages are computed: `"critic"` (GAE), `"group"` or `"group+critic"` (the
    /// group's return-to-go at the same simulated time; needs `group_size` ≥ 2).
    #[serde(default)]
    pub baseline: Baseline,
    /// `"decision"`: `gamma` per decision (CleanRL); `"clock"`: `gamma` per unit of the env's
    /// simulated clock (per second on clusters, per time step on DeepRM), so a burst of
    /// decisions at one moment does not discount what follows it (envs without a clock count
    /// one unit per decision).
    #[serde(default)]
    pub discount_by: DiscountBy,
}

/// What `gamma` discounts per: see [`PpoConfig::discount_by`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountBy {
    #[default]
    Decision,
    Clock,
}

fn default_group_size() -> usize {
    1
}

fn default_adam_eps() -> f64 {
    1e-5
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            num_envs: 4,
            num_steps: 128,
            lr: 2.5e-4,
            anneal_lr: true,
            gamma: 0.99,
            gae_lambda: 0.95,
            num_minibatches: 4,
            update_epochs: 4,
            norm_adv: true,
            clip_coef: 0.2,
            clip_vloss: true,
            ent_coef: 0.01,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            target_kl: None,
            adam_eps: 1e-5,
            normalize_obs: false,
            reward_scale: 1.0,
            normalize_returns: false,
            skip_forced: false,
            group_size: 1,
            baseline: Baseline::Critic,
            discount_by: DiscountBy::Decision,
        }
    }
}

impl PpoConfig {
    /// Decisions per rollout with fixed-length rollouts (whole-episode rollouts, with
    /// `group_size` > 1, vary).
    pub fn batch_size(&self) -> usize {
        self.num_envs.saturating_mul(self.num_steps)
    }

    /// The discount of whole-episode rollouts.
    pub fn discount(&self) -> Discount {
        Discount {
            gamma: self.gamma,
            by_clock: self.discount_by == DiscountBy::Clock,
        }
    }

    /// Whether rollouts are whole episodes of same-workload groups.
    pub fn whole_episodes(&self) -> bool {
        self.group_size > 1
    }

    pub fn minibatch_size(&self) -> usize {
        self.batch_size() / self.num_minibatches.max(1)
    }

    /// Every problem with the values, one message per problem, naming the key.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let mut check = |ok: bool, msg: String| {
            if !ok {
                errors.push(msg);
            }
        };
        check(
            (1..=MAX_ENVS).contains(&self.num_envs),
            format!(
                "ppo.num_envs must be in 1..={MAX_ENVS}, got {}",
                self.num_envs
            ),
        );
        check(
            self.batch_size() <= MAX_BATCH,
            format!(
                "ppo.num_envs × ppo.num_steps = {} is more than {MAX_BATCH} decisions per rollout \
                 (the rollout keeps an observation of each on the device)",
                self.batch_size()
            ),
        );
        check(
            self.num_steps >= 1,
            "ppo.num_steps must be at least 1".into(),
        );
        check(
            self.lr > 0.0 && self.lr.is_finite(),
            format!("ppo.lr must be positive, got {}", self.lr),
        );
        check(
            (0.0..=1.0).contains(&self.gamma),
            format!("ppo.gamma must be in [0, 1], got {}", self.gamma),
        );
        check(
            (0.0..=1.0).contains(&self.gae_lambda),
            format!("ppo.gae_lambda must be in [0, 1], got {}", self.gae_lambda),
        );
        check(
            self.num_minibatches >= 1,
            "ppo.num_minibatches must be at least 1".into(),
        );
        check(
            self.whole_episodes() || self.num_minibatches <= self.batch_size(),
            format!(
                "ppo.num_minibatches ({}) exceeds the batch size num_envs × num_steps = {}",
                self.num_minibatches,
                self.batch_size()
            ),
        );
        check(
            self.update_epochs >= 1,
            "ppo.update_epochs must be at least 1".into(),
        );
        check(
            self.clip_coef > 0.0,
            format!("ppo.clip_coef must be positive, got {}", self.clip_coef),
        );
        check(
            self.ent_coef >= 0.0,
            format!("ppo.ent_coef must be non-negative, got {}", self.ent_coef),
        );
        check(
            self.vf_coef >= 0.0,
            format!("ppo.vf_coef must be non-negative, got {}", self.vf_coef),
        );
        check(
            self.max_grad_norm > 0.0,
            format!(
                "ppo.max_grad_norm must be positive, got {}",
                self.max_grad_norm
            ),
        );
        check(
            self.reward_scale > 0.0 && self.reward_scale.is_finite(),
            format!(
                "ppo.reward_scale must be positive, got {}",
                self.reward_scale
            ),
        );
        check(
            self.adam_eps > 0.0,
            format!("ppo.adam_eps must be positive, got {}", self.adam_eps),
        );
        check(
            self.group_size >= 1 && self.num_envs.is_multiple_of(self.group_size.max(1)),
            format!(
                "ppo.group_size ({}) must be at least 1 and divide ppo.num_envs ({})",
                self.group_size, self.num_envs
            ),
        );
        check(
            !self.baseline.uses_group() || self.group_size >= 2,
            "ppo.baseline = \"group\" or \"group+critic\" needs ppo.group_size >= 2 (a group to compare with)".into(),
        );
        check(
            !(self.whole_episodes() && self.normalize_returns),
            "ppo.normalize_returns cannot be combined with ppo.group_size > 1 (whole-episode rollouts)".into(),
        );
        if let Some(kl) = self.target_kl {
            check(
                kl > 0.0,
                format!("ppo.target_kl must be positive when set, got {kl}"),
            );
        }
        errors
    }
}

/// CleanRL's linear annealing: `lr · (1 − done)`, where `done` is the fraction of the run
/// before this update (`(iteration − 1) / num_iterations` with fixed-length rollouts, env
/// steps so far / total steps with whole-episode ones).
pub fn annealed_lr(config: &PpoConfig, done: f64) -> f64 {
    if !config.anneal_lr {
        return config.lr;
    }
    (1.0 - done).max(0.0) * config.lr
}

/// The loss terms of one minibatch.
#[derive(Debug)]
pub struct Losses {
    pub total: Tensor,
    pub policy: Tensor,
    pub value: Tensor,
    pub entropy: Tensor,
    pub log_ratio: Tensor,
    pub ratio: Tensor,
}

/// The mean of `x` over the entries where `counted` (bool, same shape) is true, or over all
/// entries when `counted` is `None`; 0 when nothing counts.
pub fn masked_mean(x: &Tensor, counted: Option<&Tensor>) -> Tensor {
    match counted {
        None => x.mean(Kind::Float),
        Some(c) => {
            let w = c.to_kind(Kind::Float);
            (x * &w).sum(Kind::Float) / w.sum(Kind::Float).clamp_min(1.0)
        }
    }
}

/// The decisions of a `[batch, num_actions]` mask with more than one legal action.
pub fn unforced(masks: &Tensor) -> Tensor {
    masks.sum_dim_intlist(-1, false, Kind::Int64).gt(1)
}

/// CleanRL's PPO loss from new and old quantities (all `[minibatch]`). `counted` (bool
/// `[minibatch]`, or `None` for all) picks the decisions the policy loss, the entropy and the
/// advantage normalisation are taken over; the value loss is over the whole minibatch.
#[allow(clippy::too_many_arguments)]
pub fn ppo_loss(
    config: &PpoConfig,
    new_log_prob: &Tensor,
    old_log_prob: &Tensor,
    advantages: &Tensor,
    new_value: &Tensor,
    old_value: &Tensor,
    returns: &Tensor,
    entropy: &Tensor,
    counted: Option<&Tensor>,
) -> Losses {
    let log_ratio = new_log_prob - old_log_prob;
    let ratio = log_ratio.exp();
    let num_counted = match counted {
        None => advantages.size()[0],
        Some(c) => c.sum(Kind::Int64).int64_value(&[]),
    };
    let adv = if config.norm_adv && num_counted > 1 {
        let mean = masked_mean(advantages, counted);
        // Unbiased (n − 1) standard deviation over the counted entries, as `Tensor::std(true)`.
        let var = masked_mean(&(advantages - &mean).square(), counted) * num_counted as f64
            / (num_counted - 1) as f64;
        (advantages - mean) / (var.sqrt() + 1e-8)
    } else {
        advantages.shallow_clone()
    };
    let pg1 = -&adv * &ratio;
    let pg2 = -&adv * ratio.clamp(1.0 - config.clip_coef, 1.0 + config.clip_coef);
    let policy = masked_mean(&pg1.maximum(&pg2), counted);
    let value = if config.clip_vloss {
        let unclipped = (new_value - returns).square();
        let clipped =
            old_value + (new_value - old_value).clamp(-config.clip_coef, config.clip_coef);
        0.5 * unclipped
            .maximum(&(clipped - returns).square())
            .mean(Kind::Float)
    } else {
        0.5 * (new_value - returns).square().mean(Kind::Float)
    };
    let entropy = masked_mean(entropy, counted);
    let total = &policy - config.ent_coef * &entropy + config.vf_coef * &value;
    Losses {
        total,
        policy,
        value,
        entropy,
        log_ratio,
        ratio,
    }
}

/// What one update did, CleanRL's logged quantities (losses are those of the last minibatch).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateStats {
    pub policy_loss: f64,
    pub value_loss: f64,
    pub entropy: f64,
    pub old_approx_kl: f64,
    pub approx_kl: f64,
    /// Mean over minibatches of the fraction of ratios outside [1 − ε, 1 + ε].
    pub clipfrac: f64,
    pub explained_variance: f64,
    /// max |ratio − 1| on the very first minibatch (0 up to float rounding).
    pub first_ratio_deviation: f64,
    pub grad_norm: f64,
    pub num_minibatches: usize,
    pub stopped_early: bool,
    /// Fraction of the batch's decisions with exactly one legal action.
    pub forced_fraction: f64,
}

/// Why an update was abandoned.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PpoError {
    #[error(
        "non-finite loss at epoch {epoch}, minibatch {minibatch} (policy {policy}, value {value}, \
         entropy {entropy}); the update was abandoned before the optimizer step"
    )]
    NonFiniteLoss {
        epoch: usize,
        minibatch: usize,
        policy: f64,
        value: f64,
        entropy: f64,
    },
}

/// One PPO update over `batch`. `rng` shuffles the minibatches.
pub fn update<R: Rng>(
    config: &PpoConfig,
    policy: &Policy,
    optimizer: &mut Adam,
    batch: &Batch,
    lr: f64,
    rng: &mut R,
) -> Result<UpdateStats, PpoError> {
    update_with(config, policy, optimizer, batch, lr, rng, |_, _| None)
}

/// [`update`] with an extra loss term per minibatch: `extra_loss(indices, π)` gets the
/// minibatch's row indices into `batch` and the policy's distribution on them, and what it
/// returns is added to the minibatch's loss (the imitation prior's KL term).
pub fn update_with<R: Rng>(
    config: &PpoConfig,
    policy: &Policy,
    optimizer: &mut Adam,
    batch: &Batch,
    lr: f64,
    rng: &mut R,
    mut extra_loss: impl FnMut(&Tensor, &MaskedCategorical) -> Option<Tensor>,
) -> Result<UpdateStats, PpoError> {
    let device = policy.device();
    let batch_size = batch.len();
    // A whole-episode rollout can be shorter than the configured number of minibatches.
    let num_minibatches = config.num_minibatches.min(batch_size).max(1);
    let minibatch_size = batch_size / num_minibatches;
    let mut indices: Vec<i64> = (0..batch_size as i64).collect();
    let mut stats = UpdateStats::default();
    let mut clipfracs = Vec::new();
    let unforced_all = unforced(&batch.masks);
    stats.forced_fraction = 1.0
        - unforced_all
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[]);
    'epochs: for epoch in 0..config.update_epochs {
        indices.shuffle(rng);
        for mb in 0..num_minibatches {
            let idx = Tensor::from_slice(&indices[mb * minibatch_size..(mb + 1) * minibatch_size])
                .to_device(device);
            let (logits, new_value) = policy.forward(&batch.obs.index_select(0, &idx));
            let dist = MaskedCategorical::new(&logits, &batch.masks.index_select(0, &idx));
            let counted = config
                .skip_forced
                .then(|| unforced_all.index_select(0, &idx));
            let counted = counted.as_ref();
            let losses = ppo_loss(
                config,
                &dist.log_prob(&batch.actions.index_select(0, &idx)),
                &batch.log_probs.index_select(0, &idx),
                &batch.advantages.index_select(0, &idx),
                &new_value,
                &batch.values.index_select(0, &idx),
                &batch.returns.index_select(0, &idx),
                &dist.entropy(),
                counted,
            );
            let (policy_loss, value_loss, entropy) = (
                losses.policy.double_value(&[]),
                losses.value.double_value(&[]),
                losses.entropy.double_value(&[]),
            );
            if !(policy_loss.is_finite() && value_loss.is_finite() && entropy.is_finite()) {
                return Err(PpoError::NonFiniteLoss {
                    epoch,
                    minibatch: mb,
                    policy: policy_loss,
                    value: value_loss,
                    entropy,
                });
            }
            tch::no_grad(|| {
                let lr_ = &losses.log_ratio;
                stats.old_approx_kl = masked_mean(&-lr_, counted).double_value(&[]);
                stats.approx_kl =
                    masked_mean(&((&losses.ratio - 1.0) - lr_), counted).double_value(&[]);
                let clipped = (&losses.ratio - 1.0)
                    .abs()
                    .gt(config.clip_coef)
                    .to_kind(Kind::Float);
                clipfracs.push(masked_mean(&clipped, counted).double_value(&[]));
                if epoch == 0 && mb == 0 {
                    stats.first_ratio_deviation =
                        (&losses.ratio - 1.0).abs().max().double_value(&[]);
                }
            });
            let total = match extra_loss(&idx, &dist) {
                Some(extra) => &losses.total + extra,
                None => losses.total,
            };
            optimizer.zero_grad();
            total.backward();
            stats.grad_norm = optimizer.clip_grad_norm(config.max_grad_norm);
            optimizer.step(lr);
            stats.policy_loss = policy_loss;
            stats.value_loss = value_loss;
            stats.entropy = entropy;
            stats.num_minibatches += 1;
        }
        if let Some(target) = config.target_kl
            && stats.approx_kl > target
        {
            stats.stopped_early = epoch + 1 < config.update_epochs;
            break 'epochs;
        }
    }
    stats.clipfrac = clipfracs.iter().sum::<f64>() / clipfracs.len().max(1) as f64;
    stats.explained_variance = explained_variance(&batch.values, &batch.returns);
    Ok(stats)
}

/// `1 − Var(returns − values) / Var(returns)` (NaN when the returns have zero variance, as in
/// CleanRL).
pub fn explained_variance(values: &Tensor, returns: &Tensor) -> f64 {
    let var_y = returns.var(false).double_value(&[]);
    if var_y == 0.0 {
        return f64::NAN;
    }
    1.0 - (returns - values).var(false).double_value(&[]) / var_y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::networks::{Head, NetworkConfig};
    use crate::rollout::RolloutBuffer;
    use lepton_env::{ActionLayout, ObsLayout};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use tch::Device;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    /// Two samples, advantages not normalised, ε = 0.2.
    /// Sample 0: A = +1, ratio e^0.5 = 1.6487 → clipped to 1.2 → loss term −1.2.
    /// Sample 1: A = −1, ratio e^−0.5 = 0.6065 → max(0.6065, 0.8) = 0.8.
    /// Policy loss = (−1.2 + 0.8) / 2 = −0.2.
    /// Values: new (1.6, 0), old (1, 0), returns (1.5, 1): the clipped new value 1.2 gives
    /// max((1.6 − 1.5)², (1.2 − 1.5)²) = 0.09 and max(1, 1) = 1 → value loss 0.5 · 1.09 / 2 =
    /// 0.2725; unclipped 0.5 · (0.01 + 1) / 2 = 0.2525.
    #[test]
    fn clipped_losses_by_hand() {
        let config = PpoConfig {
            norm_adv: false,
            ent_coef: 0.1,
            ..PpoConfig::default()
        };
        let losses = ppo_loss(
            &config,
            &t(&[0.5, -0.5]),
            &t(&[0.0, 0.0]),
            &t(&[1.0, -1.0]),
            &t(&[1.6, 0.0]),
            &t(&[1.0, 0.0]),
            &t(&[1.5, 1.0]),
            &t(&[0.3, 0.5]),
            None,
        );
        assert!((losses.policy.double_value(&[]) + 0.2).abs() < 1e-6);
        assert!((losses.value.double_value(&[]) - 0.2725).abs() < 1e-6);
        // total = −0.2 − 0.1 · 0.4 + 0.5 · 0.2725 = −0.10375
        assert!((losses.total.double_value(&[]) + 0.103_75).abs() < 1e-6);
        let unclipped = PpoConfig {
            clip_vloss: false,
            ..config
        };
        let losses = ppo_loss(
            &unclipped,
            &t(&[0.5, -0.5]),
            &t(&[0.0, 0.0]),
            &t(&[1.0, -1.0]),
            &t(&[1.6, 0.0]),
            &t(&[1.0, 0.0]),
            &t(&[1.5, 1.0]),
            &t(&[0.3, 0.5]),
            None,
        );
        assert!((losses.value.double_value(&[]) - 0.2525).abs() < 1e-6);
    }

    /// `skip_forced` on a hand-made minibatch of four decisions, the last two forced (one
    /// legal action each, so their log-ratio is 0 and their entropy 0). Counted advantages
    /// (1, −1) normalise to ±1/√2 (mean 0, unbiased sd √2); the forced ones (5, 5) must not
    /// move those statistics. Ratios e^±0.1 stay inside the clip, so the policy loss is
    /// (−e^0.1 + e^−0.1) / (2√2) = −0.0708286 over the two counted decisions, the entropy
    /// (0.3 + 0.5) / 2 = 0.4; the value loss stays over all four:
    /// 0.5 · (0.25 + 0 + 0 + 4) / 4 = 0.53125.
    #[test]
    fn forced_decisions_are_left_out_of_the_policy_loss() {
        let masks = Tensor::from_slice(&[
            true, true, false, //
            true, false, true, //
            false, false, true, //
            true, false, false,
        ])
        .view([4, 3]);
        let counted = unforced(&masks);
        assert_eq!(
            Vec::<bool>::try_from(&counted).unwrap(),
            [true, true, false, false]
        );
        let config = PpoConfig {
            clip_vloss: false,
            ent_coef: 0.0,
            skip_forced: true,
            ..PpoConfig::default()
        };
        let loss = |counted: Option<&Tensor>, advantages: &[f32]| {
            ppo_loss(
                &config,
                &t(&[0.1, -0.1, 0.0, 0.0]),
                &t(&[0.0, 0.0, 0.0, 0.0]),
                &t(advantages),
                &t(&[0.5, 0.0, 1.0, 2.0]),
                &t(&[0.5, 0.0, 1.0, 2.0]),
                &t(&[1.0, 0.0, 1.0, 0.0]),
                &t(&[0.3, 0.5, 0.0, 0.0]),
                counted,
            )
        };
        let skipped = loss(Some(&counted), &[1.0, -1.0, 5.0, 5.0]);
        assert!((skipped.policy.double_value(&[]) + 0.070_828_588).abs() < 1e-6);
        assert!((skipped.entropy.double_value(&[]) - 0.4).abs() < 1e-6);
        assert!((skipped.value.double_value(&[]) - 0.531_25).abs() < 1e-6);
        // The forced decisions' advantages do not matter at all.
        let other = loss(Some(&counted), &[1.0, -1.0, -70.0, 3.0]);
        assert_eq!(
            skipped.policy.double_value(&[]),
            other.policy.double_value(&[])
        );
        // Without skipping they dilute the means and shift the advantage statistics.
        let all = loss(None, &[1.0, -1.0, 5.0, 5.0]);
        assert!((all.entropy.double_value(&[]) - 0.2).abs() < 1e-6);
        assert!((all.policy.double_value(&[]) + 0.070_828_588).abs() > 1e-3);
        // Nothing counted: no policy loss, no entropy, no NaN.
        let none = loss(
            Some(&Tensor::from_slice(&[false; 4])),
            &[1.0, -1.0, 5.0, 5.0],
        );
        assert_eq!(none.policy.double_value(&[]), 0.0);
        assert_eq!(none.entropy.double_value(&[]), 0.0);
    }

    #[test]
    fn annealing_is_linear_to_zero() {
        let config = PpoConfig::default();
        assert_eq!(annealed_lr(&config, 0.0), 2.5e-4);
        assert!((annealed_lr(&config, 3.0 / 4.0) - 2.5e-4 / 4.0).abs() < 1e-12);
        assert_eq!(annealed_lr(&config, 1.5), 0.0, "never negative");
        let flat = PpoConfig {
            anneal_lr: false,
            ..config
        };
        assert_eq!(annealed_lr(&flat, 3.0 / 4.0), 2.5e-4);
    }

    /// A rollout whose log-probs come from the policy itself, with masks: on the first
    /// minibatch new and old log-probs agree, so the ratio is 1 and nothing is clipped.
    fn self_consistent_batch(policy: &Policy, seed: u64) -> crate::rollout::Batch {
        let (steps, envs, dim, actions) = (8usize, 4usize, 3usize, 5usize);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut buf = RolloutBuffer::new(steps, envs, dim, actions, Device::Cpu);
        for step in 0..steps {
            let obs = Tensor::randn([envs as i64, dim as i64], (Kind::Float, Device::Cpu));
            let mask: Vec<bool> = (0..envs * actions)
                .map(|i| i % actions == 0 || rng.random_bool(0.5))
                .collect();
            let mask = Tensor::from_slice(&mask).view([envs as i64, actions as i64]);
            let (logits, values) = tch::no_grad(|| policy.forward(&obs));
            let dist = MaskedCategorical::new(&logits, &mask);
            let probs = Vec::<f32>::try_from(dist.probs().reshape([-1])).unwrap();
            let mask_vec = Vec::<bool>::try_from(mask.reshape([-1])).unwrap();
            let mut chosen = vec![0usize; envs];
            crate::distributions::sample_masked(&probs, &mask_vec, actions, &mut rng, &mut chosen);
            let chosen = Tensor::from_slice(&chosen.iter().map(|&a| a as i64).collect::<Vec<_>>());
            let log_probs = dist.log_prob(&chosen);
            buf.record_decision(step, &obs, &mask, &chosen, &log_probs, &values);
            let rewards: Vec<f32> = (0..envs).map(|_| rng.random_range(-1.0..1.0)).collect();
            let over: Vec<f32> = (0..envs)
                .map(|_| if rng.random_bool(0.1) { 1.0 } else { 0.0 })
                .collect();
            buf.record_outcome(step, &rewards, &over);
        }
        buf.finish(
            &Tensor::zeros([envs as i64], (Kind::Float, Device::Cpu)),
            0.99,
            0.95,
        )
    }

    #[test]
    fn ratio_is_one_on_the_first_minibatch() {
        tch::manual_seed(0);
        let policy = Policy::new(
            &NetworkConfig::default(),
            ObsLayout::flat(3),
            &ActionLayout::plain(5),
            Head::Logits,
            Device::Cpu,
        )
        .unwrap();
        let batch = self_consistent_batch(&policy, 1);
        let config = PpoConfig {
            num_envs: 4,
            num_steps: 8,
            ..PpoConfig::default()
        };
        let mut adam = Adam::new(policy.named_parameters(), config.adam_eps);
        let stats = update(
            &config,
            &policy,
            &mut adam,
            &batch,
            config.lr,
            &mut ChaCha8Rng::seed_from_u64(2),
        )
        .unwrap();
        assert!(
            stats.first_ratio_deviation < 1e-6,
            "{}",
            stats.first_ratio_deviation
        );
        assert_eq!(stats.num_minibatches, 16);
        assert!(stats.approx_kl.abs() < 1e-2);
        assert!(stats.clipfrac < 0.5);
        assert_eq!(adam.step, 16);
    }

    #[test]
    fn same_seed_gives_identical_updates_and_target_kl_stops_early() {
        let run = |target_kl: Option<f64>| {
            // Weights and the batch's observations both come from libtorch's global RNG.
            let (policy, batch) = crate::networks::with_torch_rng(Some(0), || {
                let policy = Policy::new(
                    &NetworkConfig::default(),
                    ObsLayout::flat(3),
                    &ActionLayout::plain(5),
                    Head::Logits,
                    Device::Cpu,
                )
                .unwrap();
                let batch = self_consistent_batch(&policy, 1);
                (policy, batch)
            });
            let config = PpoConfig {
                num_envs: 4,
                num_steps: 8,
                lr: 1e-2,
                target_kl,
                ..PpoConfig::default()
            };
            let mut adam = Adam::new(policy.named_parameters(), config.adam_eps);
            update(
                &config,
                &policy,
                &mut adam,
                &batch,
                config.lr,
                &mut ChaCha8Rng::seed_from_u64(2),
            )
            .unwrap()
        };
        assert_eq!(run(None), run(None));
        let early = run(Some(1e-9));
        assert!(early.stopped_early);
        assert_eq!(early.num_minibatches, 4);
    }
}
