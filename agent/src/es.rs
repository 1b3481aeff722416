//! Evolution strategies (Salimans et al., "Evolution Strategies as a Scalable Alternative to
//! Reinforcement Learning", 2017): perturb the policy's weights with Gaussian noise in
//! antithetic pairs θ ± σε, score every perturbed policy by whole greedy episodes, and step
//! the weights along the rank-weighted noise.
//!
//! Why it is here: on scheduling workloads the episode's return varies with the workload by
//! about its own mean, so a policy gradient from a few thousand sampled decisions cannot tell
//! which decisions to change. ES compares whole policies instead, and every candidate of a
//! generation plays the *same* workloads (common random numbers), so a candidate's fitness
//! differs from another's by what the weights did, not by the workload's luck. It scores the
//! greedy policy, which is what evaluation and deployment run.
//!
//! This module is the pure part (the config, noise, fitness shaping, the update);
//! `lepton-train` plays the episodes.

use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::optim::Adam;

/// The `[es]` config section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EsConfig {
    /// Antithetic pairs per generation: 2 × `pairs` perturbed policies.
    pub pairs: usize,
    /// Workloads per generation: every candidate plays the same `episodes` episodes.
    pub episodes: usize,
    /// Standard deviation of the weight noise.
    pub sigma: f64,
    /// Adam's learning rate on the weights.
    pub lr: f64,
    /// Anneal the learning rate linearly to 0 over `train.total_steps`.
    pub anneal_lr: bool,
    pub adam_eps: f64,
    /// L2 pull of the weights towards 0 per update (Salimans et al. use 0.005): keeps the
    /// weights from growing until σ no longer changes any decision.
    pub weight_decay: f64,
}

impl Default for EsConfig {
    fn default() -> Self {
        Self {
            pairs: 16,
            episodes: 16,
            sigma: 0.02,
            lr: 0.01,
            anneal_lr: false,
            adam_eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// The most candidates or workloads one generation may have (each is a whole episode).
pub const MAX_PER_GENERATION: usize = 4096;

impl EsConfig {
    /// Every problem, one message each, naming the key.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for (key, n) in [("es.pairs", self.pairs), ("es.episodes", self.episodes)] {
            if !(1..=MAX_PER_GENERATION).contains(&n) {
                errors.push(format!(
                    "{key} must be in 1..={MAX_PER_GENERATION}, got {n}"
                ));
            }
        }
        for (key, v) in [
            ("es.sigma", self.sigma),
            ("es.lr", self.lr),
            ("es.adam_eps", self.adam_eps),
        ] {
            if !(v.is_finite() && v > 0.0) {
                errors.push(format!("{key} must be positive, got {v}"));
            }
        }
        if !(self.weight_decay.is_finite() && (0.0..1.0).contains(&self.weight_decay)) {
            errors.push(format!(
                "es.weight_decay must be in [0, 1), got {}",
                self.weight_decay
            ));
        }
        errors
    }

    /// The learning rate at `progress` ∈ [0, 1] of the run.
    pub fn lr_at(&self, progress: f64) -> f64 {
        if self.anneal_lr {
            self.lr * (1.0 - progress.clamp(0.0, 1.0))
        } else {
            self.lr
        }
    }
}

/// Standard normal noise shaped like `params`, drawn in order from `rng` (so a seed fixes it
/// on every machine).
pub fn sample_noise<R: Rng>(params: &[Tensor], rng: &mut R) -> Vec<Tensor> {
    params
        .iter()
        .map(|p| {
            let values: Vec<f32> = (0..p.numel())
                .map(|_| rng.sample::<f32, _>(StandardNormal))
                .collect();
            Tensor::from_slice(&values)
                .view(p.size().as_slice())
                .to_device(p.device())
        })
        .collect()
}

/// Sets every parameter to `center + scale · noise` (in place, outside autograd).
pub fn set_weights(params: &[Tensor], center: &[Tensor], noise: &[Tensor], scale: f64) {
    tch::no_grad(|| {
        for ((p, c), e) in params.iter().zip(center).zip(noise) {
            p.shallow_clone().copy_(&(c + e * scale));
        }
    });
}

/// Sets every parameter back to `center` (in place, outside autograd).
pub fn restore_weights(params: &[Tensor], center: &[Tensor]) {
    tch::no_grad(|| {
        for (p, c) in params.iter().zip(center) {
            p.shallow_clone().copy_(c);
        }
    });
}

/// Centered ranks (Salimans et al.): the lowest fitness gets −0.5, the highest +0.5, the
/// rest evenly between; equal fitnesses share their mean rank, so candidates that played
/// alike push the weights nowhere. Only the order of the fitnesses matters, so one heavy
/// episode cannot dominate an update.
pub fn centered_ranks(fitness: &[f64]) -> Vec<f64> {
    let n = fitness.len();
    if n < 2 {
        return vec![0.0; n];
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| fitness[a].total_cmp(&fitness[b]));
    let mut ranks = vec![0.0; n];
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n
            && fitness[order[end]]
                .total_cmp(&fitness[order[start]])
                .is_eq()
        {
            end += 1;
        }
        let mean_rank = (start + end - 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = mean_rank / (n - 1) as f64 - 0.5;
        }
        start = end;
    }
    ranks
}

/// The ES estimate of the fitness gradient from antithetic pairs: `plus[i]` and `minus[i]`
/// are the fitnesses (higher is better) of θ + σεᵢ and θ − σεᵢ, `noise[i]` is εᵢ;
/// ĝ = Σᵢ (r⁺ᵢ − r⁻ᵢ) εᵢ / (2nσ) with r the centered ranks of all 2n fitnesses.
pub fn gradient(plus: &[f64], minus: &[f64], noise: &[Vec<Tensor>], sigma: f64) -> Vec<Tensor> {
    let n = plus.len();
    let all: Vec<f64> = plus.iter().chain(minus).copied().collect();
    let ranks = centered_ranks(&all);
    let shapes = &noise[0];
    let mut grad: Vec<Tensor> = shapes.iter().map(Tensor::zeros_like).collect();
    for (i, eps) in noise.iter().enumerate() {
        let weight = (ranks[i] - ranks[n + i]) / (2.0 * n as f64 * sigma);
        for (g, e) in grad.iter_mut().zip(eps) {
            *g += e * weight;
        }
    }
    grad
}

/// One ascent step on the weights along `grad` (and the weight decay), by `adam`: the
/// gradient is handed to Adam as that of the surrogate loss −Σ θ·ĝ.
pub fn ascend(adam: &mut Adam, params: &[Tensor], grad: &[Tensor], weight_decay: f64, lr: f64) {
    adam.zero_grad();
    let loss = params
        .iter()
        .zip(grad)
        .map(|(p, g)| {
            let g = if weight_decay > 0.0 {
                g - p.detach() * weight_decay
            } else {
                g.shallow_clone()
            };
            -(p * g).sum(Kind::Float)
        })
        .reduce(|a, b| a + b)
        .expect("a policy has parameters");
    loss.backward();
    adam.step(lr);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn centered_ranks_by_hand() {
        assert_eq!(
            centered_ranks(&[3.0, -1.0, 10.0, 0.0, 2.0]),
            [0.25, -0.5, 0.5, -0.25, 0.0]
        );
        // Scale does not matter, only order; ties share their mean rank.
        assert_eq!(
            centered_ranks(&[1e9, 1.0, 1.0]),
            centered_ranks(&[5.0, 2.0, 2.0])
        );
        assert_eq!(centered_ranks(&[1e9, 1.0, 1.0]), [0.5, -0.25, -0.25]);
        assert_eq!(centered_ranks(&[1.0, 1.0, 1.0]), [0.0, 0.0, 0.0]);
        assert_eq!(centered_ranks(&[7.0]), [0.0]);
    }

    /// One pair, one weight: the better side's noise direction is the gradient, scaled by
    /// 1/(2nσ): ranks of [plus, minus] = [+0.5, −0.5], so ĝ = (0.5 + 0.5)·ε/(2·1·σ).
    #[test]
    fn gradient_points_towards_the_better_side() {
        let eps = vec![vec![Tensor::from_slice(&[2.0f32, -1.0])]];
        let g = gradient(&[5.0], &[1.0], &eps, 0.5);
        assert_eq!(Vec::<f32>::try_from(&g[0]).unwrap(), [2.0, -1.0]);
        let g = gradient(&[1.0], &[5.0], &eps, 0.5);
        assert_eq!(Vec::<f32>::try_from(&g[0]).unwrap(), [-2.0, 1.0]);
        // Both sides played alike: no direction.
        let g = gradient(&[3.0], &[3.0], &eps, 0.5);
        assert_eq!(Vec::<f32>::try_from(&g[0]).unwrap(), [0.0, 0.0]);
    }

    /// ES climbs a concave fitness, −|θ − c|², from θ = 0 to near c with noisy antithetic
    /// estimates and Adam: the loop of `lepton-train`'s ES on a function instead of episodes.
    #[test]
    fn es_finds_the_maximum_of_a_quadratic() {
        let target = [1.0f32, -2.0, 0.5];
        let theta = Tensor::zeros([3], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
        let params = vec![theta.shallow_clone()];
        let mut adam = Adam::new(vec![("theta".into(), theta.shallow_clone())], 1e-8);
        let c = Tensor::from_slice(&target);
        let fitness = |p: &Tensor| -> f64 { -(p - &c).square().sum(Kind::Float).double_value(&[]) };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let sigma = 0.1;
        for _ in 0..300 {
            let center: Vec<Tensor> = params.iter().map(|p| p.detach().copy()).collect();
            let noise: Vec<Vec<Tensor>> = (0..8).map(|_| sample_noise(&params, &mut rng)).collect();
            let (mut plus, mut minus) = (Vec::new(), Vec::new());
            for eps in &noise {
                set_weights(&params, &center, eps, sigma);
                plus.push(fitness(&params[0]));
                set_weights(&params, &center, eps, -sigma);
                minus.push(fitness(&params[0]));
            }
            restore_weights(&params, &center);
            let g = gradient(&plus, &minus, &noise, sigma);
            ascend(&mut adam, &params, &g, 0.0, 0.05);
        }
        let got = Vec::<f32>::try_from(&params[0]).unwrap();
        for (x, t) in got.iter().zip(target) {
            assert!((x - t).abs() < 0.1, "{got:?} vs {target:?}");
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_noise() {
        let params = vec![Tensor::zeros([2, 3], (Kind::Float, tch::Device::Cpu))];
        let a = sample_noise(&params, &mut ChaCha8Rng::seed_from_u64(9));
        let b = sample_noise(&params, &mut ChaCha8Rng::seed_from_u64(9));
        assert_eq!(a[0].size(), [2, 3]);
        assert!(a[0].equal(&b[0]));
    }

    #[test]
    fn bad_values_name_their_keys() {
        let config = EsConfig {
            pairs: 0,
            sigma: -1.0,
            weight_decay: 1.0,
            ..EsConfig::default()
        };
        let errors = config.validate().join("\n");
        for key in ["es.pairs", "es.sigma", "es.weight_decay"] {
            assert!(errors.contains(key), "{errors}");
        }
        assert!(EsConfig::default().validate().is_empty());
    }
}
