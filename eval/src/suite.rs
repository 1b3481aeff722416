//! Evaluation suites: `configs/eval/<suite>.toml` → a validated [`Suite`] with every scenario
//! loaded.
//!
//! ```toml
//! name = "smoke"                        # names the report
//! description = "..."                   # optional
//! episodes = 8                          # episodes per scenario (--episodes overrides)
//! schedulers = ["sjf", "packer"]        # optional; default: every heuristic
//! bootstrap_resamples = 2000            # optional
//! bootstrap_seed = 0                    # optional
//! sweep = "load (arrival rate λ)"      # optional: the scenarios are points of a sweep
//! [[scenarios]]                         # repeated
//! path = "../scenarios/tiny.toml"       # relative to this suite file
//! first_seed = 1000000                  # episode k runs seed first_seed + k (held-out seeds)
//! name = "tiny-busy"                    # optional (default: the file stem); needed with `set`
//! set = { "workload.arrival_rate" = 2.0 }  # optional: scenario keys to override (dotted)
//! x = 2.0                               # the point on the sweep's axis (with `sweep` only)
//! ```
//!
//! Unknown keys are rejected. Every contender sees the same seeds, so the same workloads.
//! `set` changes a scenario file's keys before it is validated, so a sweep over a parameter
//! needs one scenario file, not one per point; the report records the resulting text.

use anyhow::{Context, Result, bail};
use lepton_env::Scenario;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Episodes per scenario and contender at most: every episode's metrics are kept for the
/// paired statistics and the report (about 1 KB each per contender), and 1,000,000 episodes
/// already take days.
pub const MAX_EPISODES: usize = 1_000_000;

/// Bootstrap resamples at most: each interval keeps one mean per resample (8 MB at this
/// bound) and draws `resamples × episodes` indices; the 95% percentile interval is stable
/// long before (2,000 is the default).
pub const MAX_RESAMPLES: usize = 1_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    name: String,
    #[serde(default)]
    description: String,
    episodes: usize,
    schedulers: Option<Vec<String>>,
    #[serde(default = "default_resamples")]
    bootstrap_resamples: usize,
    #[serde(default)]
    bootstrap_seed: u64,
    sweep: Option<String>,
    /// The metric the suite is scored on when `--metric` is not given (e.g. HPC suites:
    /// `mean_bounded_slowdown`).
    metric: Option<String>,
    scenarios: Vec<ScenarioEntry>,
}

fn default_resamples() -> usize {
    2000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioEntry {
    path: PathBuf,
    first_seed: u64,
    name: Option<String>,
    #[serde(default)]
    set: toml::Table,
    x: Option<f64>,
}

/// One scenario of a suite, loaded and validated.
#[derive(Debug)]
pub struct SuiteScenario {
    /// The scenario's file stem (`tiny` for `../scenarios/tiny.toml`); unique in a suite.
    pub name: String,
    /// The path as the suite wrote it.
    pub path: String,
    /// The scenario file's exact text (recorded in report.json).
    pub toml: String,
    pub scenario: Scenario,
    pub first_seed: u64,
    /// The scenario's point on the sweep's axis (suites with `sweep` only).
    pub x: Option<f64>,
}

/// A validated suite.
#[derive(Debug)]
pub struct Suite {
    pub name: String,
    pub description: String,
    /// The suite file's exact text (recorded in report.json).
    pub toml: String,
    pub episodes: usize,
    pub schedulers: Option<Vec<String>>,
    pub bootstrap_resamples: usize,
    pub bootstrap_seed: u64,
    /// The sweep's axis label, when the scenarios are points of a sweep.
    pub sweep: Option<String>,
    /// The suite's metric (checked against the report's metrics by the tool), used when
    /// `--metric` is not given.
    pub metric: Option<String>,
    pub scenarios: Vec<SuiteScenario>,
}

impl SuiteScenario {
    /// The seeds of this scenario's episodes.
    pub fn seeds(&self, episodes: usize) -> Vec<u64> {
        (0..episodes as u64).map(|k| self.first_seed + k).collect()
    }
}

/// Reads and validates a suite file and every scenario it names.
pub fn load(path: &Path) -> Result<Suite> {
    let toml_text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read suite {}", path.display()))?;
    parse(toml_text, path)
}

/// Validates the text of the suite file at `path`, reading the scenarios it names relative to
/// `path`.
pub fn parse(toml_text: String, path: &Path) -> Result<Suite> {
    let file: SuiteFile = toml::from_str(&toml_text)
        .with_context(|| format!("suite {} is not a valid suite file", path.display()))?;
    if !(1..=MAX_EPISODES).contains(&file.episodes) {
        bail!(
            "suite {}: `episodes` must be in 1..={MAX_EPISODES}, got {}",
            path.display(),
            file.episodes
        );
    }
    if file.bootstrap_resamples > MAX_RESAMPLES {
        bail!(
            "suite {}: `bootstrap_resamples` must be at most {MAX_RESAMPLES}, got {}",
            path.display(),
            file.bootstrap_resamples
        );
    }
    if file.scenarios.is_empty() {
        bail!("suite {}: `scenarios` is empty", path.display());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut scenarios: Vec<SuiteScenario> = Vec::new();
    for entry in file.scenarios {
        let full = dir.join(&entry.path);
        let text = std::fs::read_to_string(&full).with_context(|| {
            format!(
                "suite {}: cannot read scenario {}",
                path.display(),
                full.display()
            )
        })?;
        let stem = entry
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = match (&entry.name, entry.set.is_empty()) {
            (Some(name), _) => name.clone(),
            (None, true) => stem,
            (None, false) => bail!(
                "suite {}: scenario {} has `set` but no `name`",
                path.display(),
                entry.path.display()
            ),
        };
        let toml = if entry.set.is_empty() {
            text
        } else {
            with_overrides(&text, &entry.set)
                .with_context(|| format!("suite {}: scenario `{name}`", path.display()))?
        };
        let scenario = Scenario::from_toml_str(&toml, &full)
            .with_context(|| format!("suite {}: scenario `{name}`", path.display()))?;
        if scenarios.iter().any(|s| s.name == name) {
            bail!(
                "suite {}: scenario `{name}` is listed twice",
                path.display()
            );
        }
        match (&file.sweep, entry.x) {
            (Some(_), None) => bail!(
                "suite {}: scenario `{name}` needs `x`, its point on the sweep",
                path.display()
            ),
            (None, Some(_)) => bail!(
                "suite {}: scenario `{name}` has `x` but the suite has no `sweep`",
                path.display()
            ),
            (Some(_), Some(x)) if !x.is_finite() => {
                bail!(
                    "suite {}: scenario `{name}`: `x` must be finite",
                    path.display()
                )
            }
            _ => {}
        }
        scenarios.push(SuiteScenario {
            name,
            path: entry.path.to_string_lossy().into_owned(),
            toml,
            scenario,
            first_seed: entry.first_seed,
            x: entry.x,
        });
    }
    Ok(Suite {
        name: file.name,
        description: file.description,
        toml: toml_text,
        episodes: file.episodes,
        schedulers: file.schedulers,
        bootstrap_resamples: file.bootstrap_resamples,
        bootstrap_seed: file.bootstrap_seed,
        sweep: file.sweep,
        metric: file.metric,
        scenarios,
    })
}

/// The scenario text with each dotted key of `set` replaced (`"workload.arrival_prob" = 0.5`
/// sets `arrival_prob` in `[workload]`). The tables on the way must exist; the key itself may
/// be new (the scenario's own validation rejects keys it does not know).
fn with_overrides(text: &str, set: &toml::Table) -> Result<String> {
    let mut doc: toml::Table = toml::from_str(text).context("not valid TOML")?;
    for (dotted, value) in set {
        let mut table = &mut doc;
        let mut parts: Vec<&str> = dotted.split('.').collect();
        let Some(leaf) = parts.pop().filter(|leaf| !leaf.is_empty()) else {
            bail!("`set`: `{dotted}` is not a key");
        };
        for part in parts {
            table = match table.get_mut(part) {
                Some(toml::Value::Table(t)) => t,
                _ => bail!("`set`: `{dotted}`: the scenario has no table `{part}`"),
            };
        }
        table.insert(leaf.to_string(), value.clone());
    }
    Ok(toml::to_string(&doc)?)
}
