//! The search space: typed genes, each mapped to one `--set`-style config key.
//!
//! A genome is a `Vec<f64>` with one entry per gene: the value itself for `uniform`,
//! `log_uniform` and `int` genes (ints are whole numbers), the index into `values` for
//! `choice` genes. Keeping one representation lets the operators in
//! [`super::operators`] treat every gene alike where the type does not matter (selection,
//! crossover) and dispatch on it where it does (sampling, mutation, PBT perturbation).

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// One hyperparameter and its range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GeneSpec {
    /// A float drawn uniformly from `[min, max]`; mutation adds N(0, (scale·(max−min))²).
    Uniform { key: String, min: f64, max: f64 },
    /// A positive float drawn log-uniformly from `[min, max]` (learning rates, coefficients);
    /// mutation adds N(0, (scale·ln(max/min))²) to its logarithm.
    LogUniform { key: String, min: f64, max: f64 },
    /// A whole number in `[min, max]`; mutation adds rounded Gaussian noise, at least ±1.
    Int { key: String, min: i64, max: i64 },
    /// One of `values` (any TOML value, e.g. network widths `[[64, 64], [128, 128]]`);
    /// mutation picks a different one uniformly. Never perturbed by PBT (it may change shapes).
    Choice {
        key: String,
        values: Vec<toml::Value>,
    },
}

impl GeneSpec {
    /// The config key this gene sets, e.g. `ppo.lr`.
    pub fn key(&self) -> &str {
        match self {
            Self::Uniform { key, .. }
            | Self::LogUniform { key, .. }
            | Self::Int { key, .. }
            | Self::Choice { key, .. } => key,
        }
    }

    /// Problems with the range, naming the key.
    pub fn validate(&self) -> Vec<String> {
        let key = self.key();
        let mut errors = Vec::new();
        match self {
            Self::Uniform { min, max, .. }
                if !(min.is_finite() && max.is_finite() && min < max) =>
            {
                errors.push(format!("gene {key}: need finite min < max"))
            }
            Self::LogUniform { min, max, .. } if !(*min > 0.0 && max.is_finite() && min < max) => {
                errors.push(format!("gene {key}: need 0 < min < max"))
            }
            Self::Int { min, max, .. } if min > max => {
                errors.push(format!("gene {key}: need min <= max"))
            }
            Self::Choice { values, .. } if values.is_empty() => {
                errors.push(format!("gene {key}: values must not be empty"))
            }
            _ => {}
        }
        if key.split('.').any(str::is_empty) {
            errors.push(format!("gene key '{key}' has an empty segment"));
        }
        errors
    }

    /// A uniform draw from the gene's range (log-uniform for `log_uniform`).
    pub fn sample(&self, rng: &mut impl Rng) -> f64 {
        match self {
            Self::Uniform { min, max, .. } => min + (max - min) * rng.random::<f64>(),
            Self::LogUniform { min, max, .. } => {
                (min.ln() + (max.ln() - min.ln()) * rng.random::<f64>()).exp()
            }
            Self::Int { min, max, .. } => rng.random_range(*min..=*max) as f64,
            Self::Choice { values, .. } => rng.random_range(0..values.len()) as f64,
        }
    }

    /// `value` moved into the gene's range (and rounded for integer-valued genes).
    pub fn clamp(&self, value: f64) -> f64 {
        match self {
            Self::Uniform { min, max, .. } | Self::LogUniform { min, max, .. } => {
                value.clamp(*min, *max)
            }
            Self::Int { min, max, .. } => value.round().clamp(*min as f64, *max as f64),
            Self::Choice { values, .. } => value.round().clamp(0.0, (values.len() - 1) as f64),
        }
    }

    /// A mutated copy of `value`; `scale` is the noise's standard deviation as a fraction of
    /// the range (of the log range for `log_uniform`).
    pub fn mutate(&self, value: f64, scale: f64, rng: &mut impl Rng) -> f64 {
        let z: f64 = StandardNormal.sample(rng);
        match self {
            Self::Uniform { min, max, .. } => self.clamp(value + z * scale * (max - min)),
            Self::LogUniform { min, max, .. } => {
                self.clamp((value.ln() + z * scale * (max.ln() - min.ln())).exp())
            }
            Self::Int { min, max, .. } => {
                let step = (z * scale * (max - min) as f64).round();
                let step = if step == 0.0 { z.signum() } else { step };
                let moved = self.clamp(value + step);
                if moved == value {
                    // At a bound the step went outward: go the other way.
                    self.clamp(value - step.signum())
                } else {
                    moved
                }
            }
            Self::Choice { values, .. } => {
                if values.len() < 2 {
                    return value;
                }
                let other = rng.random_range(0..values.len() - 1) as f64;
                if other >= value { other + 1.0 } else { other }
            }
        }
    }

    /// Whether PBT's explore step may perturb this gene mid-training (floats only: integers
    /// and choices may change buffer or network shapes).
    pub fn perturbable(&self) -> bool {
        matches!(self, Self::Uniform { .. } | Self::LogUniform { .. })
    }

    /// The gene's value as TOML (`3e-4`, `4`, `[64, 64]`).
    pub fn toml_value(&self, value: f64) -> toml::Value {
        match self {
            Self::Uniform { .. } | Self::LogUniform { .. } => toml::Value::Float(value),
            Self::Int { .. } => toml::Value::Integer(value as i64),
            Self::Choice { values, .. } => values[self.clamp(value) as usize].clone(),
        }
    }

    /// The `--set KEY=VALUE` argument that applies `value`.
    pub fn override_arg(&self, value: f64) -> String {
        let v = match self.toml_value(value) {
            // `{:?}` keeps a decimal point or exponent, so TOML reads a float back.
            toml::Value::Float(x) => format!("{x:?}"),
            other => other.to_string(),
        };
        format!("{}={v}", self.key())
    }

    /// The gene's value as JSON, for the leaderboard.
    pub fn json_value(&self, value: f64) -> serde_json::Value {
        serde_json::to_value(self.toml_value(value)).unwrap_or(serde_json::Value::Null)
    }
}

/// The `--set` arguments that apply a genome.
pub fn override_args(specs: &[GeneSpec], genome: &[f64]) -> Vec<String> {
    specs
        .iter()
        .zip(genome)
        .map(|(s, &v)| s.override_arg(v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn lr() -> GeneSpec {
        GeneSpec::LogUniform {
            key: "ppo.lr".into(),
            min: 1e-5,
            max: 1e-1,
        }
    }

    #[test]
    fn parses_from_toml_and_rejects_unknown_fields() {
        #[derive(Deserialize)]
        struct W {
            gene: Vec<GeneSpec>,
        }
        let w: W = toml::from_str(
            "[[gene]]\nkind = \"log_uniform\"\nkey = \"ppo.lr\"\nmin = 1e-5\nmax = 1e-1\n\
             [[gene]]\nkind = \"choice\"\nkey = \"network.hidden\"\nvalues = [[64, 64], [128]]\n",
        )
        .unwrap();
        assert_eq!(w.gene[0], lr());
        assert_eq!(w.gene[1].override_arg(1.0), "network.hidden=[128]");
        let bad = toml::from_str::<W>(
            "[[gene]]\nkind = \"int\"\nkey = \"a\"\nmin = 1\nmax = 2\nstep = 1\n",
        );
        assert!(bad.is_err());
    }

    #[test]
    fn overrides_round_trip_through_toml() {
        assert_eq!(lr().override_arg(3e-4), "ppo.lr=0.0003");
        assert_eq!(lr().override_arg(1e-5), "ppo.lr=1e-5");
        let int = GeneSpec::Int {
            key: "ppo.update_epochs".into(),
            min: 1,
            max: 10,
        };
        assert_eq!(int.override_arg(4.0), "ppo.update_epochs=4");
        let u = GeneSpec::Uniform {
            key: "ppo.gamma".into(),
            min: 0.9,
            max: 1.0,
        };
        assert_eq!(u.override_arg(1.0), "ppo.gamma=1.0");
    }

    #[test]
    fn samples_stay_in_range_and_log_uniform_is_uniform_in_log_space() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let n = 4000;
        let below_1e3 = (0..n)
            .map(|_| lr().sample(&mut rng))
            .inspect(|&x| assert!((1e-5..=1e-1).contains(&x)))
            .filter(|&x| x < 1e-3)
            .count();
        // 1e-3 is halfway in log space: about half the draws fall below it.
        assert!(
            (n * 45 / 100..n * 55 / 100).contains(&below_1e3),
            "{below_1e3}"
        );
    }

    #[test]
    fn mutation_respects_bounds_and_types() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let int = GeneSpec::Int {
            key: "k".into(),
            min: 1,
            max: 3,
        };
        let choice = GeneSpec::Choice {
            key: "c".into(),
            values: vec![1.into(), 2.into(), 3.into()],
        };
        for _ in 0..500 {
            let x = int.mutate(3.0, 0.01, &mut rng);
            // A tiny scale still moves an integer gene by one, inward at the bound.
            assert_eq!(x, 2.0);
            let c = choice.mutate(1.0, 0.2, &mut rng);
            assert!(c == 0.0 || c == 2.0, "{c}");
            let l = lr().mutate(1e-3, 0.1, &mut rng);
            assert!((1e-5..=1e-1).contains(&l));
        }
    }
}
