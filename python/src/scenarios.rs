//! From what a Python user names (a shipped scenario, a file, TOML text, CartPole) plus
//! keyword overrides to a built env.
//!
//! The shipped scenario files are compiled into the extension, so `lepton.make("deeprm")`
//! works from an installed wheel without a checkout. Paths inside a scenario (a CSV task
//! list, a trace) stay relative to the scenario's folder, which for an embedded scenario is
//! `scenario_dir` when given, else the checkout the wheel was built from; the traces are
//! third-party data and are not embedded.

use crate::ScenarioError;
use crate::convert::merge_overrides;
use lepton_env::scenario::{SHIPPED, SHIPPED_FILES};
use lepton_env::{CartPole, CartPoleV1, Env, Scenario, ScenarioEnv};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::{Path, PathBuf};

/// The name that selects lepton's `CartPole-v1` (Gymnasium's dynamics, 500-step limit).
pub const CARTPOLE: &str = "CartPole-v1";

/// The folder the embedded scenarios' relative paths resolve from by default: the
/// checkout's `configs/scenarios` at build time.
fn default_scenario_dir() -> PathBuf {
    let python_crate = Path::new(env!("CARGO_MANIFEST_DIR"));
    python_crate
        .parent()
        .unwrap_or(python_crate)
        .join("configs/scenarios")
}

/// One env of whichever model the user named. (Unboxed: there is one per env, and stepping
/// should not go through another pointer.)
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Sim {
    Scenario(ScenarioEnv),
    CartPole(CartPoleV1),
}

/// What a spec resolves to; builds any number of identical envs.
#[allow(clippy::large_enum_variant)]
pub enum Resolved {
    Scenario(Scenario),
    CartPole { seed: u64 },
}

impl Resolved {
    pub fn build(&self) -> Sim {
        match self {
            Self::Scenario(scenario) => Sim::Scenario(scenario.build()),
            Self::CartPole { seed } => Sim::CartPole(CartPole::v1(*seed)),
        }
    }
}

/// Resolves `spec`: `"CartPole-v1"`, a shipped scenario's name, a path to a scenario file, or
/// scenario TOML text (anything with a newline or `=`), with `overrides` merged over the file
/// (nested dicts or dotted keys: `queue={"num_slots": 8}` or `**{"queue.num_slots": 8}`).
pub fn resolve(
    spec: &str,
    seed: Option<u64>,
    scenario_dir: Option<&Path>,
    overrides: Option<&Bound<'_, PyDict>>,
) -> PyResult<Resolved> {
    let has_overrides = overrides.is_some_and(|o| !o.is_empty());
    if spec == CARTPOLE {
        if has_overrides {
            return Err(ScenarioError::new_err(format!(
                "{CARTPOLE} takes no overrides (it is Gymnasium's CartPole-v1)"
            )));
        }
        return Ok(Resolved::CartPole {
            seed: seed.unwrap_or(0),
        });
    }
    let (text, path) = scenario_text(spec, scenario_dir)?;
    let scenario = match overrides {
        Some(overrides) if has_overrides => {
            let merged = merge_overrides(&text, &path, overrides)?;
            Scenario::from_toml_str(&merged, &path).map_err(|e| {
                let keys: Vec<String> = overrides.keys().iter().map(|k| k.to_string()).collect();
                ScenarioError::new_err(format!(
                    "{e}\n(with the overrides {} applied; line numbers count in the merged scenario)",
                    keys.join(", ")
                ))
            })?
        }
        _ => Scenario::from_toml_str(&text, &path)
            .map_err(|e| ScenarioError::new_err(e.to_string()))?,
    };
    Ok(Resolved::Scenario(match seed {
        Some(seed) => scenario.with_seed(seed),
        None => scenario,
    }))
}

/// The scenario's text and the path that names it in errors and anchors its relative paths.
fn scenario_text(spec: &str, scenario_dir: Option<&Path>) -> PyResult<(String, PathBuf)> {
    let dir = scenario_dir.map_or_else(default_scenario_dir, Path::to_owned);
    if let Some((name, text)) = SHIPPED_FILES.iter().find(|(name, _)| *name == spec) {
        return Ok((text.to_string(), dir.join(format!("{name}.toml"))));
    }
    if spec.contains('\n') || spec.contains('=') {
        return Ok((spec.to_owned(), dir.join("<inline scenario>.toml")));
    }
    let path = PathBuf::from(spec);
    if !path.exists() && path.extension().is_none() {
        return Err(ScenarioError::new_err(format!(
            "unknown scenario `{spec}`: not a shipped scenario ({}), not {CARTPOLE}, and no such file",
            SHIPPED.join(", ")
        )));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ScenarioError::new_err(format!("{}: cannot read: {e}", path.display())))?;
    Ok((text, path))
}

/// `Sim` is an env: every method forwards to the model inside.
impl Env for Sim {
    fn observation_space(&self) -> &lepton_env::BoxSpace {
        self.env().observation_space()
    }
    fn action_space(&self) -> lepton_env::Discrete {
        self.env().action_space()
    }
    fn obs_layout(&self) -> lepton_env::ObsLayout {
        self.env().obs_layout()
    }
    fn action_layout(&self) -> lepton_env::ActionLayout {
        self.env().action_layout()
    }
    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        self.env_mut().reset(seed, obs)
    }
    fn step(
        &mut self,
        action: usize,
        obs: &mut [f32],
    ) -> Result<lepton_env::Transition, lepton_env::EnvError> {
        self.env_mut().step(action, obs)
    }
    fn action_mask(&self, mask: &mut [bool]) {
        self.env().action_mask(mask)
    }
    fn episode_metrics(&self) -> Option<&lepton_env::EpisodeMetrics> {
        self.env().episode_metrics()
    }
    fn clock(&self) -> Option<f64> {
        self.env().clock()
    }
}

impl Sim {
    fn env(&self) -> &dyn Env {
        match self {
            Self::Scenario(env) => env,
            Self::CartPole(env) => env,
        }
    }

    fn env_mut(&mut self) -> &mut dyn Env {
        match self {
            Self::Scenario(env) => env,
            Self::CartPole(env) => env,
        }
    }
}
