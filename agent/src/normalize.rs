//! Running observation normalisation (Stable-Baselines3's `VecNormalize` for observations) and
//! running return normalisation (its `norm_reward`, Gymnasium's `NormalizeReward`).
//!
//! Statistics are kept in `f64` on the CPU and updated with the parallel-variance formula of
//! Chan et al. from each batch of observations; the normalised observation is
//! `clip((x − mean) / sqrt(var + 1e-8), −clip, clip)`. The state is plain data so it can go
//! into a checkpoint's metadata and be restored bit-exactly.

use serde::{Deserialize, Serialize};

const VAR_EPS: f64 = 1e-8;

/// Running mean and variance of each observation element.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObsNormalizer {
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
    /// Starts at 1e-4 as in SB3, so the first batch dominates without dividing by zero.
    pub count: f64,
    pub clip: f64,
}

impl ObsNormalizer {
    pub fn new(dim: usize, clip: f64) -> Self {
        Self {
            mean: vec![0.0; dim],
            var: vec![1.0; dim],
            count: 1e-4,
            clip,
        }
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Folds a row-major batch `[rows, dim]` into the statistics.
    pub fn update(&mut self, batch: &[f32]) {
        let dim = self.dim();
        let rows = batch.len() / dim;
        if rows == 0 {
            return;
        }
        let n = rows as f64;
        for j in 0..dim {
            let column = batch.iter().skip(j).step_by(dim).map(|&x| x as f64);
            let batch_mean = column.clone().sum::<f64>() / n;
            let batch_var = column.map(|x| (x - batch_mean).powi(2)).sum::<f64>() / n;
            let delta = batch_mean - self.mean[j];
            let total = self.count + n;
            let m2 =
                self.var[j] * self.count + batch_var * n + delta * delta * self.count * n / total;
            self.mean[j] += delta * n / total;
            self.var[j] = m2 / total;
        }
        self.count += n;
    }

    /// Normalises a row-major batch in place.
    pub fn normalize(&self, batch: &mut [f32]) {
        let dim = self.dim();
        for row in batch.chunks_exact_mut(dim) {
            for (j, x) in row.iter_mut().enumerate() {
                let z = (*x as f64 - self.mean[j]) / (self.var[j] + VAR_EPS).sqrt();
                *x = z.clamp(-self.clip, self.clip) as f32;
            }
        }
    }
}

/// Scales rewards by the running standard deviation of each env's discounted return, so that
/// value targets stay near unit scale whatever the reward's units (returns are not centred:
/// the reward's sign is kept). State is plain data for checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReturnNormalizer {
    /// Each env's discounted return so far in its episode.
    pub returns: Vec<f64>,
    pub stats: ObsNormalizer,
    pub gamma: f64,
}

impl ReturnNormalizer {
    pub fn new(num_envs: usize, gamma: f64) -> Self {
        Self {
            returns: vec![0.0; num_envs],
            stats: ObsNormalizer::new(1, 10.0),
            gamma,
        }
    }

    /// Folds one vector step's rewards into the returns and their statistics, then divides
    /// each reward by the returns' standard deviation (clipped to ±10); an env whose episode
    /// ended (`over` is 1, the rollout buffer's convention) starts its return again from 0.
    pub fn normalize(&mut self, rewards: &mut [f32], over: &[f32]) {
        let mut batch = Vec::with_capacity(rewards.len());
        for (ret, &r) in self.returns.iter_mut().zip(rewards.iter()) {
            *ret = *ret * self.gamma + f64::from(r);
            batch.push(*ret as f32);
        }
        self.stats.update(&batch);
        let std = (self.stats.var[0] + VAR_EPS).sqrt();
        for ((r, ret), &done) in rewards.iter_mut().zip(&mut self.returns).zip(over) {
            *r = (f64::from(*r) / std).clamp(-self.stats.clip, self.stats.clip) as f32;
            if done > 0.0 {
                *ret = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two envs, γ = 0.5, three steps; env 1's episode ends after step 1. Checked against the
    /// returns' variance computed directly (with SB3's prior: count 1e-4, mean 0, variance 1).
    #[test]
    fn returns_are_scaled_by_the_running_std_of_discounted_returns() {
        let mut norm = ReturnNormalizer::new(2, 0.5);
        let steps = [
            ([2.0f32, -4.0], [0.0, 1.0]),
            ([2.0, 1.0], [0.0, 0.0]),
            ([0.0, 1.0], [0.0, 0.0]),
        ];
        // Returns: step 0: 2, -4; step 1: 3, 1 (env 1 restarted); step 2: 1.5, 1.5.
        let all_returns = [[2.0, -4.0], [3.0, 1.0], [1.5, 1.5]];
        for (k, (rewards, over)) in steps.iter().enumerate() {
            let mut scaled = *rewards;
            norm.normalize(&mut scaled, over);
            let seen: Vec<f64> = all_returns[..=k].iter().flatten().copied().collect();
            let prior = 1e-4;
            let n = seen.len() as f64;
            let mean = seen.iter().sum::<f64>() / (n + prior);
            let var = (prior * (1.0 + mean * mean)
                + seen.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>())
                / (n + prior);
            for (s, r) in scaled.iter().zip(rewards) {
                let expected = f64::from(*r) / (var + VAR_EPS).sqrt();
                assert!(
                    (f64::from(*s) - expected).abs() < 1e-4,
                    "step {k}: {s} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn matches_batch_statistics() {
        let mut norm = ObsNormalizer::new(2, 10.0);
        norm.update(&[1.0, 10.0, 3.0, 10.0]);
        norm.update(&[5.0, 10.0]);
        // Column 0 = {1, 3, 5}: mean 3, population variance 8/3 (up to the 1e-4 prior).
        assert!((norm.mean[0] - 3.0).abs() < 1e-3);
        assert!((norm.var[0] - 8.0 / 3.0).abs() < 1e-3);
        assert!(norm.var[1] < 1e-2, "only the 1e-4 prior is left");
        let mut x = [3.0f32, 11.0];
        norm.normalize(&mut x);
        assert!(x[0].abs() < 1e-3);
        assert_eq!(x[1], 10.0, "clipped");
    }
}
