//! Task classes: what a task looks like (demand, duration, estimate, priority, deadline).

use super::{MAX_RESOURCES, TaskSpec};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal};

/// Distribution of a task's true duration (work at speed 1), in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DurationDist {
    Fixed {
        value_s: f64,
    },
    /// Uniform on `[min_s, max_s]`.
    Uniform {
        min_s: f64,
        max_s: f64,
    },
    /// Exponential with mean `mean_s`, shifted by `min_s` (so no task is shorter than `min_s`).
    Exponential {
        min_s: f64,
        mean_s: f64,
    },
    /// Log-normal with the given mean and shape `sigma` (heavy-tailed, like real job traces).
    LogNormal {
        mean_s: f64,
        sigma: f64,
    },
}

impl DurationDist {
    pub fn mean_s(&self) -> f64 {
        match *self {
            Self::Fixed { value_s } => value_s,
            Self::Uniform { min_s, max_s } => 0.5 * (min_s + max_s),
            Self::Exponential { min_s, mean_s } => min_s + mean_s,
            Self::LogNormal { mean_s, .. } => mean_s,
        }
    }

    pub fn sample(&self, rng: &mut ChaCha8Rng) -> f64 {
        match *self {
            Self::Fixed { value_s } => value_s,
            Self::Uniform { min_s, max_s } => min_s + (max_s - min_s) * rng.random::<f64>(),
            Self::Exponential { min_s, mean_s } => {
                min_s + Exp::new(1.0 / mean_s).map_or(mean_s, |d| d.sample(rng))
            }
            Self::LogNormal { mean_s, sigma } => {
                // mean = exp(mu + sigma²/2)  =>  mu = ln(mean) − sigma²/2.
                let mu = mean_s.ln() - 0.5 * sigma * sigma;
                LogNormal::new(mu, sigma).map_or(mean_s, |d| d.sample(rng))
            }
        }
    }
}

/// One class of a task mixture.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskClass {
    pub name: String,
    /// Relative frequency in the mixture.
    pub weight: f64,
    /// Integer units per resource (padded with zeros to [`MAX_RESOURCES`]).
    pub demand: [u32; MAX_RESOURCES],
    pub duration_s: DurationDist,
    /// The estimate is `duration × U[1 − noise, 1 + noise]`; 0 gives exact estimates.
    pub estimate_noise: f64,
    pub priority: u8,
    /// Deadline = arrival + `deadline_factor × duration`; `None` gives no deadline.
    pub deadline_factor: Option<f64>,
}

impl TaskClass {
    pub fn sample(&self, id: u64, arrival_s: f64, rng: &mut ChaCha8Rng) -> TaskSpec {
        let duration_s = self.duration_s.sample(rng).max(f64::MIN_POSITIVE);
        let noise = if self.estimate_noise > 0.0 {
            rng.random_range(-self.estimate_noise..=self.estimate_noise)
        } else {
            0.0
        };
        TaskSpec {
            id,
            arrival_s,
            duration_s,
            estimate_s: (duration_s * (1.0 + noise)).max(f64::MIN_POSITIVE),
            demand: self.demand,
            priority: self.priority,
            deadline_s: self.deadline_factor.map(|f| arrival_s + f * duration_s),
            gpu_models: 0,
            estimate_noise: self.estimate_noise as f32,
        }
    }
}
