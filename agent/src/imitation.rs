//! Imitation warm start, DeepRM's `pg_su` recipe: clone a heuristic's decisions into the
//! policy head (masked cross-entropy) and its discounted returns into the critic (MSE), then
//! let PPO continue from those weights, optionally pulled towards the frozen clone by a
//! KL(π_prior ‖ π) term whose weight anneals linearly to 0.
//!
//! This module is the pure part: the config, the losses, the cloning epochs over recorded
//! [`Demonstrations`] and the agreement of a policy with its teacher. Collecting the
//! demonstrations (running the teacher on training seeds) is `lepton-train`'s.

use lepton_env::schedulers;
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::distributions::MaskedCategorical;
use crate::networks::Policy;
use crate::optim::Adam;

/// The `[imitation]` config section (PPO only; the section's presence turns it on).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImitationConfig {
    /// The heuristic to clone, by registry name (`sjf`, `tetris`, `weighted:1:0.5`, ...).
    pub teacher: String,
    /// Env steps (teacher decisions) of demonstrations, in whole episodes on training seeds.
    pub steps: u64,
    /// Passes over the demonstrations.
    pub epochs: usize,
    /// Adam's learning rate while cloning (constant).
    pub lr: f64,
    /// Decisions per gradient step.
    pub batch_size: usize,
    /// Weight of the critic's 0.5·MSE to the teacher's discounted returns (`ppo.gamma`,
    /// rewards scaled by `ppo.reward_scale`, as PPO's critic sees them).
    pub value_coef: f64,
    /// Weight of KL(π_prior ‖ π) in the PPO loss at the first PPO step (prior = the frozen
    /// clone); 0 turns the term off.
    pub kl_coef: f64,
    /// Env steps of PPO over which `kl_coef` anneals linearly to 0.
    pub kl_anneal_steps: u64,
}

impl Default for ImitationConfig {
    fn default() -> Self {
        Self {
            teacher: "sjf".into(),
            steps: 100_000,
            epochs: 10,
            lr: 1e-3,
            batch_size: 256,
            value_coef: 0.5,
            kl_coef: 0.0,
            kl_anneal_steps: 0,
        }
    }
}

impl ImitationConfig {
    /// Every problem, one message each, naming the key.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if let Err(e) = schedulers::by_name(&self.teacher) {
            errors.push(format!("imitation.teacher: {e}"));
        }
        if self.steps == 0 {
            errors.push("imitation.steps must be positive".into());
        }
        if self.epochs == 0 {
            errors.push("imitation.epochs must be positive".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            errors.push(format!("imitation.lr must be positive, got {}", self.lr));
        }
        if self.batch_size == 0 {
            errors.push("imitation.batch_size must be positive".into());
        }
        if !(self.value_coef.is_finite() && self.value_coef >= 0.0) {
            errors.push(format!(
                "imitation.value_coef must be ≥ 0, got {}",
                self.value_coef
            ));
        }
        if !(self.kl_coef.is_finite() && self.kl_coef >= 0.0) {
            errors.push(format!(
                "imitation.kl_coef must be ≥ 0, got {}",
                self.kl_coef
            ));
        }
        if self.kl_coef > 0.0 && self.kl_anneal_steps == 0 {
            errors.push("imitation.kl_anneal_steps must be positive when kl_coef > 0".into());
        }
        errors
    }

    /// The KL weight after `ppo_steps` env steps of PPO: `kl_coef · (1 − ppo_steps /
    /// kl_anneal_steps)`, never below 0.
    pub fn kl_coef_at(&self, ppo_steps: u64) -> f64 {
        if self.kl_anneal_steps == 0 {
            return 0.0;
        }
        self.kl_coef * (1.0 - ppo_steps as f64 / self.kl_anneal_steps as f64).max(0.0)
    }
}

/// A teacher's recorded decisions, on the policy's device.
#[derive(Debug)]
pub struct Demonstrations {
    /// `[N, obs_dim]`, as the policy reads them (normalised if PPO normalises).
    pub obs: Tensor,
    /// `[N, num_actions]`, `true` = legal.
    pub masks: Tensor,
    /// `[N]` int64: the teacher's action.
    pub actions: Tensor,
    /// `[N]`: the teacher's discounted return from this decision to its episode's end.
    pub returns: Tensor,
}

impl Demonstrations {
    /// From flat row-major buffers (`obs` is `N × obs_dim`, `masks` is `N × num_actions`).
    pub fn from_rows(
        obs: &[f32],
        masks: &[bool],
        actions: &[i64],
        returns: &[f32],
        device: Device,
    ) -> Self {
        let n = actions.len() as i64;
        Self {
            obs: Tensor::from_slice(obs).view([n, -1]).to_device(device),
            masks: Tensor::from_slice(masks).view([n, -1]).to_device(device),
            actions: Tensor::from_slice(actions).to_device(device),
            returns: Tensor::from_slice(returns).to_device(device),
        }
    }

    pub fn len(&self) -> usize {
        self.actions.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Discounted returns-to-go of one episode's rewards: `G_t = r_t + γ G_{t+1}`, `G_T = 0`.
pub fn discounted_returns(rewards: &[f32], gamma: f64) -> Vec<f32> {
    let mut out = vec![0.0f32; rewards.len()];
    let mut acc = 0.0f64;
    for (g, &r) in out.iter_mut().zip(rewards).rev() {
        acc = r as f64 + gamma * acc;
        *g = acc as f32;
    }
    out
}

/// Mean over the batch of −log π(a | s), π the masked softmax of `logits` (`[B, A]`) under
/// `mask`, `a` = `actions` (`[B]` int64, each legal in its row).
pub fn masked_cross_entropy(logits: &Tensor, mask: &Tensor, actions: &Tensor) -> Tensor {
    -MaskedCategorical::new(logits, mask)
        .log_prob(actions)
        .mean(Kind::Float)
}

/// Mean over the batch of KL(π_prior ‖ π) = Σ_{legal a} p_prior(a) (log p_prior(a) − log π(a)),
/// from the prior's masked log-probabilities (`[B, A]`, no gradient) and π.
pub fn kl_to_prior(prior_log_probs: &Tensor, pi: &MaskedCategorical) -> Tensor {
    let terms = prior_log_probs.exp() * (prior_log_probs - pi.log_probs());
    terms
        .where_self(pi.mask(), &terms.zeros_like())
        .sum_dim_intlist(-1, false, Kind::Float)
        .mean(Kind::Float)
}

/// One pass of cloning, averaged over its minibatches, and the agreement after it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    /// Cross-entropy + `value_coef` × value loss.
    pub loss: f64,
    pub cross_entropy: f64,
    /// 0.5 · MSE of the critic to the teacher's returns.
    pub value_loss: f64,
    pub agreement: Agreement,
}

/// How often a policy's greedy action is the teacher's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Over every decision.
    pub all: f64,
    /// Over the decisions with at least two legal actions (the others agree by force).
    pub free: f64,
    /// How many decisions had a choice.
    pub num_free: usize,
}

/// The greedy decisions of `policy` ([`Policy::greedy`]) compared with the teacher's, in
/// chunks of `chunk` rows.
pub fn agreement(policy: &Policy, demos: &Demonstrations, chunk: usize) -> Agreement {
    let n = demos.len() as i64;
    let (mut same, mut same_free, mut num_free) = (0i64, 0i64, 0i64);
    tch::no_grad(|| {
        let mut start = 0i64;
        while start < n {
            let len = (chunk as i64).min(n - start);
            let masks = demos.masks.narrow(0, start, len);
            let greedy = policy.greedy(&demos.obs.narrow(0, start, len), &masks);
            let hit = greedy.eq_tensor(&demos.actions.narrow(0, start, len));
            let free = masks.sum_dim_intlist(-1, false, Kind::Int64).gt(1);
            same += hit.sum(Kind::Int64).int64_value(&[]);
            same_free += hit.logical_and(&free).sum(Kind::Int64).int64_value(&[]);
            num_free += free.sum(Kind::Int64).int64_value(&[]);
            start += len;
        }
    });
    Agreement {
        all: same as f64 / n.max(1) as f64,
        free: if num_free > 0 {
            same_free as f64 / num_free as f64
        } else {
            1.0
        },
        num_free: num_free as usize,
    }
}

/// Why cloning stopped.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ImitationError {
    #[error("no demonstrations to clone")]
    Empty,
    #[error(
        "non-finite cloning loss at epoch {epoch} (cross-entropy {cross_entropy}, value {value})"
    )]
    NonFiniteLoss {
        epoch: usize,
        cross_entropy: f64,
        value: f64,
    },
}

/// Clones `demos` into `policy`: `config.epochs` shuffled passes of minibatches of
/// `config.batch_size` (the last one of a pass may be smaller), each an Adam step at
/// `config.lr` on cross-entropy + `value_coef` · 0.5 · MSE, gradients clipped to
/// `max_grad_norm`. `on_epoch` sees each pass's statistics as it ends.
pub fn fit<R: Rng>(
    config: &ImitationConfig,
    policy: &Policy,
    optimizer: &mut Adam,
    demos: &Demonstrations,
    max_grad_norm: f64,
    rng: &mut R,
    mut on_epoch: impl FnMut(&EpochStats),
) -> Result<Vec<EpochStats>, ImitationError> {
    if demos.is_empty() {
        return Err(ImitationError::Empty);
    }
    let device = policy.device();
    let mut indices: Vec<i64> = (0..demos.len() as i64).collect();
    let mut out = Vec::with_capacity(config.epochs);
    for epoch in 0..config.epochs {
        indices.shuffle(rng);
        let (mut ce_sum, mut value_sum, mut num_batches) = (0.0, 0.0, 0usize);
        for chunk in indices.chunks(config.batch_size) {
            let idx = Tensor::from_slice(chunk).to_device(device);
            let (logits, values) = policy.forward(&demos.obs.index_select(0, &idx));
            let ce = masked_cross_entropy(
                &logits,
                &demos.masks.index_select(0, &idx),
                &demos.actions.index_select(0, &idx),
            );
            let value: Tensor = 0.5
                * (values - demos.returns.index_select(0, &idx))
                    .square()
                    .mean(Kind::Float);
            let (ce_v, value_v) = (ce.double_value(&[]), value.double_value(&[]));
            if !(ce_v.is_finite() && value_v.is_finite()) {
                return Err(ImitationError::NonFiniteLoss {
                    epoch,
                    cross_entropy: ce_v,
                    value: value_v,
                });
            }
            optimizer.zero_grad();
            (ce + config.value_coef * value).backward();
            optimizer.clip_grad_norm(max_grad_norm);
            optimizer.step(config.lr);
            ce_sum += ce_v;
            value_sum += value_v;
            num_batches += 1;
        }
        let k = num_batches as f64;
        let stats = EpochStats {
            epoch,
            loss: (ce_sum + config.value_coef * value_sum) / k,
            cross_entropy: ce_sum / k,
            value_loss: value_sum / k,
            agreement: agreement(policy, demos, 4096),
        };
        on_epoch(&stats);
        out.push(stats);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    /// Row 0: logits (0, ln 2, 0) with action 2 masked out, teacher took 1:
    /// π = (1/3, 2/3) → −ln(2/3). Row 1: logits (0, 0, 0), all legal, teacher took 2:
    /// −ln(1/3). Mean = (ln 1.5 + ln 3) / 2.
    #[test]
    fn masked_cross_entropy_by_hand() {
        let logits = Tensor::from_slice(&[0.0f32, 2f32.ln(), 0.0, 0.0, 0.0, 0.0]).view([2, 3]);
        let mask = Tensor::from_slice(&[true, true, false, true, true, true]).view([2, 3]);
        let actions = Tensor::from_slice(&[1i64, 2]);
        let ce = masked_cross_entropy(&logits, &mask, &actions).double_value(&[]);
        close(ce, (1.5f64.ln() + 3f64.ln()) / 2.0);
        // A masked-out logit, however large, changes nothing.
        let big = Tensor::from_slice(&[0.0f32, 2f32.ln(), 50.0, 0.0, 0.0, 0.0]).view([2, 3]);
        close(
            masked_cross_entropy(&big, &mask, &actions).double_value(&[]),
            ce,
        );
    }

    /// KL((1/2, 1/2, ·) ‖ (1/3, 2/3, ·)) = ½ ln(3/2) + ½ ln(3/4); 0 against itself.
    #[test]
    fn kl_to_prior_by_hand() {
        let mask = Tensor::from_slice(&[true, true, false]).view([1, 3]);
        let prior_logits = Tensor::from_slice(&[0.0f32, 0.0, 9.0]).view([1, 3]);
        let prior = MaskedCategorical::new(&prior_logits, &mask)
            .log_probs()
            .shallow_clone();
        let logits = Tensor::from_slice(&[0.0f32, 2f32.ln(), -3.0]).view([1, 3]);
        let kl = kl_to_prior(&prior, &MaskedCategorical::new(&logits, &mask)).double_value(&[]);
        close(kl, 0.5 * 1.5f64.ln() + 0.5 * 0.75f64.ln());
        close(
            kl_to_prior(&prior, &MaskedCategorical::new(&prior_logits, &mask)).double_value(&[]),
            0.0,
        );
    }

    #[test]
    fn returns_and_kl_schedule_by_hand() {
        let g = discounted_returns(&[1.0, 0.0, 2.0], 0.5);
        assert_eq!(g, vec![1.5, 1.0, 2.0]);
        let c = ImitationConfig {
            kl_coef: 0.2,
            kl_anneal_steps: 100,
            ..Default::default()
        };
        close(c.kl_coef_at(0), 0.2);
        close(c.kl_coef_at(50), 0.1);
        close(c.kl_coef_at(500), 0.0);
    }

    #[test]
    fn validation_names_the_key() {
        let bad = ImitationConfig {
            teacher: "shortest".into(),
            kl_coef: 0.1,
            ..Default::default()
        };
        let errors = bad.validate();
        assert!(
            errors[0].starts_with("imitation.teacher: unknown scheduler `shortest`"),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("imitation.kl_anneal_steps")),
            "{errors:?}"
        );
        assert!(ImitationConfig::default().validate().is_empty());
    }
}
