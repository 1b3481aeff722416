//! The masked categorical distribution of invalid-action masking (Huang & Ontañón, "A Closer
//! Look at Invalid Action Masking in Policy Gradient Algorithms").
//!
//! Masked-out logits are replaced by [`MASKED_LOGIT`] before the softmax, so their probability
//! is exactly zero in `f32` and their gradient is zero; the entropy sums over legal actions
//! only. Sampling happens on the CPU from a portable ChaCha stream (its state is saved in
//! checkpoints) and never returns a masked action, whatever the probabilities.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

/// Mixed into an episode's seed so that the stream a sampled policy draws its actions from
/// differs from the workload's.
const SAMPLE_SALT: u64 = 0x5a3b_1e5d << 16;

/// The stream a sampled policy draws episode `seed`'s actions from, in lepton-eval
/// (`--sampled`) and in the trainer's evaluation (`eval.sampled`) alike, so both score the
/// same episodes.
pub fn episode_sampler(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ SAMPLE_SALT)
}

/// The logit given to masked-out actions (CleanRL's invalid-action-masking value).
pub const MASKED_LOGIT: f64 = -1e8;

/// A batch of categorical distributions over `[batch, num_actions]` logits with a boolean mask
/// (`true` = legal) of the same shape.
#[derive(Debug)]
pub struct MaskedCategorical {
    log_probs: Tensor,
    mask: Tensor,
}

impl MaskedCategorical {
    /// `mask` must have at least one legal action per row.
    pub fn new(logits: &Tensor, mask: &Tensor) -> Self {
        let masked = logits.masked_fill(&mask.logical_not(), MASKED_LOGIT);
        let log_probs = masked.log_softmax(-1, Kind::Float);
        Self {
            log_probs,
            mask: mask.shallow_clone(),
        }
    }

    /// Normalised log-probabilities, `[batch, num_actions]` (about −1e8 where masked).
    pub fn log_probs(&self) -> &Tensor {
        &self.log_probs
    }

    /// The legal actions, `[batch, num_actions]`.
    pub fn mask(&self) -> &Tensor {
        &self.mask
    }

    /// Probabilities, `[batch, num_actions]` (exactly 0 where masked).
    pub fn probs(&self) -> Tensor {
        self.log_probs.exp()
    }

    /// Log-probability of `actions` (`[batch]`, int64).
    pub fn log_prob(&self, actions: &Tensor) -> Tensor {
        self.log_probs
            .gather(-1, &actions.unsqueeze(-1), false)
            .squeeze_dim(-1)
    }

    /// Entropy over the legal actions only: −Σ_{legal a} p(a) log p(a).
    pub fn entropy(&self) -> Tensor {
        let p_log_p = self.log_probs.exp() * &self.log_probs;
        -p_log_p
            .where_self(&self.mask, &p_log_p.zeros_like())
            .sum_dim_intlist(-1, false, Kind::Float)
    }

    /// The most likely legal action of each row.
    pub fn mode(&self) -> Tensor {
        self.log_probs.argmax(-1, false)
    }

    /// The per-slot decoding of placement action spaces (`k * num_servers + n`, then wait
    /// last) that checkpoints written before the `greedy` key existed were selected under
    /// (`checkpoint::GreedyRule::SlotMass`): first the most likely *decision* — wait, or slot
    /// `k` with the probability of all its placements summed — then the most likely server for
    /// that slot. It is not the policy's most likely action; new checkpoints are decoded by the
    /// joint arg-max ([`crate::networks::Policy::greedy`]).
    pub fn placement_mode(&self, num_slots: usize, num_servers: usize) -> Tensor {
        let (k, s) = (num_slots as i64, num_servers as i64);
        let probs = self.probs();
        let b = probs.size()[0];
        let pairs = probs.narrow(1, 0, k * s).reshape([b, k, s]);
        let per_slot = pairs.sum_dim_intlist(2, false, Kind::Float);
        let decision = Tensor::cat(&[per_slot, probs.narrow(1, k * s, 1)], 1).argmax(-1, false);
        let server = pairs.argmax(-1, false); // [b, k]
        let chosen_server = server
            .gather(1, &decision.clamp_max(k - 1).unsqueeze(1), false)
            .squeeze_dim(1);
        let placement = &decision * s + chosen_server;
        placement.where_self(&decision.lt(k), &Tensor::full_like(&decision, k * s))
    }
}

/// The legal action with the largest Q-value of each row: `q` `[B, A]`, `mask` `[B, A]` bool
/// (`true` = legal, at least one per row). Returns int64 `[B]`.
pub fn masked_argmax(q: &Tensor, mask: &Tensor) -> Tensor {
    q.masked_fill(&mask.logical_not(), f64::NEG_INFINITY)
        .argmax(-1, false)
}

/// The legal action with the largest Q-value (the first on ties; NaN values never win).
///
/// # Panics
/// When no action is legal.
pub fn masked_argmax_row(q: &[f32], mask: &[bool]) -> usize {
    let mut best: Option<(usize, f32)> = None;
    for (a, (&value, &legal)) in q.iter().zip(mask).enumerate() {
        if !legal {
            continue;
        }
        match best {
            None => best = Some((a, value)),
            Some((_, b)) if value > b || (b.is_nan() && !value.is_nan()) => best = Some((a, value)),
            Some(_) => {}
        }
    }
    best.expect("an action mask with no legal action").0
}

/// Samples one action per row from `probs` (row-major `[batch, num_actions]`) by inverse CDF,
/// skipping masked actions. Falls back to the last legal action of the row when rounding leaves
/// the uniform above the cumulative sum, so a masked action is never returned.
///
/// # Panics
/// When a row of `mask` has no legal action (the env contract guarantees one).
pub fn sample_masked<R: Rng>(
    probs: &[f32],
    mask: &[bool],
    num_actions: usize,
    rng: &mut R,
    out: &mut [usize],
) {
    for (row, action) in out.iter_mut().enumerate() {
        let p = &probs[row * num_actions..(row + 1) * num_actions];
        let m = &mask[row * num_actions..(row + 1) * num_actions];
        let u: f32 = rng.random();
        let mut cumulative = 0.0f32;
        let mut last_legal = None;
        let mut chosen = None;
        for (a, (&pa, &legal)) in p.iter().zip(m).enumerate() {
            if !legal {
                continue;
            }
            last_legal = Some(a);
            cumulative += pa;
            if u < cumulative {
                chosen = Some(a);
                break;
            }
        }
        *action = chosen
            .or(last_legal)
            .expect("action mask has no legal action");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn dist(logits: &[f32], mask: &[bool], n: i64) -> MaskedCategorical {
        let rows = logits.len() as i64 / n;
        MaskedCategorical::new(
            &Tensor::from_slice(logits).view([rows, n]),
            &Tensor::from_slice(mask).view([rows, n]),
        )
    }

    /// Two legal actions with equal logits: entropy ln 2, whatever the masked logit is.
    #[test]
    fn entropy_is_over_legal_actions_only() {
        let d = dist(&[0.0, 0.0, 5.0, 0.0], &[true, true, false, false], 4);
        assert!((d.entropy().double_value(&[0]) - std::f64::consts::LN_2).abs() < 1e-6);
        // Logits (ln 1, ln 3) → p = (1/4, 3/4): H = −(¼ ln ¼ + ¾ ln ¾) = 0.562335.
        let d = dist(&[0.0, 3f32.ln(), 9.0], &[true, true, false], 3);
        assert!((d.entropy().double_value(&[0]) - 0.562_335_144).abs() < 1e-6);
        let p = d.probs();
        assert!((p.double_value(&[0, 1]) - 0.75).abs() < 1e-6);
        assert_eq!(p.double_value(&[0, 2]), 0.0);
    }

    #[test]
    fn log_prob_and_mode_respect_the_mask() {
        let d = dist(&[1.0, 2.0, 10.0], &[true, true, false], 3);
        assert_eq!(d.mode().int64_value(&[0]), 1);
        // log softmax over (1, 2): log(e² / (e + e²)) = −ln(1 + e⁻¹) = −0.313262.
        let lp = d.log_prob(&Tensor::from_slice(&[1i64]));
        assert!((lp.double_value(&[0]) + 0.313_261_687).abs() < 1e-6);
    }

    /// Wait has the largest single probability (0.3), but slot 0's placements sum to 0.5:
    /// place slot 0 on its likelier server (1).
    #[test]
    fn placement_mode_compares_decisions_not_single_placements() {
        let p = [0.2f32, 0.3, 0.1, 0.1, 0.3];
        let logits = Tensor::from_slice(&p.map(f32::ln)).view([1, 5]);
        let d = MaskedCategorical::new(&logits, &Tensor::from_slice(&[true; 5]).view([1, 5]));
        assert_eq!(d.mode().int64_value(&[0]), 1);
        assert_eq!(d.placement_mode(2, 2).int64_value(&[0]), 1);
        let p = [0.1f32, 0.1, 0.1, 0.1, 0.6];
        let logits = Tensor::from_slice(&p.map(f32::ln)).view([1, 5]);
        let d = MaskedCategorical::new(&logits, &Tensor::from_slice(&[true; 5]).view([1, 5]));
        assert_eq!(d.placement_mode(2, 2).int64_value(&[0]), 4, "wait");
        // Masked placements never win.
        let d = MaskedCategorical::new(
            &Tensor::zeros([1, 5], (Kind::Float, tch::Device::Cpu)),
            &Tensor::from_slice(&[false, false, false, true, true]).view([1, 5]),
        );
        assert_eq!(d.placement_mode(2, 2).int64_value(&[0]), 3);
    }

    #[test]
    fn masked_logits_get_no_gradient() {
        let logits = Tensor::from_slice(&[0.5f32, -0.5, 3.0])
            .view([1, 3])
            .set_requires_grad(true);
        let d = MaskedCategorical::new(
            &logits,
            &Tensor::from_slice(&[true, true, false]).view([1, 3]),
        );
        (d.entropy().sum(Kind::Float) + d.log_prob(&Tensor::from_slice(&[0i64])).sum(Kind::Float))
            .backward();
        assert_eq!(logits.grad().double_value(&[0, 2]), 0.0);
    }

    #[test]
    fn sampling_never_returns_a_masked_action() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        // Even when the probability vector (wrongly) puts mass on masked actions.
        let probs = [0.7f32, 0.1, 0.2, 0.4, 0.0, 0.6];
        let mask = [false, true, false, false, true, false];
        let mut out = [0usize; 2];
        for _ in 0..1000 {
            sample_masked(&probs, &mask, 3, &mut rng, &mut out);
            assert_eq!(out, [1, 1]);
        }
    }

    #[test]
    fn sampling_matches_the_probabilities() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let probs = [0.25f32, 0.0, 0.75];
        let mask = [true, false, true];
        let mut out = [0usize; 1];
        let mut count = [0usize; 3];
        for _ in 0..20_000 {
            sample_masked(&probs, &mask, 3, &mut rng, &mut out);
            count[out[0]] += 1;
        }
        assert_eq!(count[1], 0);
        let frac = count[2] as f64 / 20_000.0;
        assert!((frac - 0.75).abs() < 0.015, "frac {frac}");
    }
}
