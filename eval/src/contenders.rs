//! Contenders: the heuristics and checkpoints a suite compares. This is the one place that
//! knows how a learned policy is loaded and run; everything downstream sees a
//! [`Scheduler`].

use anyhow::{Context, Result, bail};
use lepton_agent::checkpoint::{self, LoadedPolicy};
use lepton_env::scenario::ScenarioEnv;
use lepton_env::schedulers::{self, Scheduler};
use lepton_env::{ActionLayout, Env, Scenario};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What a contender is, as report.json records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContenderKind {
    Heuristic,
    Checkpoint {
        /// The path as given on the command line.
        path: String,
        /// The metadata file it resolved to.
        metadata_file: String,
        /// SHA-256 of the metadata file (which records the weights' own hash).
        metadata_sha256: String,
        weights_sha256: String,
        global_step: u64,
        obs_dim: usize,
        num_actions: usize,
        /// What the policy's action indices mean (`None` for format-1 checkpoints, which did
        /// not record it: their sizes are all that can be checked).
        #[serde(skip)]
        action_layout: Option<ActionLayout>,
    },
}

/// One contender of an evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contender {
    pub name: String,
    #[serde(flatten)]
    pub kind: ContenderKind,
    #[serde(skip)]
    resolved: Option<PathBuf>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Contender {
    /// A registry heuristic; unknown names fail with the list of valid ones.
    pub fn heuristic(spec: &str) -> Result<Self> {
        let scheduler = schedulers::by_name(spec)?;
        Ok(Self {
            name: scheduler.name(),
            kind: ContenderKind::Heuristic,
            resolved: None,
        })
    }

    /// A checkpoint, loaded once here to validate it (missing files, bad hashes, corrupt
    /// tensors all fail now, before any episode runs). `name` is how reports call it.
    pub fn checkpoint(path: &Path, name: String) -> Result<Self> {
        // `runs/x/checkpoints/best` names `best.json` (the form `make demo` passes).
        let with_json = path.with_extension("json");
        let given = if !path.exists() && with_json.is_file() {
            with_json.as_path()
        } else {
            path
        };
        let resolved = checkpoint::resolve(given).map_err(|e| anyhow::anyhow!("{e}"))?;
        let policy =
            LoadedPolicy::load(&resolved, tch::Device::Cpu).map_err(|e| anyhow::anyhow!("{e}"))?;
        let bytes = std::fs::read(&resolved)
            .with_context(|| format!("cannot read {}", resolved.display()))?;
        let meta = policy.meta();
        Ok(Self {
            name,
            kind: ContenderKind::Checkpoint {
                path: path.to_string_lossy().into_owned(),
                metadata_file: resolved
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                metadata_sha256: sha256_hex(&bytes),
                weights_sha256: meta.weights.sha256.clone(),
                global_step: meta.global_step,
                obs_dim: policy.obs_dim(),
                num_actions: policy.num_actions(),
                action_layout: (meta.versions.format >= 2).then(|| meta.action_layout.clone()),
            },
            resolved: Some(resolved),
        })
    }

    pub fn is_learned(&self) -> bool {
        matches!(self.kind, ContenderKind::Checkpoint { .. })
    }

    /// Refuses a checkpoint whose observation or action sizes do not fit `scenario`.
    pub fn check_fits(&self, scenario_name: &str, scenario: &Scenario) -> Result<()> {
        let ContenderKind::Checkpoint {
            obs_dim,
            num_actions,
            path,
            action_layout,
            ..
        } = &self.kind
        else {
            return Ok(());
        };
        let env = scenario.build();
        let (env_obs, env_actions) = (env.observation_space().dim(), env.action_space().n);
        if (*obs_dim, *num_actions) != (env_obs, env_actions) {
            bail!(
                "checkpoint {path} does not fit scenario `{scenario_name}`: the policy takes {obs_dim} observations \
                 and {num_actions} actions, the scenario has {env_obs} observations and {env_actions} actions"
            );
        }
        let env_layout = env.action_layout();
        if let Some(layout) = action_layout
            && *layout != env_layout
        {
            bail!(
                "checkpoint {path} does not fit scenario `{scenario_name}`: the policy's actions are \
                 {layout:?}, the scenario's are {env_layout:?}"
            );
        }
        Ok(())
    }

    /// A fresh scheduler for one episode.
    pub fn instantiate(&self) -> Result<Box<dyn Scheduler>> {
        match (&self.kind, &self.resolved) {
            (ContenderKind::Heuristic, _) => Ok(schedulers::by_name(&self.name)?),
            (ContenderKind::Checkpoint { .. }, Some(path)) => {
                let policy = LoadedPolicy::load(path, tch::Device::Cpu)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(Box::new(Learned {
                    name: self.name.clone(),
                    policy,
                }))
            }
            (ContenderKind::Checkpoint { path, .. }, None) => {
                bail!("checkpoint {path} was not loaded")
            }
        }
    }
}

/// A trained policy as a [`Scheduler`]: greedy over the legal actions of its observation.
struct Learned {
    name: String,
    policy: LoadedPolicy,
}

impl Scheduler for Learned {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn reset(&mut self, _seed: u64) {}

    fn act(&mut self, _env: &ScenarioEnv, obs: &[f32], mask: &[bool]) -> usize {
        self.policy.act(obs, mask)
    }
}

/// Report names for checkpoints: `ckpt:<file stem>`, with `#2`, `#3`, ... on clashes.
pub fn checkpoint_names(paths: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for path in paths {
        let stem = path
            .file_stem()
            .or_else(|| path.file_name())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "checkpoint".into());
        let base = format!("ckpt:{stem}");
        let mut name = base.clone();
        let mut k = 2;
        while names.contains(&name) {
            name = format!("{base}#{k}");
            k += 1;
        }
        names.push(name);
    }
    names
}
