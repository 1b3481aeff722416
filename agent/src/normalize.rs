//! Running observation normalisation (Stable-Baselines3's `VecNormalize` for observations).
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

#[cfg(test)]
mod tests {
    use super::*;

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
