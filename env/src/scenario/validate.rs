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

/// Upper bounds on every size a scenario sets, chosen from memory arithmetic so that no
/// scenario can make a loader or an env allocate without limit, overflow an index or stall.
pub mod limits {
    /// Queue slots: each is an observation row and, in placement mode, one action per server.
    pub const MAX_SLOTS: usize = 4_096;
    /// Backlog capacity: a task index (4 bytes) per place, so at most 40 MB per env.
    pub const MAX_BACKLOG: usize = 10_000_000;
    /// Servers over all server types (1,523 in the Alibaba GPU trace): about 200 bytes of
    /// state each, 20 MB per env, plus an observation row each.
    pub const MAX_SERVERS: usize = 100_000;
    /// Tasks per episode (synthetic `num_tasks`): a task record is about 100 bytes, so 1 GB.
    pub const MAX_TASKS: usize = 10_000_000;
    /// Actions (slots × servers + 1 in placement mode): the mask and the policy's logits hold
    /// one entry per action per decision.
    pub const MAX_ACTIONS: usize = 1_000_000;
    /// Observation length in floats: 4 MB per env per decision (a PPO rollout stores
    /// num_envs × num_steps of them).
    pub const MAX_OBS: usize = 1_000_000;
    /// DeepRM's image horizon in time steps (DeepRM's own is 20).
    pub const MAX_HORIZON: usize = 100_000;
    /// Failure and repair times below a second turn a failure model into an event storm that
    /// never reaches the end of an episode.
    pub const MIN_FAILURE_TIME_S: f64 = 1.0;
    /// Durations, periods and mean times a workload may give (about 115 days): a longer one
    /// stretches an episode over so much simulated time that its failure and power events
    /// alone never end.
    pub const MAX_TIME_S: f64 = 1e7;
    /// Arrival rates, tasks per second: below the minimum the first arrival is centuries
    /// away (the same event storm); above the maximum a burst outgrows any backlog.
    pub const RATE_PER_S: std::ops::RangeInclusive<f64> = 1e-6..=1e6;
    /// Server speed relative to the reference: a server a million times slower turns one
    /// task into centuries of simulated time (and events).
    pub const SPEED: std::ops::RangeInclusive<f64> = 1e-3..=1e3;
    /// Log-normal σ: exp(σ²/2) already multiplies the median by 2.7·10⁵ at σ = 5.
    pub const MAX_SIGMA: f64 = 5.0;

    /// A policy's input length and action count for `layout` and `actions`, computed
    /// without overflow, or why they are beyond any scenario's ([`MAX_OBS`], [`MAX_ACTIONS`]).
    /// Checkpoint metadata and network construction both check this before allocating.
    pub fn policy_sizes(
        layout: &crate::api::ObsLayout,
        actions: &crate::api::ActionLayout,
    ) -> Result<(usize, usize), String> {
        let rule_actions: usize = actions
            .blocks
            .iter()
            .map(|block| match block {
                crate::api::ActionBlock::Rules { n } => *n,
                _ => 0,
            })
            .fold(0, usize::saturating_add);
        if rule_actions != actions.rules.len() {
            return Err(format!(
                "the action layout names {} rules for {rule_actions} rule actions",
                actions.rules.len()
            ));
        }
        match (layout.checked_dim(), actions.checked_num_actions()) {
            (Some(dim), Some(n)) if dim <= MAX_OBS && n <= MAX_ACTIONS => Ok((dim, n)),
            (dim, n) => Err(format!(
                "{} observation floats and {} actions: beyond any scenario's (limits {MAX_OBS} and {MAX_ACTIONS})",
                dim.map_or("over 2^64".to_string(), |d| d.to_string()),
                n.map_or("over 2^64".to_string(), |n| n.to_string()),
            )),
        }
    }
}

/// `n` floats or bytes, in words: "4.0 GiB".
pub(super) fn human_bytes(bytes: f64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    if bytes >= GIB {
        format!("{:.1} GiB", bytes / GIB)
    } else {
        format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
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

    /// `value` if it is at most `max`; the error says what the value would cost.
    pub(super) fn at_most(
        &self,
        key: &str,
        value: usize,
        max: usize,
        cost: impl Fn(usize) -> String,
    ) -> Result<usize, ScenarioError> {
        if value <= max {
            Ok(value)
        } else {
            Err(self.err(
                key,
                format!("{value} is more than the limit {max} ({})", cost(value)),
            ))
        }
    }

    /// A time in seconds: finite, > 0 (or >= 0 with `allow_zero`) and at most
    /// [`limits::MAX_TIME_S`].
    pub(super) fn time_s(
        &self,
        key: &str,
        value: f64,
        allow_zero: bool,
    ) -> Result<f64, ScenarioError> {
        let value = if allow_zero {
            self.non_negative(key, value)?
        } else {
            self.positive(key, value)?
        };
        if value > limits::MAX_TIME_S {
            return Err(self.err(
                key,
                format!(
                    "{value} s is more than the limit {} s (about 115 days of simulated time)",
                    limits::MAX_TIME_S
                ),
            ));
        }
        Ok(value)
    }

    /// `value` within `range` (and finite).
    pub(super) fn within(
        &self,
        key: &str,
        value: f64,
        range: std::ops::RangeInclusive<f64>,
    ) -> Result<f64, ScenarioError> {
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(self.err(
                key,
                format!(
                    "must be in [{}, {}], got {value}",
                    range.start(),
                    range.end()
                ),
            ))
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
        let at_least_a_second = |name: &str, value: f64| {
            let key = format!("{key}.{name}");
            let value = self.positive(&key, value)?;
            if value < limits::MIN_FAILURE_TIME_S {
                return Err(self.err(
                    &key,
                    format!(
                        "{value} s is below {} s: failures that frequent are an event storm that never reaches the episode's end",
                        limits::MIN_FAILURE_TIME_S
                    ),
                ));
            }
            Ok(value)
        };
        Ok(FailureModel {
            mttf_s: at_least_a_second("mttf_s", f.mttf_s)?,
            mttr_s: at_least_a_second("mttr_s", f.mttr_s)?,
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
            bounded_slowdown: self.non_negative("reward.bounded_slowdown", r.bounded_slowdown)?,
            wait: self.non_negative("reward.wait", r.wait)?,
            deadline_miss: self.non_negative("reward.deadline_miss", r.deadline_miss)?,
            dropped: self.non_negative("reward.dropped", r.dropped)?,
            energy_kwh: self.non_negative("reward.energy_kwh", r.energy_kwh)?,
        })
    }
}
