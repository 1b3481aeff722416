//! The checkpoint format, and [`LoadedPolicy`] for evaluation.
//!
//! A checkpoint is three files in one directory:
//! * `<stem>.safetensors` — the policy weights only, named as in the network
//!   (`actor.0.weight`, ...), loadable from Python (`safetensors.torch.load_file`);
//! * `<stem>.optim.safetensors` — Adam's moments (`m.<param>`, `v.<param>`);
//! * a metadata JSON ([`CheckpointMeta`]): the resolved config, obs layout and action count,
//!   network config, step, seed, versions, optimizer step, the observation normaliser, the
//!   trainer's own state (RNG and env counters) and the SHA-256 of both tensor files.
//!
//! `<stem>` is `<kind>_<step>` (`step_0000012800`, `best_0000012800`, ...). Periodic
//! checkpoints keep their metadata beside them (`step_0000012800.json`); `best.json` and
//! `final.json` point at the stem they describe. Every file is written to a temporary name,
//! synced and renamed, tensor files first and the JSON last, so the JSON that exists always
//! names complete files: an interrupted write leaves the previous checkpoint intact. Loading
//! checks the hashes and the shapes, and every failure is a [`CheckpointError`] that says
//! which file and why.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use lepton_env::ObsLayout;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

use crate::networks::{NetworkConfig, Policy, with_torch_rng};
use crate::normalize::ObsNormalizer;
use crate::ppo::Adam;

/// Bumped whenever the metadata or file layout changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

/// Serializable mirror of [`ObsLayout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutMeta {
    pub global: usize,
    pub server_rows: usize,
    pub server_features: usize,
    pub slot_rows: usize,
    pub slot_features: usize,
}

impl From<ObsLayout> for LayoutMeta {
    fn from(l: ObsLayout) -> Self {
        Self {
            global: l.global,
            server_rows: l.server_rows,
            server_features: l.server_features,
            slot_rows: l.slot_rows,
            slot_features: l.slot_features,
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

/// The metadata JSON of a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointMeta {
    pub versions: Versions,
    /// `step`, `best`, `final`, `interrupted`.
    pub kind: String,
    /// Env steps taken (all envs together).
    pub global_step: u64,
    /// PPO iterations completed.
    pub iteration: u64,
    pub seed: u64,
    /// The resolved training config, as TOML.
    pub config_toml: String,
    pub obs_layout: LayoutMeta,
    pub obs_dim: usize,
    pub num_actions: usize,
    pub network: NetworkConfig,
    pub weights_file: String,
    pub weights_sha256: String,
    pub optimizer_file: String,
    pub optimizer_sha256: String,
    pub optimizer_step: i64,
    pub normalizer: Option<ObsNormalizer>,
    /// Whatever the trainer needs to continue exactly (RNG states, env counters, ...).
    pub trainer_state: serde_json::Value,
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
        "checkpoint {path}: written by format version {found}, this build reads version {expected}"
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
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn sha256_file(path: &Path) -> Result<String, CheckpointError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
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
    pub trainer_state: serde_json::Value,
}

/// Writes a checkpoint into `dir` and returns the path of its metadata file. For `best` and
/// `final`, tensor files of the previous checkpoint of the same kind are removed afterwards.
pub fn save(dir: &Path, req: SaveRequest<'_>) -> Result<PathBuf, CheckpointError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let stem = stem(req.kind, req.global_step);
    let weights_file = format!("{stem}.safetensors");
    let optimizer_file = format!("{stem}.optim.safetensors");
    write_tensors_atomic(&dir.join(&weights_file), &req.policy.named_parameters())?;
    write_tensors_atomic(&dir.join(&optimizer_file), &req.optimizer.named_state())?;
    let layout = req.policy.obs_layout();
    let meta = CheckpointMeta {
        versions: Versions::current(),
        kind: req.kind.to_string(),
        global_step: req.global_step,
        iteration: req.iteration,
        seed: req.seed,
        config_toml: req.config_toml.to_string(),
        obs_layout: layout.into(),
        obs_dim: layout.dim(),
        num_actions: req.policy.num_actions(),
        network: req.network.clone(),
        weights_sha256: sha256_file(&dir.join(&weights_file))?,
        optimizer_sha256: sha256_file(&dir.join(&optimizer_file))?,
        weights_file,
        optimizer_file,
        optimizer_step: req.optimizer.step,
        normalizer: req.normalizer.cloned(),
        trainer_state: req.trainer_state,
    };
    let path = meta_path(dir, req.kind, req.global_step);
    let json = serde_json::to_vec_pretty(&meta).expect("metadata serialises");
    write_atomic(&path, &json)?;
    if req.kind != "step" {
        remove_stale_tensor_files(dir, req.kind, &stem)?;
    }
    Ok(path)
}

/// Deletes `<kind>_*.safetensors` files other than those of `keep_stem`.
fn remove_stale_tensor_files(
    dir: &Path,
    kind: &str,
    keep_stem: &str,
) -> Result<(), CheckpointError> {
    let prefix = format!("{kind}_");
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with(&prefix)
            && name.ends_with(".safetensors")
            && !name.starts_with(&format!("{keep_stem}."))
        {
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

/// Which periodic checkpoints to delete so that the newest `keep` remain (pure).
pub fn periodic_to_delete(mut steps: Vec<u64>, keep: usize) -> Vec<u64> {
    steps.sort_unstable();
    let n = steps.len().saturating_sub(keep);
    steps.truncate(n);
    steps
}

/// Deletes old periodic checkpoints (metadata first, then tensors), keeping the newest `keep`.
pub fn prune_periodic(dir: &Path, keep: usize) -> Result<(), CheckpointError> {
    for step in periodic_to_delete(list_periodic(dir)?, keep) {
        let stem = stem("step", step);
        for file in [
            format!("{stem}.json"),
            format!("{stem}.safetensors"),
            format!("{stem}.optim.safetensors"),
        ] {
            let path = dir.join(file);
            if path.exists() {
                fs::remove_file(&path).map_err(io_err(&path))?;
            }
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

/// Reads and checks a metadata file: format version and the hashes of both tensor files.
pub fn read_meta(path: &Path) -> Result<CheckpointMeta, CheckpointError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| CheckpointError::BadMeta {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let found = value
        .pointer("/versions/format")
        .and_then(|v| v.as_u64())
        .unwrap_or(0) as u32;
    if found != FORMAT_VERSION {
        return Err(CheckpointError::Version {
            path: path.to_path_buf(),
            found,
            expected: FORMAT_VERSION,
        });
    }
    let meta: CheckpointMeta =
        serde_json::from_value(value).map_err(|e| CheckpointError::BadMeta {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    for (file, hash) in [
        (&meta.weights_file, &meta.weights_sha256),
        (&meta.optimizer_file, &meta.optimizer_sha256),
    ] {
        if &sha256_file(&dir.join(file))? != hash {
            return Err(CheckpointError::HashMismatch {
                path: path.to_path_buf(),
                file: file.clone(),
            });
        }
    }
    Ok(meta)
}

fn read_tensors(path: &Path) -> Result<Vec<(String, Tensor)>, CheckpointError> {
    Tensor::read_safetensors(path).map_err(|e| CheckpointError::Tensors {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Copies the checkpoint's weights into `policy`, checking that every name and shape matches.
pub fn load_weights(
    meta_path: &Path,
    meta: &CheckpointMeta,
    policy: &Policy,
) -> Result<(), CheckpointError> {
    let dir = meta_path.parent().unwrap_or(Path::new("."));
    let saved = read_tensors(&dir.join(&meta.weights_file))?;
    let mismatch = |reason: String| CheckpointError::Mismatch {
        path: meta_path.to_path_buf(),
        reason,
    };
    let params = policy.named_parameters();
    if saved.len() != params.len() {
        return Err(mismatch(format!(
            "it holds {} weight tensors, the network has {}",
            saved.len(),
            params.len()
        )));
    }
    for (name, param) in &params {
        let src = saved
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| mismatch(format!("weight '{name}' is missing")))?;
        if src.size() != param.size() {
            return Err(mismatch(format!(
                "weight '{name}' has shape {:?}, the network expects {:?}",
                src.size(),
                param.size()
            )));
        }
        tch::no_grad(|| param.shallow_clone().copy_(src));
    }
    Ok(())
}

/// Restores the optimizer state of a checkpoint into `optimizer`.
pub fn load_optimizer(
    meta_path: &Path,
    meta: &CheckpointMeta,
    optimizer: &mut Adam,
) -> Result<(), CheckpointError> {
    let dir = meta_path.parent().unwrap_or(Path::new("."));
    let tensors = read_tensors(&dir.join(&meta.optimizer_file))?;
    optimizer
        .load_state(meta.optimizer_step, &tensors)
        .map_err(|reason| CheckpointError::Mismatch {
            path: meta_path.to_path_buf(),
            reason,
        })
}

/// Resolves what a user passed as a checkpoint: a metadata `.json` file (its extension may be
/// left out: `runs/demo/checkpoints/best`), or a directory (a run
/// directory or its `checkpoints/`), where `best.json`, then `final.json`, then the newest
/// periodic checkpoint is taken.
pub fn resolve(path: &Path) -> Result<PathBuf, CheckpointError> {
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

/// A trained policy loaded for evaluation: greedy and deterministic ([`Policy::greedy`]: the
/// most likely legal decision; for placement action spaces, the most likely slot-or-wait
/// decision, then the most likely server for the slot).
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
        let policy = with_torch_rng(None, || {
            Policy::new(
                &meta.network,
                meta.obs_layout.into(),
                meta.num_actions,
                device,
            )
        })
        .map_err(|e| CheckpointError::Mismatch {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        load_weights(&path, &meta, &policy)?;
        let normalizer = meta.normalizer.clone();
        Ok(Self {
            policy,
            normalizer,
            meta,
            obs_scratch: Vec::new(),
        })
    }

    /// Loads the same weights for an env with a different number of servers or slots (set
    /// network only: its weights do not depend on those counts).
    pub fn load_for_layout(
        path: impl AsRef<Path>,
        device: Device,
        layout: ObsLayout,
        num_actions: usize,
    ) -> Result<Self, CheckpointError> {
        let path = resolve(path.as_ref())?;
        let meta = read_meta(&path)?;
        if meta.normalizer.is_some() && ObsLayout::from(meta.obs_layout) != layout {
            return Err(CheckpointError::Mismatch {
                path,
                reason: "the policy normalises observations element-wise, so it only runs on its training layout".into(),
            });
        }
        let policy = with_torch_rng(None, || {
            Policy::new(&meta.network, layout, num_actions, device)
        })
        .map_err(|e| CheckpointError::Mismatch {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        load_weights(&path, &meta, &policy)?;
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

    /// Greedy legal actions for a row-major batch of observations and masks.
    pub fn act_batch(&mut self, obs: &[f32], mask: &[bool], out: &mut [usize]) {
        let (dim, n) = (self.obs_dim(), self.num_actions());
        let rows = out.len();
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
        let actions = tch::no_grad(|| {
            let obs = Tensor::from_slice(&self.obs_scratch)
                .view([rows as i64, dim as i64])
                .to_device(device);
            let mask = Tensor::from_slice(mask)
                .view([rows as i64, n as i64])
                .to_device(device);
            self.policy
                .greedy(&obs, &mask)
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

    fn saved_checkpoint(dir: &Path, kind: &str, step: u64) -> (Policy, Adam, PathBuf) {
        tch::manual_seed(7);
        let config = NetworkConfig::default();
        let policy = Policy::new(&config, ObsLayout::flat(3), 4, Device::Cpu).unwrap();
        let mut adam = Adam::new(&policy, 1e-5);
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
            meta.num_actions,
            Device::Cpu,
        )
        .unwrap();
        let mut fresh_adam = Adam::new(&fresh, 1e-5);
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
            4,
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
        prune_periodic(dir.path(), 1).unwrap();
        assert!(!dir.path().join("step_0000000001.json").exists());
        assert!(!dir.path().join("step_0000000002.safetensors").exists());
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
        };
        let policy = Policy::new(&config, layout(4), 2 * 4 + 1, Device::Cpu).unwrap();
        let adam = Adam::new(&policy, 1e-5);
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
                trainer_state: serde_json::Value::Null,
            },
        )
        .unwrap();
        let mut big =
            LoadedPolicy::load_for_layout(dir.path(), Device::Cpu, layout(8), 2 * 8 + 1).unwrap();
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
}
