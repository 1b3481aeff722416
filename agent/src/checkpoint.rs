//! The checkpoint format, and [`LoadedPolicy`] for evaluation.
//!
//! A checkpoint is a metadata JSON ([`CheckpointMeta`]) beside tensor files in one directory:
//! * `<stem>.safetensors` — the policy weights only, named as in the network
//!   (`actor.0.weight`, ...), loadable from Python (`safetensors.torch.load_file`);
//! * `<stem>.optim.safetensors` — Adam's moments (`m.<param>`, `v.<param>`);
//! * `<stem>.<name>.safetensors` / `<stem>.<name>.bin` — named extra groups a trainer needs to
//!   continue exactly (DQN's `target` network, its `replay` buffer as bytes);
//! * the metadata: the resolved config, the observation and action layouts, what the action head
//!   means (`logits` or `q`), the network config, step, seed, versions, optimizer step, the
//!   observation normaliser, the SHA-256 of every file above and of the scenario and data files
//!   the env was built from, and the trainer's own state (RNG and env counters).
//!
//! `<stem>` is `<kind>_<step>` (`step_0000012800`, `best_0000012800`, ...). Periodic
//! checkpoints keep their metadata beside them (`step_0000012800.json`); `best.json` and
//! `final.json` point at the stem they describe. Every file is written to a temporary name,
//! synced and renamed, data files first and the JSON last, so the JSON that exists always
//! names complete files: an interrupted write leaves the previous checkpoint intact. Loading
//! checks the hashes and the shapes, and every failure is a [`CheckpointError`] that says
//! which file and why. Format 1 (before the action layout and head were recorded) still loads:
//! both are inferred the way that format's readers did, and a run that recorded DQN's
//! `num_updates` is read as a Q head.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use lepton_env::scenario::limits;
use lepton_env::{ActionBlock, ActionLayout, ObsLayout};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

use crate::distributions::MaskedCategorical;
use crate::named::{NamedTensors, copy_named};
use crate::networks::{Head, NetworkConfig, Policy, with_torch_rng};
use crate::normalize::ObsNormalizer;
use crate::optim::Adam;

/// Bumped whenever the metadata or file layout changes incompatibly (readers keep reading the
/// older versions they know).
pub const FORMAT_VERSION: u32 = 2;

/// Serializable mirror of [`ObsLayout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutMeta {
    pub global: usize,
    pub server_rows: usize,
    pub server_features: usize,
    pub slot_rows: usize,
    pub slot_features: usize,
    /// Running-task rows (`[preemption]`); absent from older checkpoints and when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub running_rows: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub running_features: usize,
    /// Resource columns of the rows; absent from older checkpoints and when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resources: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl From<ObsLayout> for LayoutMeta {
    fn from(l: ObsLayout) -> Self {
        Self {
            global: l.global,
            server_rows: l.server_rows,
            server_features: l.server_features,
            slot_rows: l.slot_rows,
            slot_features: l.slot_features,
            running_rows: l.running_rows,
            running_features: l.running_features,
            resources: l.resources,
        }
    }
}

impl From<LayoutMeta> for ObsLayout {
    fn from(l: LayoutMeta) -> Self {
        Self {
            global: l.global,
            server_rows: l.server_rows,
            server_features: l.server_features,
            slot_rows: l.slot_rows,
            slot_features: l.slot_features,
            running_rows: l.running_rows,
            running_features: l.running_features,
            resources: l.resources,
        }
    }
}

/// Versions of the software that wrote a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    pub format: u32,
    pub lepton: String,
    pub tch: String,
}

impl Versions {
    pub fn current() -> Self {
        Self {
            format: FORMAT_VERSION,
            lepton: env!("CARGO_PKG_VERSION").to_string(),
            tch: "0.26".to_string(),
        }
    }
}

/// A file of the checkpoint, relative to its metadata, and its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub file: String,
    pub sha256: String,
}

/// A file the training env was built from (scenario, trace), as the config named it, and its
/// SHA-256 when the checkpoint was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceHash {
    pub path: String,
    pub sha256: String,
}

/// How [`LoadedPolicy`] decodes a checkpoint greedily.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GreedyRule {
    /// The legal arg-max of the head ([`Policy::greedy`]): the policy's most likely action.
    /// Every checkpoint that records a `greedy` key has this.
    ArgMax,
    /// A logits head over placements then wait, in a checkpoint written before the
    /// `greedy` key existed: [`MaskedCategorical::placement_mode`] (summed mass per slot, then a
    /// server), the rule it was selected and gated under. Any other head or layout: arg-max.
    SlotMass,
}

impl GreedyRule {
    /// What a checkpoint without a `greedy` key was decoded with.
    fn before_issue_14() -> Self {
        Self::SlotMass
    }
}

/// The metadata JSON of a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointMeta {
    pub versions: Versions,
    /// `step`, `best`, `final`, `interrupted`.
    pub kind: String,
    /// Env steps taken (all envs together).
    pub global_step: u64,
    /// Iterations (PPO) or learning steps (DQN) completed.
    pub iteration: u64,
    pub seed: u64,
    /// The resolved training config, as TOML.
    pub config_toml: String,
    pub obs_layout: LayoutMeta,
    /// The seconds the training env divided its time features by (a cluster scenario's
    /// `time_scale_s`): an observation built elsewhere must use the same. Absent for other
    /// envs and in older checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obs_time_scale_s: Option<f64>,
    pub obs_dim: usize,
    pub num_actions: usize,
    /// What each action index means, as the env published it.
    pub action_layout: ActionLayout,
    /// What the action head's outputs mean.
    pub head: Head,
    /// How the head is decoded greedily.
    #[serde(default = "GreedyRule::before_issue_14")]
    pub greedy: GreedyRule,
    pub network: NetworkConfig,
    pub weights: FileRef,
    pub optimizer: FileRef,
    pub optimizer_step: i64,
    /// Named extra groups (DQN: `target`, `replay`).
    #[serde(default)]
    pub extras: BTreeMap<String, FileRef>,
    pub normalizer: Option<ObsNormalizer>,
    /// The scenario and data files of the training env (empty for envs built in code).
    #[serde(default)]
    pub sources: Vec<SourceHash>,
    /// Whatever the trainer needs to continue exactly (RNG states, env counters, ...).
    pub trainer_state: serde_json::Value,
}

/// The metadata of format 1, read and converted by [`read_meta`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaV1 {
    versions: Versions,
    kind: String,
    global_step: u64,
    iteration: u64,
    seed: u64,
    config_toml: String,
    obs_layout: LayoutMeta,
    obs_dim: usize,
    num_actions: usize,
    network: NetworkConfig,
    weights_file: String,
    weights_sha256: String,
    optimizer_file: String,
    optimizer_sha256: String,
    optimizer_step: i64,
    normalizer: Option<ObsNormalizer>,
    trainer_state: serde_json::Value,
}

/// The action layout format-1 readers assumed from the sizes alone: placements then wait when
/// the count is slots × servers + 1 (preferred when one server makes it ambiguous), slots then
/// wait when it is slots + 1, unstructured otherwise.
pub fn legacy_action_layout(obs: ObsLayout, num_actions: usize) -> ActionLayout {
    let (slots, servers) = (obs.slot_rows, obs.server_rows);
    if slots > 0 && servers > 0 && num_actions == slots * servers + 1 {
        ActionLayout::placements_then_wait(slots, servers)
    } else if slots > 0 && num_actions == slots + 1 {
        ActionLayout::slots_then_wait(slots)
    } else {
        ActionLayout::plain(num_actions)
    }
}

impl From<MetaV1> for CheckpointMeta {
    fn from(m: MetaV1) -> Self {
        // Format 1 did not say what the head meant; only the DQN loop saved `num_updates`.
        let head = if m.trainer_state.get("num_updates").is_some() {
            Head::Q
        } else {
            Head::Logits
        };
        let mut extras = BTreeMap::new();
        // Format 1's DQN extras are named in its trainer state, unhashed.
        for (key, name) in [("target_file", "target"), ("replay_file", "replay")] {
            if let Some(file) = m.trainer_state.get(key).and_then(|f| f.as_str()) {
                extras.insert(
                    name.to_string(),
                    FileRef {
                        file: file.to_string(),
                        sha256: String::new(),
                    },
                );
            }
        }
        Self {
            versions: m.versions,
            kind: m.kind,
            global_step: m.global_step,
            iteration: m.iteration,
            seed: m.seed,
            config_toml: m.config_toml,
            obs_layout: m.obs_layout,
            obs_dim: m.obs_dim,
            num_actions: m.num_actions,
            action_layout: legacy_action_layout(m.obs_layout.into(), m.num_actions),
            head,
            greedy: GreedyRule::before_issue_14(),
            network: m.network,
            weights: FileRef {
                file: m.weights_file,
                sha256: m.weights_sha256,
            },
            optimizer: FileRef {
                file: m.optimizer_file,
                sha256: m.optimizer_sha256,
            },
            optimizer_step: m.optimizer_step,
            extras,
            normalizer: m.normalizer,
            sources: Vec::new(),
            obs_time_scale_s: None,
            trainer_state: m.trainer_state,
        }
    }
}

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("checkpoint {path}: not a valid metadata file: {reason}")]
    BadMeta { path: PathBuf, reason: String },
    #[error(
        "checkpoint {path}: written by format version {found}, this build reads versions 1 to {expected}"
    )]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "checkpoint {path}: {file} does not match the hash recorded in the metadata (an interrupted or tampered write)"
    )]
    HashMismatch { path: PathBuf, file: String },
    #[error("checkpoint {path}: {reason}")]
    Tensors { path: PathBuf, reason: String },
    #[error("checkpoint {path}: {reason}")]
    Mismatch { path: PathBuf, reason: String },
    #[error("no checkpoint found in {0} (expected best.json, final.json or step_*.json)")]
    NotFound(PathBuf),
    /// The weights file named where the metadata belongs (the common mistake: the metadata
    /// names its weights, not the reverse).
    #[error(
        "checkpoint {path}: this is a weights file; pass the .json metadata file beside it ({hint})"
    )]
    WeightsFile { path: PathBuf, hint: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The SHA-256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, CheckpointError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The hashes of the files an env was built from, to be stored with [`SaveRequest::sources`].
pub fn hash_sources(paths: &[PathBuf]) -> Result<Vec<SourceHash>, CheckpointError> {
    paths
        .iter()
        .map(|path| {
            Ok(SourceHash {
                path: path.display().to_string(),
                sha256: sha256_file(path)?,
            })
        })
        .collect()
}

/// The recorded sources that are missing or whose content changed since, each with why.
pub fn changed_sources(recorded: &[SourceHash]) -> Vec<String> {
    recorded
        .iter()
        .filter_map(|source| match sha256_file(Path::new(&source.path)) {
            Ok(hash) if hash == source.sha256 => None,
            Ok(_) => Some(format!("{} changed since the checkpoint", source.path)),
            Err(_) => Some(format!("{} is missing or unreadable", source.path)),
        })
        .collect()
}

/// Writes `bytes` to `path` atomically: temporary file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let tmp = tmp_path(path);
    {
        let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// Deletes the temporary files of interrupted atomic writes (`<name>.tmp<pid>`) in `dir`.
/// Call it only where no other process is writing into `dir` (a run's own directories: a
/// second trainer on the same run is refused).
pub fn remove_temp_files(dir: &Path) -> Result<(), CheckpointError> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if is_temp_file(&entry.file_name().to_string_lossy()) {
            fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
        }
    }
    Ok(())
}

/// Whether `name` is a temporary file of [`write_atomic`] (`….tmp<digits>`).
fn is_temp_file(name: &str) -> bool {
    name.rsplit_once(".tmp").is_some_and(|(stem, pid)| {
        !stem.is_empty() && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

fn write_tensors_atomic(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), CheckpointError> {
    let tmp = tmp_path(path);
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.to_device(Device::Cpu).contiguous()))
        .collect();
    Tensor::write_safetensors(&cpu, &tmp).map_err(|e| CheckpointError::Tensors {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// The file stem of a checkpoint of `kind` at `step`.
pub fn stem(kind: &str, step: u64) -> String {
    format!("{kind}_{step:010}")
}

/// Where the metadata of a checkpoint of `kind` at `step` lives in `dir`.
pub fn meta_path(dir: &Path, kind: &str, step: u64) -> PathBuf {
    match kind {
        "step" => dir.join(format!("{}.json", stem(kind, step))),
        other => dir.join(format!("{other}.json")),
    }
}

/// A named extra group saved beside the weights.
#[derive(Debug)]
pub enum Extra {
    /// Named tensors (`<stem>.<name>.safetensors`), e.g. a target network.
    Tensors(NamedTensors),
    /// Opaque bytes (`<stem>.<name>.bin`), e.g. a replay buffer.
    Bytes(Vec<u8>),
}

/// What the trainer hands over to be saved.
#[derive(Debug)]
pub struct SaveRequest<'a> {
    pub kind: &'a str,
    pub global_step: u64,
    pub iteration: u64,
    pub seed: u64,
    pub config_toml: &'a str,
    pub network: &'a NetworkConfig,
    pub policy: &'a Policy,
    pub optimizer: &'a Adam,
    pub normalizer: Option<&'a ObsNormalizer>,
    /// Named extra groups; names are lowercase words other than `optim`.
    pub extras: Vec<(&'a str, Extra)>,
    pub sources: &'a [SourceHash],
    /// See [`CheckpointMeta::obs_time_scale_s`].
    pub obs_time_scale_s: Option<f64>,
    pub trainer_state: serde_json::Value,
}

fn valid_extra_name(name: &str) -> bool {
    !name.is_empty() && name != "optim" && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// Writes a checkpoint into `dir` and returns the path of its metadata file. For `best` and
/// `final`, the files of the previous checkpoint of the same kind are removed afterwards.
///
/// # Panics
/// When an extra's name is not a lowercase word or is `optim` (a programming error).
pub fn save(dir: &Path, req: SaveRequest<'_>) -> Result<PathBuf, CheckpointError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let stem = stem(req.kind, req.global_step);
    let tensors = |file: String, tensors: &[(String, Tensor)]| {
        write_tensors_atomic(&dir.join(&file), tensors)?;
        Ok::<_, CheckpointError>(FileRef {
            sha256: sha256_file(&dir.join(&file))?,
            file,
        })
    };
    let weights = tensors(
        format!("{stem}.safetensors"),
        &req.policy.named_parameters(),
    )?;
    let optimizer = tensors(
        format!("{stem}.optim.safetensors"),
        &req.optimizer.named_state(),
    )?;
    let mut extras = BTreeMap::new();
    for (name, extra) in &req.extras {
        assert!(valid_extra_name(name), "bad checkpoint extra name {name:?}");
        let file = match extra {
            Extra::Tensors(group) => tensors(format!("{stem}.{name}.safetensors"), group)?,
            Extra::Bytes(bytes) => {
                let file = format!("{stem}.{name}.bin");
                write_atomic(&dir.join(&file), bytes)?;
                FileRef {
                    sha256: sha256_file(&dir.join(&file))?,
                    file,
                }
            }
        };
        extras.insert(name.to_string(), file);
    }
    let layout = req.policy.obs_layout();
    let meta = CheckpointMeta {
        versions: Versions::current(),
        kind: req.kind.to_string(),
        global_step: req.global_step,
        iteration: req.iteration,
        seed: req.seed,
        config_toml: req.config_toml.to_string(),
        obs_layout: layout.into(),
        obs_time_scale_s: req.obs_time_scale_s,
        obs_dim: layout.dim(),
        num_actions: req.policy.num_actions(),
        action_layout: req.policy.action_layout().clone(),
        head: req.policy.head(),
        greedy: GreedyRule::ArgMax,
        network: req.network.clone(),
        weights,
        optimizer,
        optimizer_step: req.optimizer.step,
        extras,
        normalizer: req.normalizer.cloned(),
        sources: req.sources.to_vec(),
        trainer_state: req.trainer_state,
    };
    let path = meta_path(dir, req.kind, req.global_step);
    let json = serde_json::to_vec_pretty(&meta).expect("metadata serialises");
    write_atomic(&path, &json)?;
    if req.kind != "step" {
        remove_stale_files(dir, req.kind, &stem)?;
    }
    Ok(path)
}

/// Deletes `<kind>_*` data files other than those of `keep_stem`.
fn remove_stale_files(dir: &Path, kind: &str, keep_stem: &str) -> Result<(), CheckpointError> {
    let prefix = format!("{kind}_");
    let keep = format!("{keep_stem}.");
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with(&prefix) && !name.starts_with(&keep) {
            fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
        }
    }
    Ok(())
}

/// The step of a periodic checkpoint's metadata file name (`step_0000012800.json` → 12800).
pub fn periodic_step(file_name: &str) -> Option<u64> {
    file_name
        .strip_prefix("step_")?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

/// The step of any file of a periodic checkpoint (`step_0000012800.target.safetensors` →
/// 12800).
fn periodic_file_step(file_name: &str) -> Option<u64> {
    let rest = file_name.strip_prefix("step_")?;
    let (digits, _) = rest.split_once('.')?;
    digits.parse().ok()
}

/// Which periodic checkpoints to delete so that the newest `keep` remain (pure).
pub fn periodic_to_delete(mut steps: Vec<u64>, keep: usize) -> Vec<u64> {
    steps.sort_unstable();
    let n = steps.len().saturating_sub(keep);
    steps.truncate(n);
    steps
}

/// Deletes old periodic checkpoints (metadata first, then every file of the same stem),
/// keeping the newest `keep`, the data files of periodic checkpoints whose metadata is gone
/// (left by an interrupted pruning) and the temporary files of interrupted writes.
pub fn prune_periodic(dir: &Path, keep: usize) -> Result<(), CheckpointError> {
    remove_temp_files(dir)?;
    for step in periodic_to_delete(list_periodic(dir)?, keep) {
        let path = meta_path(dir, "step", step);
        fs::remove_file(&path).map_err(io_err(&path))?;
    }
    let kept = list_periodic(dir)?;
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if periodic_step(&name).is_none()
            && periodic_file_step(&name).is_some_and(|step| !kept.contains(&step))
        {
            fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
        }
    }
    Ok(())
}

fn list_periodic(dir: &Path) -> Result<Vec<u64>, CheckpointError> {
    let mut steps = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if let Some(step) = periodic_step(&entry.file_name().to_string_lossy()) {
            steps.push(step);
        }
    }
    Ok(steps)
}

/// The metadata file of the newest periodic checkpoint in `dir`.
pub fn latest_periodic(dir: &Path) -> Result<PathBuf, CheckpointError> {
    if !dir.is_dir() {
        return Err(CheckpointError::NotFound(dir.to_path_buf()));
    }
    let step = list_periodic(dir)?
        .into_iter()
        .max()
        .ok_or_else(|| CheckpointError::NotFound(dir.to_path_buf()))?;
    Ok(meta_path(dir, "step", step))
}

/// Reads and checks a metadata file: its format version (1 is converted), that its sizes
/// agree, and the hash of every data file it names.
pub fn read_meta(path: &Path) -> Result<CheckpointMeta, CheckpointError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let bad = |reason: String| CheckpointError::BadMeta {
        path: path.to_path_buf(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let found = value
        .pointer("/versions/format")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let meta: CheckpointMeta = match found {
        1 => serde_json::from_value::<MetaV1>(value)
            .map_err(|e| bad(e.to_string()))?
            .into(),
        2 => serde_json::from_value(value).map_err(|e| bad(e.to_string()))?,
        _ => {
            return Err(CheckpointError::Version {
                path: path.to_path_buf(),
                found: u32::try_from(found).unwrap_or(u32::MAX),
                expected: FORMAT_VERSION,
            });
        }
    };
    let layout = ObsLayout::from(meta.obs_layout);
    // Sizes no hash covers, read before any network is built from them.
    limits::policy_sizes(&layout, &meta.action_layout)
        .map_err(|e| bad(format!("observation layout {layout:?}: {e}")))?;
    if layout.dim() != meta.obs_dim || meta.action_layout.num_actions() != meta.num_actions {
        return Err(bad(format!(
            "inconsistent sizes: obs_dim {} for a layout of {}, num_actions {} for an action layout of {}",
            meta.obs_dim,
            layout.dim(),
            meta.num_actions,
            meta.action_layout.num_actions()
        )));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let files = [&meta.weights, &meta.optimizer]
        .into_iter()
        .chain(meta.extras.values());
    for file in files {
        // Format 1 extras carry no hash.
        if file.sha256.is_empty() && found == 1 {
            continue;
        }
        if sha256_file(&dir.join(&file.file))? != file.sha256 {
            return Err(CheckpointError::HashMismatch {
                path: path.to_path_buf(),
                file: file.file.clone(),
            });
        }
    }
    Ok(meta)
}

fn read_tensors(path: &Path) -> Result<NamedTensors, CheckpointError> {
    Tensor::read_safetensors(path).map_err(|e| CheckpointError::Tensors {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn checkpoint_dir(meta_path: &Path) -> &Path {
    meta_path.parent().unwrap_or(Path::new("."))
}

/// Reads the file `file` of a checkpoint and copies its tensors into `dst` (names and shapes
/// checked, see [`copy_named`]).
fn load_group(
    meta_path: &Path,
    file: &FileRef,
    dst: &[(String, Tensor)],
    what: &str,
) -> Result<(), CheckpointError> {
    let src = read_tensors(&checkpoint_dir(meta_path).join(&file.file))?;
    copy_named(dst, &src, what).map_err(|reason| CheckpointError::Mismatch {
        path: meta_path.to_path_buf(),
        reason,
    })
}

fn extra<'m>(
    meta_path: &Path,
    meta: &'m CheckpointMeta,
    name: &str,
) -> Result<&'m FileRef, CheckpointError> {
    meta.extras
        .get(name)
        .ok_or_else(|| CheckpointError::Mismatch {
            path: meta_path.to_path_buf(),
            reason: format!("it has no '{name}' group"),
        })
}

/// Copies the checkpoint's weights into `policy`, checking that every name and shape matches.
pub fn load_weights(
    meta_path: &Path,
    meta: &CheckpointMeta,
    policy: &Policy,
) -> Result<(), CheckpointError> {
    load_group(
        meta_path,
        &meta.weights,
        &policy.named_parameters(),
        "weights",
    )
}

/// Restores the optimizer state of a checkpoint into `optimizer`.
pub fn load_optimizer(
    meta_path: &Path,
    meta: &CheckpointMeta,
    optimizer: &mut Adam,
) -> Result<(), CheckpointError> {
    load_group(
        meta_path,
        &meta.optimizer,
        &optimizer.named_state(),
        "optimizer state",
    )?;
    optimizer.step = meta.optimizer_step;
    Ok(())
}

/// Copies the named extra tensor group `name` into `dst` (names and shapes checked).
pub fn load_extra_tensors(
    meta_path: &Path,
    meta: &CheckpointMeta,
    name: &str,
    dst: &[(String, Tensor)],
) -> Result<(), CheckpointError> {
    load_group(meta_path, extra(meta_path, meta, name)?, dst, name)
}

/// The bytes of the named extra group `name`, if the checkpoint has one.
pub fn read_extra_bytes(
    meta_path: &Path,
    meta: &CheckpointMeta,
    name: &str,
) -> Result<Option<Vec<u8>>, CheckpointError> {
    let Some(file) = meta.extras.get(name) else {
        return Ok(None);
    };
    let path = checkpoint_dir(meta_path).join(&file.file);
    fs::read(&path).map(Some).map_err(io_err(&path))
}

/// The checkpoint's network, built for observations laid out as `layout` and the actions
/// `actions` (its training layouts, or larger ones for a set network) on `device`, with its
/// weights loaded. Takes its turn on libtorch's global RNG, so trainers running beside it keep
/// their seeded initialisation.
pub fn load_policy(
    meta_path: &Path,
    meta: &CheckpointMeta,
    layout: ObsLayout,
    actions: &ActionLayout,
    device: Device,
) -> Result<Policy, CheckpointError> {
    let policy = with_torch_rng(None, || {
        Policy::new(&meta.network, layout, actions, meta.head, device)
    })
    .map_err(|e| CheckpointError::Mismatch {
        path: meta_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    load_weights(meta_path, meta, &policy)?;
    for (name, tensor) in policy.named_parameters() {
        let finite = tch::no_grad(|| tensor.isfinite().all().int64_value(&[])) == 1;
        if !finite {
            return Err(CheckpointError::Tensors {
                path: meta_path.to_path_buf(),
                reason: format!("weight {name} holds NaN or infinity: the checkpoint is corrupt"),
            });
        }
    }
    Ok(policy)
}

/// Resolves what a user passed as a checkpoint: a metadata `.json` file (its extension may be
/// left out: `runs/demo/checkpoints/best`), or a directory (a run
/// directory or its `checkpoints/`), where `best.json`, then `final.json`, then the newest
/// periodic checkpoint is taken.
pub fn resolve(path: &Path) -> Result<PathBuf, CheckpointError> {
    if path.extension().is_some_and(|e| e == "safetensors") {
        // `best_0000614400.safetensors` belongs to `best.json`: name the metadata file in this
        // directory that lists it, when there is one.
        let dir = path.parent().unwrap_or(Path::new("."));
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
        let owner = fs::read_dir(dir).ok().and_then(|entries| {
            entries.flatten().map(|e| e.path()).find(|meta| {
                meta.extension().is_some_and(|e| e == "json")
                    && fs::read_to_string(meta).is_ok_and(|text| {
                        file.as_deref()
                            .is_some_and(|f| text.contains(&format!("\"{f}\"")))
                    })
            })
        });
        return Err(CheckpointError::WeightsFile {
            path: path.to_path_buf(),
            hint: owner.map_or("e.g. best.json".into(), |m| m.display().to_string()),
        });
    }
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    // `checkpoints/best` for `checkpoints/best.json`.
    let with_json = path.with_extension("json");
    if !path.exists() && with_json.is_file() {
        return Ok(with_json);
    }
    if !path.exists() {
        return Err(CheckpointError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        });
    }
    let dir = if path.join("checkpoints").is_dir() {
        path.join("checkpoints")
    } else {
        path.to_path_buf()
    };
    for name in ["best.json", "final.json"] {
        if dir.join(name).is_file() {
            return Ok(dir.join(name));
        }
    }
    latest_periodic(&dir)
}

/// A trained policy loaded for evaluation: greedy and deterministic, by the checkpoint's
/// [`GreedyRule`] (the legal arg-max of its head for every checkpoint that records the rule).
#[derive(Debug)]
pub struct LoadedPolicy {
    policy: Policy,
    normalizer: Option<ObsNormalizer>,
    meta: CheckpointMeta,
    obs_scratch: Vec<f32>,
}

impl LoadedPolicy {
    /// Loads a checkpoint (see [`resolve`] for what `path` may be) onto `device`.
    pub fn load(path: impl AsRef<Path>, device: Device) -> Result<Self, CheckpointError> {
        let path = resolve(path.as_ref())?;
        let meta = read_meta(&path)?;
        let (layout, actions) = (meta.obs_layout.into(), meta.action_layout.clone());
        Self::build(path, meta, device, layout, &actions)
    }

    /// Loads the same weights for an env with a different number of servers or slots (set
    /// network only: its weights do not depend on those counts).
    pub fn load_for_layout(
        path: impl AsRef<Path>,
        device: Device,
        layout: ObsLayout,
        actions: &ActionLayout,
    ) -> Result<Self, CheckpointError> {
        let path = resolve(path.as_ref())?;
        let meta = read_meta(&path)?;
        if meta.normalizer.is_some() && !layout.reads_as(&meta.obs_layout.into()) {
            return Err(CheckpointError::Mismatch {
                path,
                reason: "the policy normalises observations element-wise, so it only runs on its training layout".into(),
            });
        }
        Self::build(path, meta, device, layout, actions)
    }

    fn build(
        path: PathBuf,
        meta: CheckpointMeta,
        device: Device,
        layout: ObsLayout,
        actions: &ActionLayout,
    ) -> Result<Self, CheckpointError> {
        let policy = load_policy(&path, &meta, layout, actions, device)?;
        let normalizer = meta.normalizer.clone();
        Ok(Self {
            policy,
            normalizer,
            meta,
            obs_scratch: Vec::new(),
        })
    }

    pub fn obs_dim(&self) -> usize {
        self.policy.obs_layout().dim()
    }

    pub fn num_actions(&self) -> usize {
        self.policy.num_actions()
    }

    pub fn meta(&self) -> &CheckpointMeta {
        &self.meta
    }

    /// The greedy legal action for one observation and mask.
    ///
    /// # Panics
    /// When `obs` or `mask` has the wrong length, or the mask has no legal action.
    pub fn act(&mut self, obs: &[f32], mask: &[bool]) -> usize {
        let mut out = [0usize];
        self.act_batch(obs, mask, &mut out);
        out[0]
    }

    /// The head's score of every action for one observation (logits, or Q-values for a Q
    /// head), illegal actions at −∞: what the greedy arg-max ranks, for a caller that orders
    /// actions rather than picks one (lepton-serve ranks a queue by its slots' scores).
    ///
    /// # Panics
    /// As [`act`](Self::act).
    pub fn scores(&mut self, obs: &[f32], mask: &[bool]) -> Vec<f32> {
        let (obs, mask) = self.input_tensors(obs, mask, 1);
        let scores = tch::no_grad(|| {
            self.policy
                .forward(&obs)
                .0
                .masked_fill(&mask.logical_not(), f64::NEG_INFINITY)
                .to_device(Device::Cpu)
                .to_kind(Kind::Float)
                .reshape([-1])
        });
        Vec::<f32>::try_from(scores).expect("a float tensor converts to Vec<f32>")
    }

    /// A legal action sampled from the policy's masked softmax for one observation and mask
    /// (PPO's behaviour policy), drawing from `rng`; `None` for a Q head, which defines no
    /// distribution.
    ///
    /// # Panics
    /// As [`act`](Self::act).
    pub fn sample<R: rand::Rng>(
        &mut self,
        obs: &[f32],
        mask: &[bool],
        rng: &mut R,
    ) -> Option<usize> {
        if self.policy.head() != Head::Logits {
            return None;
        }
        let (obs, mask_t) = self.input_tensors(obs, mask, 1);
        let probs = tch::no_grad(|| {
            MaskedCategorical::new(&self.policy.forward(&obs).0, &mask_t)
                .probs()
                .to_device(Device::Cpu)
                .reshape([-1])
        });
        let probs = Vec::<f32>::try_from(probs).ok()?;
        let mut out = [0usize];
        crate::distributions::sample_masked(&probs, mask, self.num_actions(), rng, &mut out);
        Some(out[0])
    }

    /// `rows` observations (normalised as in training) and masks as tensors on the policy's
    /// device.
    ///
    /// # Panics
    /// When `obs` or `mask` has the wrong length, or a mask row has no legal action.
    fn input_tensors(&mut self, obs: &[f32], mask: &[bool], rows: usize) -> (Tensor, Tensor) {
        let (dim, n) = (self.obs_dim(), self.num_actions());
        assert_eq!(obs.len(), rows * dim, "observation length");
        assert_eq!(mask.len(), rows * n, "mask length");
        assert!(
            mask.chunks(n).all(|m| m.iter().any(|&b| b)),
            "a mask row has no legal action"
        );
        self.obs_scratch.clear();
        self.obs_scratch.extend_from_slice(obs);
        if let Some(norm) = &self.normalizer {
            norm.normalize(&mut self.obs_scratch);
        }
        let device = self.policy.device();
        (
            Tensor::from_slice(&self.obs_scratch)
                .view([rows as i64, dim as i64])
                .to_device(device),
            Tensor::from_slice(mask)
                .view([rows as i64, n as i64])
                .to_device(device),
        )
    }

    /// Greedy legal actions for a row-major batch of observations and masks.
    pub fn act_batch(&mut self, obs: &[f32], mask: &[bool], out: &mut [usize]) {
        let (obs, mask) = self.input_tensors(obs, mask, out.len());
        let actions = tch::no_grad(|| {
            let slot_mass = match (self.meta.greedy, self.policy.head()) {
                (GreedyRule::SlotMass, Head::Logits) => {
                    match self.policy.action_layout().blocks.as_slice() {
                        [
                            ActionBlock::Placements { slots, servers },
                            ActionBlock::Wait,
                        ] => Some((*slots, *servers)),
                        _ => None,
                    }
                }
                _ => None,
            };
            match slot_mass {
                Some((slots, servers)) => {
                    MaskedCategorical::new(&self.policy.forward(&obs).0, &mask)
                        .placement_mode(slots, servers)
                }
                None => self.policy.greedy(&obs, &mask),
            }
            .to_device(Device::Cpu)
            .to_kind(Kind::Int64)
        });
        for (i, a) in out.iter_mut().enumerate() {
            *a = actions.int64_value(&[i as i64]) as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::networks::Arch;
    use lepton_env::Env;

    fn saved_checkpoint(dir: &Path, kind: &str, step: u64) -> (Policy, Adam, PathBuf) {
        tch::manual_seed(7);
        let config = NetworkConfig::default();
        let policy = Policy::new(
            &config,
            ObsLayout::flat(3),
            &ActionLayout::plain(4),
            Head::Logits,
            Device::Cpu,
        )
        .unwrap();
        let mut adam = Adam::new(policy.named_parameters(), 1e-5);
        let (_, v) = policy.forward(&Tensor::ones([2, 3], (Kind::Float, Device::Cpu)));
        adam.zero_grad();
        v.sum(Kind::Float).backward();
        adam.step(1e-3);
        let mut norm = ObsNormalizer::new(3, 10.0);
        norm.update(&[1.0, 2.0, 3.0]);
        let path = save(
            dir,
            SaveRequest {
                kind,
                global_step: step,
                iteration: 1,
                seed: 5,
                config_toml: "x = 1\n",
                network: &config,
                policy: &policy,
                optimizer: &adam,
                normalizer: Some(&norm),
                extras: vec![
                    ("target", Extra::Tensors(policy.named_parameters())),
                    ("replay", Extra::Bytes(vec![1, 2, 3])),
                ],
                sources: &[],
                obs_time_scale_s: None,
                trainer_state: serde_json::json!({"rng": [1, 2]}),
            },
        )
        .unwrap();
        (policy, adam, path)
    }

    #[test]
    fn round_trip_restores_weights_optimizer_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let (policy, adam, path) = saved_checkpoint(dir.path(), "step", 128);
        assert_eq!(path.file_name().unwrap(), "step_0000000128.json");
        let meta = read_meta(&path).unwrap();
        assert_eq!(meta.global_step, 128);
        assert_eq!(meta.trainer_state["rng"][1], 2);
        assert_eq!(meta.normalizer.as_ref().unwrap().mean.len(), 3);
        tch::manual_seed(99);
        let fresh = Policy::new(
            &meta.network,
            meta.obs_layout.into(),
            &meta.action_layout,
            meta.head,
            Device::Cpu,
        )
        .unwrap();
        let mut fresh_adam = Adam::new(fresh.named_parameters(), 1e-5);
        load_weights(&path, &meta, &fresh).unwrap();
        load_optimizer(&path, &meta, &mut fresh_adam).unwrap();
        for ((n1, a), (n2, b)) in policy
            .named_parameters()
            .iter()
            .zip(fresh.named_parameters())
        {
            assert_eq!(n1, &n2);
            assert!(a.equal(&b), "{n1}");
        }
        for ((_, a), (_, b)) in adam.named_state().iter().zip(fresh_adam.named_state()) {
            assert!(a.equal(&b));
        }
        assert_eq!(fresh_adam.step, 1);
        // The extras: a tensor group copied by name, and bytes.
        let target = Policy::new(
            &meta.network,
            meta.obs_layout.into(),
            &meta.action_layout,
            meta.head,
            Device::Cpu,
        )
        .unwrap();
        load_extra_tensors(&path, &meta, "target", &target.named_parameters()).unwrap();
        for ((_, a), (_, b)) in policy
            .named_parameters()
            .iter()
            .zip(target.named_parameters())
        {
            assert!(a.equal(&b));
        }
        assert_eq!(
            read_extra_bytes(&path, &meta, "replay").unwrap(),
            Some(vec![1, 2, 3])
        );
        assert_eq!(read_extra_bytes(&path, &meta, "nothing").unwrap(), None);
        assert_eq!(meta.extras["replay"].file, "step_0000000128.replay.bin");
        assert_eq!(latest_periodic(dir.path()).unwrap(), path);
    }

    #[test]
    fn corrupted_or_mismatched_checkpoints_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _, path) = saved_checkpoint(dir.path(), "best", 64);
        assert_eq!(path.file_name().unwrap(), "best.json");
        // Tampered weights.
        let weights = dir.path().join("best_0000000064.safetensors");
        let mut bytes = fs::read(&weights).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&weights, bytes).unwrap();
        let err = read_meta(&path).unwrap_err();
        assert!(matches!(err, CheckpointError::HashMismatch { .. }), "{err}");
        // A tampered extra group is caught the same way.
        let (_, _, path) = saved_checkpoint(dir.path(), "best", 96);
        fs::write(dir.path().join("best_0000000096.replay.bin"), [9u8]).unwrap();
        let err = read_meta(&path).unwrap_err().to_string();
        assert!(err.contains("best_0000000096.replay.bin"), "{err}");
        // Not JSON.
        fs::write(dir.path().join("junk.json"), "{").unwrap();
        let err = read_meta(&dir.path().join("junk.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("junk.json"), "{err}");
        // Missing.
        let err = LoadedPolicy::load(dir.path().join("nope.json"), Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope.json"), "{err}");
        // A network that does not fit.
        let (_, _, path) = saved_checkpoint(dir.path(), "final", 64);
        let meta = read_meta(&path).unwrap();
        let other = Policy::new(
            &NetworkConfig::default(),
            ObsLayout::flat(5),
            &ActionLayout::plain(4),
            Head::Logits,
            Device::Cpu,
        )
        .unwrap();
        let err = load_weights(&path, &meta, &other).unwrap_err().to_string();
        assert!(err.contains("shape"), "{err}");
    }

    #[test]
    fn newer_best_replaces_the_older_files() {
        let dir = tempfile::tempdir().unwrap();
        saved_checkpoint(dir.path(), "best", 64);
        saved_checkpoint(dir.path(), "best", 128);
        assert!(!dir.path().join("best_0000000064.safetensors").exists());
        assert!(!dir.path().join("best_0000000064.replay.bin").exists());
        assert!(dir.path().join("best_0000000128.replay.bin").exists());
        assert!(dir.path().join("best_0000000128.safetensors").exists());
        assert_eq!(
            read_meta(&dir.path().join("best.json"))
                .unwrap()
                .global_step,
            128
        );
    }

    #[test]
    fn pruning_keeps_the_newest() {
        assert_eq!(periodic_to_delete(vec![30, 10, 20, 40], 2), vec![10, 20]);
        assert_eq!(periodic_to_delete(vec![10], 3), Vec::<u64>::new());
        assert_eq!(periodic_step("step_0000000128.json"), Some(128));
        assert_eq!(periodic_step("best.json"), None);
        let dir = tempfile::tempdir().unwrap();
        for step in [1, 2, 3] {
            saved_checkpoint(dir.path(), "step", step);
        }
        // An orphan left by an interrupted pruning: data files without their metadata; and
        // the temporary files of writes killed half-way, of a kept checkpoint too.
        fs::write(dir.path().join("step_0000000000.target.safetensors"), "x").unwrap();
        for tmp in ["step_0000000003.safetensors.tmp4242", "best.json.tmp7"] {
            fs::write(dir.path().join(tmp), "x").unwrap();
        }
        fs::write(
            dir.path().join("notes.tmp"),
            "kept: not a temp file of ours",
        )
        .unwrap();
        prune_periodic(dir.path(), 1).unwrap();
        assert!(
            !dir.path()
                .join("step_0000000003.safetensors.tmp4242")
                .exists()
        );
        assert!(!dir.path().join("best.json.tmp7").exists());
        assert!(dir.path().join("notes.tmp").exists());
        assert!(
            is_temp_file("config.toml.tmp12") && !is_temp_file("x.tmp") && !is_temp_file(".tmp1")
        );
        assert!(!dir.path().join("step_0000000001.json").exists());
        assert!(!dir.path().join("step_0000000002.safetensors").exists());
        assert!(
            !dir.path()
                .join("step_0000000002.target.safetensors")
                .exists()
        );
        assert!(!dir.path().join("step_0000000002.replay.bin").exists());
        assert!(
            !dir.path()
                .join("step_0000000000.target.safetensors")
                .exists()
        );
        assert!(dir.path().join("step_0000000003.replay.bin").exists());
        assert_eq!(
            latest_periodic(dir.path()).unwrap(),
            dir.path().join("step_0000000003.json")
        );
    }

    #[test]
    fn loaded_policy_acts_greedily_and_never_masked() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _, path) = saved_checkpoint(dir.path(), "final", 10);
        let mut loaded = LoadedPolicy::load(dir.path(), Device::Cpu).unwrap();
        assert_eq!(loaded.meta().global_step, 10);
        let by_stem = LoadedPolicy::load(dir.path().join("final"), Device::Cpu).unwrap();
        assert_eq!(by_stem.meta().global_step, 10);
        let obs = [0.5f32, -1.0, 2.0];
        let first = loaded.act(&obs, &[true; 4]);
        assert_eq!(loaded.act(&obs, &[true; 4]), first, "deterministic");
        let mut mask = [true; 4];
        mask[first] = false;
        assert_ne!(loaded.act(&obs, &mask), first);
        assert_eq!(loaded.act(&obs, &[false, false, true, false]), 2);
        // Its scores are the head's, illegal ones at −∞, and the greedy action is their
        // arg-max.
        let scores = loaded.scores(&obs, &mask);
        assert_eq!(scores[first], f32::NEG_INFINITY);
        assert!(
            scores
                .iter()
                .enumerate()
                .all(|(a, s)| a == first || s.is_finite())
        );
        let best = (0..4)
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .unwrap();
        assert_eq!(loaded.act(&obs, &mask), best);
        drop(path);
    }

    #[test]
    fn set_policy_runs_on_a_larger_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let config = NetworkConfig {
            arch: Arch::Set,
            embed_dim: 8,
            ..NetworkConfig::default()
        };
        let layout = |s| ObsLayout {
            global: 2,
            server_rows: s,
            server_features: 3,
            slot_rows: 2,
            slot_features: 2,
            ..ObsLayout::default()
        };
        let policy = Policy::new(
            &config,
            layout(4),
            &ActionLayout::placements_then_wait(2, 4),
            Head::Logits,
            Device::Cpu,
        )
        .unwrap();
        let adam = Adam::new(policy.named_parameters(), 1e-5);
        save(
            dir.path(),
            SaveRequest {
                kind: "final",
                global_step: 1,
                iteration: 1,
                seed: 0,
                config_toml: "",
                network: &config,
                policy: &policy,
                optimizer: &adam,
                normalizer: None,
                extras: Vec::new(),
                sources: &[],
                obs_time_scale_s: None,
                trainer_state: serde_json::Value::Null,
            },
        )
        .unwrap();
        let mut big = LoadedPolicy::load_for_layout(
            dir.path(),
            Device::Cpu,
            layout(8),
            &ActionLayout::placements_then_wait(2, 8),
        )
        .unwrap();
        let a = big.act(&vec![0.1; layout(8).dim()], &[true; 17]);
        assert!(a < 17);
    }

    /// The weights file is a standard safetensors file: Python (with only torch installed)
    /// parses its header and reads back the exact values.
    #[test]
    fn weights_load_in_python() {
        let dir = tempfile::tempdir().unwrap();
        let (policy, _, _) = saved_checkpoint(dir.path(), "final", 10);
        let python = std::env::var("LEPTON_PYTHON")
            .expect("LEPTON_PYTHON must point at the project's Python (set by .cargo/config.toml)");
        let script = r#"
import json, struct, sys, torch
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
info = header['policy_head.weight']
assert info['dtype'] == 'F32', info
start, end = info['data_offsets']
t = torch.frombuffer(bytearray(raw[8 + n + start:8 + n + end]), dtype=torch.float32).reshape(info['shape'])
print(repr(float(t[1, 2])))
"#;
        let out = std::process::Command::new(&python)
            .args(["-c", script])
            .arg(dir.path().join("final_0000000010.safetensors"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run LEPTON_PYTHON={python}: {e}"));
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let expected = policy.var_store().variables()["policy_head.weight"].double_value(&[1, 2]);
        assert_eq!(value, expected);
    }

    /// A head that is constant: every weight 0 and the head's bias `q`, so the network
    /// outputs `q` for any observation.
    fn constant_head_policy(
        layout: ObsLayout,
        actions: &ActionLayout,
        head: Head,
        q: &[f32],
    ) -> Policy {
        let config = NetworkConfig {
            shared_trunk: true,
            hidden: vec![4],
            ..NetworkConfig::default()
        };
        let policy = Policy::new(&config, layout, actions, head, Device::Cpu).unwrap();
        tch::no_grad(|| {
            for (name, mut t) in policy.named_parameters() {
                if name == "policy_head.bias" {
                    t.copy_(&Tensor::from_slice(q));
                } else {
                    let _ = t.zero_();
                }
            }
        });
        policy
    }

    /// Regression: greedy evaluation decoded every placement-mode checkpoint with a per-slot
    /// rule (softmax mass summed per slot, then a server), which is neither the rule DQN
    /// trained with (the legal arg-max of Q) nor the most likely action of a PPO policy
    /// (the most likely joint action). On `tiny`'s placement
    /// space (4 slots × 4 servers + wait) slot 0 has four good placements and slot 1 one
    /// slightly better one: the joint arg-max places slot 1 on server 0 (action 4), for either
    /// head; summed softmax mass (e⁵ + 3e^4.9 > e^5.2) would have chosen slot 0 (action 0).
    #[test]
    fn greedy_is_the_joint_masked_argmax_for_either_head() {
        let env = lepton_env::scenario::load_named("tiny").unwrap().build();
        let (layout, actions) = (env.obs_layout(), env.action_layout());
        assert_eq!(actions, ActionLayout::placements_then_wait(4, 4));
        let mut q = vec![0.0f32; 17];
        q[..4].copy_from_slice(&[5.0, 4.9, 4.9, 4.9]);
        q[4] = 5.2;
        for head in [Head::Q, Head::Logits] {
            let policy = constant_head_policy(layout, &actions, head, &q);
            let obs = Tensor::zeros([1, layout.dim() as i64], (Kind::Float, Device::Cpu));
            let mask = Tensor::from_slice(&[true; 17]).view([1, 17]);
            assert_eq!(policy.greedy(&obs, &mask).int64_value(&[0]), 4, "{head:?}");

            // The same through a checkpoint and LoadedPolicy, as lepton-eval runs it.
            let dir = tempfile::tempdir().unwrap();
            let adam = Adam::new(policy.named_parameters(), 1e-8);
            save(
                dir.path(),
                SaveRequest {
                    kind: "final",
                    global_step: 1,
                    iteration: 1,
                    seed: 0,
                    config_toml: "",
                    network: &NetworkConfig {
                        shared_trunk: true,
                        hidden: vec![4],
                        ..NetworkConfig::default()
                    },
                    policy: &policy,
                    optimizer: &adam,
                    normalizer: None,
                    extras: Vec::new(),
                    sources: &[],
                    obs_time_scale_s: None,
                    trainer_state: serde_json::Value::Null,
                },
            )
            .unwrap();
            let mut loaded = LoadedPolicy::load(dir.path(), Device::Cpu).unwrap();
            assert_eq!(loaded.meta().head, head);
            assert_eq!(loaded.meta().greedy, GreedyRule::ArgMax);
            assert_eq!(loaded.act(&vec![0.0; layout.dim()], &[true; 17]), 4);
            // Masked: the best legal action wins.
            let mut mask = [true; 17];
            mask[4] = false;
            assert_eq!(loaded.act(&vec![0.0; layout.dim()], &mask), 0);

            // Metadata written before the `greedy` key existed: a logits head keeps the
            // per-slot rule it was selected under (slot 0, action 0); a Q head the arg-max.
            let meta_path = resolve(dir.path()).unwrap();
            let mut json: serde_json::Value =
                serde_json::from_slice(&fs::read(&meta_path).unwrap()).unwrap();
            json.as_object_mut().unwrap().remove("greedy");
            fs::write(&meta_path, serde_json::to_vec(&json).unwrap()).unwrap();
            let mut legacy = LoadedPolicy::load(dir.path(), Device::Cpu).unwrap();
            assert_eq!(legacy.meta().greedy, GreedyRule::SlotMass);
            let expected = if head == Head::Logits { 0 } else { 4 };
            assert_eq!(legacy.act(&vec![0.0; layout.dim()], &[true; 17]), expected);
        }
    }

    /// Checkpoints written in format 1 (before the action layout and the head were recorded)
    /// still load and act as they did: `agent/tests/fixtures/format1/` holds a PPO set-network
    /// checkpoint and a DQN MLP checkpoint written by that format's code, with the greedy
    /// actions that code chose for three observations (see its README).
    #[test]
    fn format_1_checkpoints_still_load() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format1");
        let expected: serde_json::Value =
            serde_json::from_slice(&fs::read(fixtures.join("expected.json")).unwrap()).unwrap();
        let obs: Vec<f32> = serde_json::from_value(expected["obs"].clone()).unwrap();
        for (name, head) in [("set_ppo", Head::Logits), ("mlp_dqn", Head::Q)] {
            let mut loaded = LoadedPolicy::load(fixtures.join(name), Device::Cpu).unwrap();
            let meta = loaded.meta().clone();
            assert_eq!(meta.versions.format, 1);
            assert_eq!(meta.head, head, "{name}");
            assert_eq!(meta.action_layout, ActionLayout::placements_then_wait(2, 2));
            let mut actions = [0usize; 3];
            loaded.act_batch(&obs, &[true; 15], &mut actions);
            let logits: Vec<f32> =
                serde_json::from_value(expected[name]["logits"].clone()).unwrap();
            let greedy: Vec<usize> =
                serde_json::from_value(expected[name]["greedy_format1"].clone()).unwrap();
            if head == Head::Logits {
                // Same decision rule as format 1's reader (the rule it was selected under).
                assert_eq!(meta.greedy, GreedyRule::SlotMass);
                assert_eq!(actions.to_vec(), greedy, "{name}");
            } else {
                // The DQN fixture is decoded by the legal arg-max of its Q row now.
                let argmax: Vec<usize> = logits
                    .chunks(5)
                    .map(|row| crate::distributions::masked_argmax_row(row, &[true; 5]))
                    .collect();
                assert_eq!(actions.to_vec(), argmax, "{name}");
            }
        }
    }

    /// Sizes in the metadata that no hash covers are checked before a network is built from
    /// them (a 2^40-row layout used to reach libtorch's allocator), and weights holding NaN
    /// are a corrupt checkpoint, not a policy that "took an illegal action".
    #[test]
    fn hostile_metadata_and_non_finite_weights_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (policy, _, path) = saved_checkpoint(dir.path(), "final", 8);
        let mut meta: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        meta["obs_layout"]["server_rows"] = serde_json::json!(1u64 << 40);
        meta["obs_layout"]["server_features"] = serde_json::json!(1u64 << 40);
        let hostile = dir.path().join("hostile.json");
        fs::write(&hostile, serde_json::to_vec(&meta).unwrap()).unwrap();
        let err = read_meta(&hostile).unwrap_err().to_string();
        assert!(err.contains("beyond any scenario's"), "{err}");
        let big_net = NetworkConfig {
            hidden: vec![100_000_000],
            ..NetworkConfig::default()
        };
        let err = Policy::new(
            &big_net,
            ObsLayout::flat(3),
            &ActionLayout::plain(4),
            Head::Logits,
            Device::Cpu,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("network.hidden") && err.contains("16384"),
            "{err}"
        );
        let wide = NetworkConfig {
            hidden: vec![16_384, 16_384],
            ..NetworkConfig::default()
        };
        let err = Policy::new(
            &wide,
            ObsLayout::flat(3),
            &ActionLayout::plain(4),
            Head::Logits,
            Device::Cpu,
        )
        .err()
        .unwrap();
        assert!(
            matches!(err, crate::networks::NetworkError::TooManyWeights { .. }),
            "{err}"
        );
        // NaN weights, saved with a correct hash: loading says corrupt.
        tch::no_grad(|| {
            let (_, first) = &policy.named_parameters()[0];
            let _ = first.shallow_clone().fill_(f64::NAN);
        });
        let adam = Adam::new(policy.named_parameters(), 1e-5);
        save(
            dir.path(),
            SaveRequest {
                kind: "final",
                global_step: 9,
                iteration: 1,
                seed: 5,
                config_toml: "x = 1\n",
                network: &NetworkConfig::default(),
                policy: &policy,
                optimizer: &adam,
                normalizer: None,
                extras: vec![],
                sources: &[],
                obs_time_scale_s: None,
                trainer_state: serde_json::json!({}),
            },
        )
        .unwrap();
        let err = LoadedPolicy::load(dir.path().join("final.json"), Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("NaN or infinity") && err.contains("corrupt"),
            "{err}"
        );
    }
}
