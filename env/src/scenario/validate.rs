//! Scenario errors and the checks every resolver shares: each failed check is an error that
//! names the file, the key and the reason.

use super::file::{FailureModelFile, PowerModelFile, RewardFile};
use crate::cluster::{FailureModel, PowerModel, RewardWeights};
use crate::workload::MAX_RESOURCES;
use std::path::{Path, PathBuf};

/// A scenario error that names the file, and for validation errors the key and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Syntax, type or unknown-key errors; toml's message names the key and the line.
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: `{key}`: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        reason: String,
    },
}

pub(super) fn invalid(path: &Path, key: &str, reason: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        path: path.to_owned(),
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// Builds errors for one file.
pub(super) struct Check<'a>(pub(super) &'a Path);

impl Check<'_> {
    pub(super) fn err(&self, key: &str, reason: impl Into<String>) -> ScenarioError {
        invalid(self.0, key, reason)
    }

    pub(super) fn positive(&self, key: &str, value: f64) -> Result<f64, ScenarioError> {
        if value.is_finite() && value > 0.0 {
            Ok(value)
        } else {
            Err(self.err(key, format!("must be a finite number > 0, got {value}")))
        }
    }

    pub(super) fn non_negative(&self, key: &str, value: f64) -> Result<f64, ScenarioError> {
        if value.is_finite() && value >= 0.0 {
            Ok(value)
        } else {
            Err(self.err(key, format!("must be a finite number >= 0, got {value}")))
        }
    }

    pub(super) fn required<T>(
        &self,
        key: &str,
        value: Option<T>,
        why: &str,
    ) -> Result<T, ScenarioError> {
        value.ok_or_else(|| self.err(key, format!("is required {why}")))
    }

    pub(super) fn unused<T>(
        &self,
        key: &str,
        value: &Option<T>,
        why: &str,
    ) -> Result<(), ScenarioError> {
        match value {
            Some(_) => Err(self.err(key, format!("is not used {why}"))),
            None => Ok(()),
        }
    }

    pub(super) fn resources(&self, names: &[String]) -> Result<(), ScenarioError> {
        if names.is_empty() || names.len() > MAX_RESOURCES {
            return Err(self.err(
                "resources",
                format!("needs 1 to {MAX_RESOURCES} names, got {}", names.len()),
            ));
        }
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(self.err("resources", format!("`{name}` appears twice")));
            }
        }
        Ok(())
    }

    pub(super) fn per_resource(
        &self,
        key: &str,
        values: &[u32],
        num_resources: usize,
    ) -> Result<[u32; MAX_RESOURCES], ScenarioError> {
        if values.len() != num_resources {
            return Err(self.err(
                key,
                format!(
                    "needs one value per resource ({num_resources}), got {}",
                    values.len()
                ),
            ));
        }
        let mut out = [0; MAX_RESOURCES];
        out[..num_resources].copy_from_slice(values);
        Ok(out)
    }

    pub(super) fn failure_model(
        &self,
        key: &str,
        f: FailureModelFile,
    ) -> Result<FailureModel, ScenarioError> {
        Ok(FailureModel {
            mttf_s: self.positive(&format!("{key}.mttf_s"), f.mttf_s)?,
            mttr_s: self.positive(&format!("{key}.mttr_s"), f.mttr_s)?,
        })
    }

    pub(super) fn power_model(
        &self,
        key: &str,
        p: PowerModelFile,
    ) -> Result<PowerModel, ScenarioError> {
        let idle_w = self.non_negative(&format!("{key}.idle_w"), p.idle_w)?;
        let peak_w = self.non_negative(&format!("{key}.peak_w"), p.peak_w)?;
        if peak_w < idle_w {
            return Err(self.err(&format!("{key}.peak_w"), "must be >= idle_w"));
        }
        Ok(PowerModel { idle_w, peak_w })
    }

    pub(super) fn reward(&self, r: &RewardFile) -> Result<RewardWeights, ScenarioError> {
        Ok(RewardWeights {
            slowdown: self.non_negative("reward.slowdown", r.slowdown)?,
            wait: self.non_negative("reward.wait", r.wait)?,
            deadline_miss: self.non_negative("reward.deadline_miss", r.deadline_miss)?,
            dropped: self.non_negative("reward.dropped", r.dropped)?,
            energy_kwh: self.non_negative("reward.energy_kwh", r.energy_kwh)?,
        })
    }
}
