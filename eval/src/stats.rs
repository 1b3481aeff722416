//! Summary statistics over episodes: means with seeded percentile-bootstrap confidence
//! intervals, and empirical CDFs. Pure functions, no IO; everything here is deterministic given
//! its inputs and seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A mean and its two-sided confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub mean: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// How confidence intervals are computed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// Number of bootstrap resamples.
    pub resamples: usize,
    /// Confidence level of the interval (0.95 = 95%).
    pub confidence: f64,
    /// Seed of the resampling RNG (ChaCha8); each (scenario, contender, metric) derives its
    /// own stream from it, so intervals do not depend on the order they are computed in.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            resamples: 2000,
            confidence: 0.95,
            seed: 0,
        }
    }
}

pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// A stable 64-bit id for an RNG stream named by `parts` (FNV-1a over the parts, each
/// followed by a 0 byte): the same names give the same stream on every platform and run.
pub fn stream_id(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts
        .iter()
        .flat_map(|p| p.bytes().chain(std::iter::once(0)))
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Linear-interpolation quantile (`q` in [0, 1]) of already sorted values.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let position = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let below = position.floor() as usize;
            let above = (below + 1).min(n - 1);
            let fraction = position - below as f64;
            sorted[below] + (sorted[above] - sorted[below]) * fraction
        }
    }
}

/// Mean of `values` with a percentile-bootstrap confidence interval: `resamples` resamples of
/// the same size drawn with replacement, the interval is the (α/2, 1 − α/2) quantiles of the
/// resample means. `stream` selects an independent RNG stream under `config.seed`.
///
/// One value gives a zero-width interval; a non-finite value makes all three fields NaN
/// (written as `null` in JSON) rather than a misleading number.
pub fn bootstrap_mean(values: &[f64], config: &BootstrapConfig, stream: u64) -> Estimate {
    let point = mean(values);
    if values.len() <= 1 || !point.is_finite() || config.resamples == 0 {
        return Estimate {
            mean: point,
            ci_low: point,
            ci_high: point,
        };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(stream);
    let n = values.len();
    let mut means: Vec<f64> = (0..config.resamples)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let alpha = 1.0 - config.confidence;
    Estimate {
        mean: point,
        ci_low: quantile_sorted(&means, alpha / 2.0),
        ci_high: quantile_sorted(&means, 1.0 - alpha / 2.0),
    }
}

/// The empirical CDF of `values` as at most `max_points` (x, F(x)) steps, x ascending.
/// With more values than points, evenly spaced ranks are kept (always including the last).
pub fn ecdf(values: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 || max_points == 0 {
        return Vec::new();
    }
    let points = max_points.min(n);
    (1..=points)
        .map(|k| {
            let rank = (k * n).div_ceil(points); // 1-based rank in 1..=n
            (sorted[rank - 1], rank as f64 / n as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_linearly() {
        let sorted = [1.0, 2.0, 3.0, 5.0];
        assert_eq!(quantile_sorted(&sorted, 0.0), 1.0);
        assert_eq!(quantile_sorted(&sorted, 1.0), 5.0);
        // position 0.5 * 3 = 1.5 -> halfway between 2 and 3
        assert!((quantile_sorted(&sorted, 0.5) - 2.5).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_of_constant_values_is_degenerate() {
        let e = bootstrap_mean(&[2.0; 10], &BootstrapConfig::default(), 0);
        assert_eq!((e.mean, e.ci_low, e.ci_high), (2.0, 2.0, 2.0));
    }

    #[test]
    fn bootstrap_interval_brackets_the_mean_and_is_reproducible() {
        let values: Vec<f64> = (0..30).map(|i| f64::from(i % 7)).collect();
        let config = BootstrapConfig::default();
        let a = bootstrap_mean(&values, &config, 3);
        let b = bootstrap_mean(&values, &config, 3);
        assert_eq!(a, b);
        assert!(a.ci_low < a.mean && a.mean < a.ci_high, "{a:?}");
        // The resample mean has sd ≈ sd(x)/√n ≈ 2/√30 ≈ 0.37; a 95% interval is ≈ ±0.73.
        assert!(
            a.ci_high - a.ci_low > 0.8 && a.ci_high - a.ci_low < 2.2,
            "{a:?}"
        );
        let other_stream = bootstrap_mean(&values, &config, 4);
        assert_ne!(a, other_stream);
    }

    #[test]
    fn non_finite_values_give_nan_estimates() {
        let e = bootstrap_mean(&[1.0, f64::NAN], &BootstrapConfig::default(), 0);
        assert!(e.mean.is_nan() && e.ci_low.is_nan() && e.ci_high.is_nan());
    }

    #[test]
    fn stream_ids_are_stable_and_separate_their_parts() {
        // FNV-1a of the single byte 0 (an empty part).
        assert_eq!(stream_id(&[""]), 0xaf63_bd4c_8601_b7df);
        assert_ne!(stream_id(&["ab", "c"]), stream_id(&["a", "bc"]));
    }

    #[test]
    fn ecdf_steps_reach_one() {
        let cdf = ecdf(&[3.0, 1.0, 2.0, 4.0], 10);
        assert_eq!(cdf, vec![(1.0, 0.25), (2.0, 0.5), (3.0, 0.75), (4.0, 1.0)]);
        let thinned = ecdf(&[3.0, 1.0, 2.0, 4.0], 2);
        assert_eq!(thinned, vec![(2.0, 0.5), (4.0, 1.0)]);
    }
}
