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
//! [[scenarios]]                         # repeated
//! path = "../scenarios/tiny.toml"       # relative to this suite file
//! first_seed = 1000000                  # episode k runs seed first_seed + k (held-out seeds)
//! ```
//!
//! Unknown keys are rejected. Every contender sees the same seeds, so the same workloads.

use anyhow::{Context, Result, bail};
use lepton_env::Scenario;
use serde::Deserialize;
use std::path::{Path, PathBuf};

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
    let file: SuiteFile = toml::from_str(&toml_text)
        .with_context(|| format!("suite {} is not a valid suite file", path.display()))?;
    if file.episodes == 0 {
        bail!("suite {}: `episodes` must be at least 1", path.display());
    }
    if file.scenarios.is_empty() {
        bail!("suite {}: `scenarios` is empty", path.display());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut scenarios: Vec<SuiteScenario> = Vec::new();
    for entry in file.scenarios {
        let full = dir.join(&entry.path);
        let toml = std::fs::read_to_string(&full).with_context(|| {
            format!(
                "suite {}: cannot read scenario {}",
                path.display(),
                full.display()
            )
        })?;
        let scenario = Scenario::from_toml_str(&toml, &full)
            .with_context(|| format!("suite {}", path.display()))?;
        let name = entry
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if scenarios.iter().any(|s| s.name == name) {
            bail!(
                "suite {}: scenario `{name}` is listed twice",
                path.display()
            );
        }
        scenarios.push(SuiteScenario {
            name,
            path: entry.path.to_string_lossy().into_owned(),
            toml,
            scenario,
            first_seed: entry.first_seed,
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
        scenarios,
    })
}
