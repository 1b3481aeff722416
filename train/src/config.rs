//! The training config: TOML file → `--set a.b=v` overrides → serde (unknown keys rejected) →
//! one validation step. The resolved config is written to the run directory and is enough to
//! reproduce the run.

use std::path::{Path, PathBuf};

use lepton_agent::device::DeviceChoice;
use lepton_agent::dqn::DqnConfig;
use lepton_agent::es::EsConfig;
use lepton_agent::imitation::ImitationConfig;
use lepton_agent::networks::NetworkConfig;
use lepton_agent::ppo::PpoConfig;
use lepton_agent::replay::ReplayConfig;
use serde::{Deserialize, Serialize};

/// A whole training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// `ppo` (default), `dqn` or `es`: which training loop runs, and which sections apply
    /// (`[ppo]` and `[imitation]`, `[dqn]` and `[replay]`, or `[es]`).
    #[serde(default)]
    pub algo: Algo,
    pub train: TrainSection,
    pub env: EnvConfig,
    #[serde(default)]
    pub ppo: PpoConfig,
    #[serde(default)]
    pub dqn: DqnConfig,
    #[serde(default)]
    pub replay: ReplayConfig,
    #[serde(default)]
    pub es: EsConfig,
    /// Imitation warm start before PPO (off unless the section is present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imitation: Option<ImitationConfig>,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    #[serde(default)]
    pub run: RunConfig,
}

/// The learning algorithm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algo {
    #[default]
    Ppo,
    Dqn,
    /// Evolution strategies on the policy's weights ([`lepton_agent::es`]).
    Es,
}

impl Algo {
    pub const ALL: [Self; 3] = [Self::Ppo, Self::Dqn, Self::Es];

    /// The config sections only this algorithm reads.
    pub fn sections(self) -> &'static [&'static str] {
        match self {
            Self::Ppo => &["ppo", "imitation"],
            Self::Dqn => &["dqn", "replay"],
            Self::Es => &["es"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Ppo => "ppo",
            Self::Dqn => "dqn",
            Self::Es => "es",
        }
    }
}

/// What defines the learning problem besides the algorithm (changing it changes the run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Seed of every random stream of the run (weights, actions, minibatches, env episodes).
    pub seed: u64,
    /// Env steps over all envs; the learning rate anneals to 0 at this step. The one key a
    /// resume may change (to extend or shorten a run; the schedules are re-derived).
    pub total_steps: u64,
    /// Start from this checkpoint's weights (a metadata `.json`, a `checkpoints/` directory or
    /// a run directory, as `lepton-eval --checkpoint` takes) instead of random ones: a fresh
    /// run warm-started, e.g. to fine-tune on another scenario or with another learning rate.
    /// An `[imitation]` section is then not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
    /// With `init_from`: also take the checkpoint's optimizer state (Adam's moments and step).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init_optimizer: bool,
}

/// Which environment to train on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// `cartpole` (Gymnasium's CartPole-v1) or `scenario` (a cluster scenario file).
    pub kind: EnvKind,
    /// Scenario file (TOML, relative to the config file), for `kind = "scenario"`.
    #[serde(default)]
    pub scenario: Option<PathBuf>,
    /// Extra time limit on top of the env's own (truncation, bootstrapped).
    #[serde(default)]
    pub max_episode_steps: Option<usize>,
    /// Rule selection: the policy's action `k` carries out what scheduler `rules[k]` decides
    /// (registry names, as lepton-eval takes them); empty = the scenario's own actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvKind {
    Cartpole,
    Scenario,
}

/// Periodic evaluation on held-out seeds (does not affect training).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Evaluate every this many env steps (0: never; the `best` checkpoint then is not written).
    pub every_steps: u64,
    /// Episodes per evaluation, one per held-out seed.
    pub num_episodes: usize,
    /// Episode `i` of every evaluation uses seed `seed + i` (keep it away from training seeds).
    pub seed: u64,
    /// What the `best` checkpoint maximises.
    pub select: Selection,
    /// Score the policy that samples its actions from its masked distribution (episode `i`'s
    /// stream seeded from its seed, as lepton-eval's `--sampled`) instead of the greedy one.
    /// Where the policy's mode differs from the policy (it waits whenever waiting is the most
    /// likely single action), the sampled policy is the one PPO trained.
    pub sampled: bool,
    /// The scenario the evaluation episodes come from (TOML, relative to the config file;
    /// default: `env.scenario`), e.g. the training scenario with longer windows or a higher
    /// load, where a policy's failures show. Its observations and actions must have the
    /// training scenario's shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<PathBuf>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            every_steps: 0,
            num_episodes: 10,
            seed: 1_000_000_007,
            select: Selection::default(),
            sampled: false,
            scenario: None,
        }
    }
}

/// What model selection (the `best` checkpoint) maximises on the evaluation seeds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// Minus the completion-aware mean slowdown on scheduling envs (the return elsewhere).
    #[default]
    Slowdown,
    /// The mean episode return: the scenario's own objective, e.g. minus the total bounded
    /// slowdown of an HPC scenario whose reward is `bounded_slowdown`.
    Return,
}

/// How the run is executed and observed; may change on `--resume` without changing results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// libtorch intra-op threads. 1 on a 2-core machine: the env threads get the other core
    /// and the small networks here gain nothing from a second torch thread.
    pub torch_threads: usize,
    /// Threads stepping the envs (1: on the training thread, no hand-off).
    pub env_threads: usize,
    /// Write a resumable checkpoint every this many env steps (0: only at the end).
    pub checkpoint_every_steps: u64,
    /// Periodic checkpoints to keep (the newest).
    pub keep_checkpoints: usize,
    /// Print a log line every this many iterations when no progress bar is shown.
    pub log_every_iterations: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            device: "auto".into(),
            torch_threads: 1,
            env_threads: 1,
            checkpoint_every_steps: 0,
            keep_checkpoints: 3,
            log_every_iterations: 10,
        }
    }
}

/// More threads than any machine this runs on has cores: each costs a stack and a share of the
/// CPU, so a typo such as 100000 would exhaust memory or stall instead of training.
pub const MAX_THREADS: usize = 1_024;

/// A config problem, with the file and the key it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("--set {arg}: {reason}")]
    Override { arg: String, reason: String },
    #[error("{source_name}: invalid config:\n  {}", .errors.join("\n  "))]
    Invalid {
        source_name: String,
        errors: Vec<String>,
    },
    /// The scenario file named by `env.scenario` does not load (the message names the file
    /// and the key).
    #[error(transparent)]
    Scenario(#[from] lepton_env::ScenarioError),
}

impl ConfigError {
    /// Names the `--set` argument behind each problem with a key it set (the file is then not
    /// where to look): "--set ppo.lr=-1: ppo.lr must be positive".
    pub fn blaming(self, overrides: &[String]) -> Self {
        let Self::Invalid {
            source_name,
            errors,
        } = self
        else {
            return self;
        };
        let errors = errors
            .into_iter()
            .map(
                |error| match overrides.iter().rev().find(|arg| names(&error, arg)) {
                    Some(arg) => format!("--set {arg}: {error}"),
                    None => error,
                },
            )
            .collect();
        Self::Invalid {
            source_name,
            errors,
        }
    }
}

/// Whether a validation message is about the key that the override `arg` (`a.b=value`) sets:
/// it names `a.b` as a word, or it is toml's "[a]: unknown field `b`".
fn names(error: &str, arg: &str) -> bool {
    let key = arg.split_once('=').map_or(arg, |(k, _)| k).trim();
    let as_word = error.match_indices(key).any(|(i, _)| {
        let before = error[..i].chars().next_back();
        let after = error[i + key.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        boundary(before) && boundary(after) && after != Some('.')
    });
    let unknown = key.rsplit_once('.').is_some_and(|(table, field)| {
        error.starts_with(&format!("[{table}]: unknown field `{field}`"))
    });
    as_word || unknown
}

/// The keys of a training config that hold paths.
pub const PATH_KEYS: [&str; 3] = ["env.scenario", "eval.scenario", "train.init_from"];

/// Reads `path` as a TOML table, with the paths it holds ([`PATH_KEYS`]) made absolute
/// relative to the file's directory: a config means the same from any working directory, and
/// the copy a run writes to its directory keeps working when the run directory moves.
pub fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        reason: format!("cannot read: {e}"),
    })?;
    let mut table = text.parse::<toml::Table>().map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    absolute_paths(&mut table, path.parent().unwrap_or(Path::new("")));
    Ok(table)
}

/// Makes every relative path of [`PATH_KEYS`] in `table` absolute, relative to `base` (the
/// config file's directory, or the working directory for `--set` overrides). Values that are
/// not strings are left for validation to refuse.
pub fn absolute_paths(table: &mut toml::Table, base: &Path) {
    for key in PATH_KEYS {
        let (section, name) = key.split_once('.').expect("a dotted key");
        let value = table
            .get_mut(section)
            .and_then(|v| v.as_table_mut())
            .and_then(|t| t.get_mut(name));
        if let Some(toml::Value::String(path)) = value {
            let joined = base.join(&*path);
            // `absolute` fails only for an empty path, which validation reports.
            if let Ok(absolute) = std::path::absolute(&joined) {
                *path = absolute.to_string_lossy().into_owned();
            }
        }
    }
}

/// Applies one `a.b.c=value` override. The value is parsed as TOML (`1e-4`, `true`, `[64, 64]`,
/// `"text"`); anything that does not parse is taken as a bare string (`device=cuda:0`).
pub fn apply_override(table: &mut toml::Table, arg: &str) -> Result<(), ConfigError> {
    let err = |reason: &str| ConfigError::Override {
        arg: arg.to_string(),
        reason: reason.to_string(),
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| err("expected KEY=VALUE, e.g. ppo.lr=1e-4"))?;
    let path: Vec<&str> = key.trim().split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(err("empty key segment"));
    }
    let value = match format!("v = {}", raw.trim()).parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").expect("parsed"),
        Err(_) => toml::Value::String(raw.trim().to_string()),
    };
    let (last, parents) = path.split_last().expect("non-empty");
    let mut cur = table;
    for p in parents {
        cur = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| err(&format!("'{p}' is not a table")))?;
    }
    cur.insert(last.to_string(), value);
    Ok(())
}

impl TrainConfig {
    /// Deserialises a table (unknown keys are errors) and validates it; `source_name` (the
    /// file) prefixes every message.
    pub fn from_table(table: toml::Table, source_name: &str) -> Result<Self, ConfigError> {
        let text = toml::to_string(&table).expect("a table serialises");
        let config: TrainConfig = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            source_name: source_name.to_string(),
            errors: vec![describe_toml_error(&e, &text)],
        })?;
        let mut errors = config.validate();
        for other in Algo::ALL.into_iter().filter(|&a| a != config.algo) {
            for section in other.sections().iter().filter(|s| table.contains_key(**s)) {
                errors.push(format!(
                    "[{section}] applies to algo = \"{}\", but this config has algo = \"{}\"",
                    other.name(),
                    config.algo.name()
                ));
            }
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                source_name: source_name.to_string(),
                errors,
            })
        }
    }

    /// Every problem, one message each, naming the key.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = match self.algo {
            Algo::Ppo => self.ppo.validate(),
            Algo::Dqn => self
                .dqn
                .validate()
                .into_iter()
                .chain(self.replay.validate())
                .collect(),
            Algo::Es => self.es.validate(),
        };
        if let (Algo::Ppo, Some(imitation)) = (self.algo, &self.imitation) {
            errors.extend(imitation.validate());
            if self.env.kind != EnvKind::Scenario {
                errors
                    .push("[imitation] needs env.kind = \"scenario\" (a heuristic teacher)".into());
            }
        }
        if !self.env.rules.is_empty() {
            if self.env.kind != EnvKind::Scenario {
                errors.push("env.rules needs env.kind = \"scenario\"".into());
            }
            if self.imitation.is_some() || self.dqn.prefill_teacher.is_some() {
                errors.push(
                    "env.rules: a heuristic teacher ([imitation], dqn.prefill_teacher) acts in the \
                     scenario's actions, not in rule choices; leave one of them out"
                        .into(),
                );
            }
        }
        if self.algo == Algo::Dqn
            && self.dqn.prefill_teacher.is_some()
            && self.env.kind != EnvKind::Scenario
        {
            errors.push("dqn.prefill_teacher needs env.kind = \"scenario\" (a heuristic)".into());
        }
        if self.algo == Algo::Ppo
            && !self.ppo.whole_episodes()
            && self.train.total_steps < self.ppo.batch_size() as u64
        {
            errors.push(format!(
                "train.total_steps ({}) is less than one rollout (ppo.num_envs × ppo.num_steps = {})",
                self.train.total_steps,
                self.ppo.batch_size()
            ));
        }
        if self.algo == Algo::Dqn && self.dqn.batch_size > self.replay.capacity {
            errors.push(format!(
                "dqn.batch_size ({}) is larger than replay.capacity ({})",
                self.dqn.batch_size, self.replay.capacity
            ));
        }
        if self.env.kind == EnvKind::Scenario && self.env.scenario.is_none() {
            errors.push("env.scenario is required when env.kind = \"scenario\"".into());
        }
        for (key, path) in [
            ("env.scenario", &self.env.scenario),
            ("eval.scenario", &self.eval.scenario),
        ] {
            match (self.env.kind, path) {
                (EnvKind::Cartpole, Some(_)) => {
                    errors.push(format!("{key} only applies to env.kind = \"scenario\""))
                }
                (EnvKind::Scenario, Some(path)) if !path.is_file() => errors.push(format!(
                    "{key}: {} does not exist (a path in a config file is relative to that file)",
                    path.display()
                )),
                _ => {}
            }
        }
        if self.algo == Algo::Es && self.train.init_optimizer {
            errors.push(
                "train.init_optimizer does not apply to algo = \"es\": ES's Adam steps its own \
                 gradient estimate, not the checkpoint's loss"
                    .into(),
            );
        }
        if self.train.init_optimizer && self.train.init_from.is_none() {
            errors.push("train.init_optimizer needs train.init_from (the checkpoint)".into());
        }
        if self.env.max_episode_steps == Some(0) {
            errors.push("env.max_episode_steps must be positive when set".into());
        }
        if self.eval.every_steps > 0 && self.eval.num_episodes == 0 {
            errors.push("eval.num_episodes must be positive when eval.every_steps > 0".into());
        }
        if let Err(e) = self.run.device.parse::<DeviceChoice>() {
            errors.push(format!("run.device: {e}"));
        }
        errors.extend(self.network.validate());
        for (key, threads) in [
            ("run.torch_threads", self.run.torch_threads),
            ("run.env_threads", self.run.env_threads),
        ] {
            if !(1..=MAX_THREADS).contains(&threads) {
                errors.push(format!("{key} must be in 1..={MAX_THREADS}, got {threads}"));
            }
        }
        if self.run.keep_checkpoints == 0 {
            errors.push("run.keep_checkpoints must be at least 1 (resume needs one)".into());
        }
        if self.run.log_every_iterations == 0 {
            errors.push("run.log_every_iterations must be at least 1".into());
        }
        errors
    }

    /// The resolved config as TOML, without the sections of the other algorithm.
    pub fn to_toml(&self) -> String {
        let mut table = toml::Table::try_from(self).expect("config serialises");
        for other in Algo::ALL.into_iter().filter(|&a| a != self.algo) {
            for section in other.sections() {
                table.remove(*section);
            }
        }
        toml::to_string(&table).expect("config serialises")
    }

    pub fn num_iterations(&self) -> usize {
        (self.train.total_steps / self.ppo.batch_size() as u64) as usize
    }
}

/// toml's message names the key ("unknown field `lrr`, expected one of ..."); its span points
/// into the re-serialised text, so the message is prefixed with the table the span is in.
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim().to_string();
    let Some(span) = e.span() else { return message };
    let start = span.start.min(text.len());
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let table = text[..line_end].lines().rev().find_map(|l| {
        l.trim()
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
            .map(str::to_string)
    });
    match table {
        Some(table) => format!("[{table}]: {message}"),
        None => message,
    }
}

/// The keys whose values differ between two resolved configs, except the `[run]` and `[eval]`
/// sections (which change how a run is executed and observed, not what it computes).
pub fn incompatible_keys(saved: &TrainConfig, new: &TrainConfig) -> Vec<String> {
    let to_value = |c: &TrainConfig| toml::Value::try_from(c).expect("config serialises");
    let (a, b) = (to_value(saved), to_value(new));
    let mut out = Vec::new();
    diff("", &a, &b, &mut out);
    // Also free to change: `train.total_steps` (a resume re-derives the schedules, see
    // `Checkpoints::resume`), where the files are (their content is checked by hash), and
    // the warm start (a resume starts from its own checkpoint).
    let free = [
        "train.total_steps",
        "train.init_from",
        "train.init_optimizer",
    ];
    out.retain(|k| {
        let key = k.split(' ').next().unwrap_or(k);
        !(k.starts_with("run.")
            || k.starts_with("eval.")
            || free.contains(&key)
            || PATH_KEYS.contains(&key))
    });
    out
}

fn diff(prefix: &str, a: &toml::Value, b: &toml::Value, out: &mut Vec<String>) {
    match (a, b) {
        (toml::Value::Table(ta), toml::Value::Table(tb)) => {
            let mut keys: Vec<&String> = ta.keys().chain(tb.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match (ta.get(k), tb.get(k)) {
                    (Some(x), Some(y)) => diff(&path, x, y, out),
                    _ => out.push(path),
                }
            }
        }
        _ if a != b => out.push(format!("{prefix} ({a} → {b})")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARTPOLE: &str = r#"
[train]
seed = 1
total_steps = 1024
[env]
kind = "cartpole"
"#;

    fn parse(text: &str) -> Result<TrainConfig, ConfigError> {
        TrainConfig::from_table(text.parse().unwrap(), "test.toml")
    }

    #[test]
    fn defaults_are_cleanrl() {
        let c = parse(CARTPOLE).unwrap();
        assert_eq!(c.ppo, PpoConfig::default());
        assert_eq!(c.ppo.batch_size(), 512);
        assert_eq!(c.num_iterations(), 2);
    }

    #[test]
    fn overrides_parse_values_and_create_tables() {
        let mut t: toml::Table = CARTPOLE.parse().unwrap();
        apply_override(&mut t, "ppo.lr=1e-4").unwrap();
        apply_override(&mut t, "network.hidden=[32, 32]").unwrap();
        apply_override(&mut t, "run.device=cuda:0").unwrap();
        apply_override(&mut t, "network.activation=relu").unwrap();
        let c = TrainConfig::from_table(t, "x").unwrap();
        assert_eq!(c.ppo.lr, 1e-4);
        assert_eq!(c.network.hidden, vec![32, 32]);
        assert_eq!(c.run.device, "cuda:0");
        assert!(apply_override(&mut toml::Table::new(), "nonsense").is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = parse(&format!("{CARTPOLE}\n[ppo]\nlrr = 1.0\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test.toml") && err.contains("[ppo]") && err.contains("lrr"),
            "{err}"
        );
        let err = parse(&format!(
            "{CARTPOLE}\n[ppo]\nlr = -1.0\nnum_minibatches = 0\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ppo.lr") && err.contains("ppo.num_minibatches"),
            "{err}"
        );
        let err = parse(&CARTPOLE.replace("cartpole", "scenario"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("env.scenario"), "{err}");
        let err = parse(&format!("{CARTPOLE}\n[eval]\nscenario = \"/x.toml\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("eval.scenario only applies to env.kind = \"scenario\""),
            "{err}"
        );
        let scenario = CARTPOLE.replace(
            "kind = \"cartpole\"",
            "kind = \"scenario\"\nscenario = \"/no/such.toml\"",
        );
        let err = parse(&format!(
            "{scenario}\n[eval]\nscenario = \"/no/other.toml\"\n"
        ))
        .unwrap_err()
        .to_string();
        for key in [
            "env.scenario: /no/such.toml",
            "eval.scenario: /no/other.toml",
        ] {
            assert!(err.contains(&format!("{key} does not exist")), "{err}");
        }
        let select = parse(&format!("{CARTPOLE}\n[eval]\nselect = \"return\"\n")).unwrap();
        assert_eq!(select.eval.select, Selection::Return);
        let err = parse(&format!("{CARTPOLE}\n[eval]\nselect = \"slowness\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("slowness"), "{err}");
    }

    #[test]
    fn same_workload_groups_are_validated() {
        // 16 × 128 steps would exceed total_steps = 1024; whole episodes have no fixed size.
        let c = parse(&format!(
            "{CARTPOLE}\n[ppo]\nnum_envs = 16\ngroup_size = 4\nbaseline = \"group+critic\"\n"
        ))
        .unwrap();
        assert!(c.ppo.whole_episodes());
        assert_eq!(
            c.ppo.baseline,
            lepton_agent::episodes::Baseline::GroupCritic
        );
        let err = parse(&format!(
            "{CARTPOLE}\n[ppo]\nnum_envs = 6\ngroup_size = 4\nnormalize_returns = true\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ppo.group_size (4) must be at least 1 and divide ppo.num_envs (6)")
                && err.contains("ppo.normalize_returns cannot be combined"),
            "{err}"
        );
        let err = parse(&format!("{CARTPOLE}\n[ppo]\nbaseline = \"group\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs ppo.group_size >= 2"), "{err}");
        let err = parse(&format!("{CARTPOLE}\n[ppo]\nbaseline = \"groups\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("groups") && err.contains("group+critic"),
            "{err}"
        );
    }

    #[test]
    fn resume_compatibility_ignores_run_and_eval() {
        let a = parse(CARTPOLE).unwrap();
        let mut b = a.clone();
        b.run.device = "cpu".into();
        b.eval.every_steps = 99;
        b.train.total_steps *= 3;
        b.train.init_from = Some("runs/x".into());
        assert!(incompatible_keys(&a, &b).is_empty());
        b.ppo.lr = 1.0;
        b.train.seed = 2;
        let keys = incompatible_keys(&a, &b);
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(
            keys[0].starts_with("ppo.lr") && keys[1].starts_with("train.seed"),
            "{keys:?}"
        );
    }

    #[test]
    fn errors_name_the_set_argument_behind_them() {
        let mut table: toml::Table = CARTPOLE.parse().unwrap();
        let overrides = ["ppo.lr=-1".to_string(), "ppo.lrr=1".to_string()];
        for arg in &overrides {
            apply_override(&mut table, arg).unwrap();
        }
        let err = TrainConfig::from_table(table, "c.toml")
            .unwrap_err()
            .blaming(&overrides)
            .to_string();
        assert!(
            err.starts_with(
                "c.toml: invalid config:\n  --set ppo.lrr=1: [ppo]: unknown field `lrr`"
            ),
            "{err}"
        );
        let mut table: toml::Table = CARTPOLE.parse().unwrap();
        apply_override(&mut table, &overrides[0]).unwrap();
        let err = TrainConfig::from_table(table, "c.toml")
            .unwrap_err()
            .blaming(&overrides)
            .to_string();
        assert!(err.contains("\n  --set ppo.lr=-1: ppo.lr "), "{err}");
        // A key that is a prefix of another is not blamed for it.
        assert!(!names("ppo.lr_end must be ...", "ppo.lr=1"));
        assert!(!names("ppo.lr.x", "ppo.lr=1"));
        assert!(names("ppo.lr must be positive", "ppo.lr=1"));
    }

    /// Paths in a file are relative to the file; `--set` paths (made absolute after the
    /// overrides) to the working directory; absolute paths stay as they are.
    #[test]
    fn paths_are_relative_to_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("configs");
        std::fs::create_dir(&sub).unwrap();
        let file = sub.join("run.toml");
        std::fs::write(
            &file,
            "[train]\nseed = 1\ntotal_steps = 8\ninit_from = \"/abs/best.json\"\n\
             [env]\nkind = \"scenario\"\nscenario = \"scenarios/a.toml\"\n",
        )
        .unwrap();
        let mut table = read_table(&file).unwrap();
        let get = |t: &toml::Table, s: &str, k: &str| t[s][k].as_str().unwrap().to_string();
        assert_eq!(
            get(&table, "env", "scenario"),
            sub.join("scenarios/a.toml").to_str().unwrap()
        );
        assert_eq!(get(&table, "train", "init_from"), "/abs/best.json");
        apply_override(&mut table, "train.init_from=\"runs/r\"").unwrap();
        absolute_paths(&mut table, Path::new("/work/here"));
        assert_eq!(get(&table, "train", "init_from"), "/work/here/runs/r");
        assert_eq!(
            get(&table, "env", "scenario"),
            sub.join("scenarios/a.toml").to_str().unwrap()
        );
    }

    #[test]
    fn imitation_is_off_by_default_and_validated() {
        assert_eq!(parse(CARTPOLE).unwrap().imitation, None);
        let scenario = CARTPOLE.replace(
            "kind = \"cartpole\"",
            "kind = \"scenario\"\nscenario = \"../configs/scenarios/deeprm.toml\"",
        );
        let c = parse(&format!("{scenario}\n[imitation]\nteacher = \"tetris\"\n")).unwrap();
        assert_eq!(c.imitation.as_ref().unwrap().teacher, "tetris");
        let again = TrainConfig::from_table(c.to_toml().parse().unwrap(), "resolved").unwrap();
        assert_eq!(c, again);
        let err = parse(&format!(
            "{scenario}\n[imitation]\nteacher = \"shortest\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("test.toml")
                && err.contains("imitation.teacher: unknown scheduler `shortest`"),
            "{err}"
        );
        let err = parse(&format!("{CARTPOLE}\n[imitation]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[imitation] needs env.kind"), "{err}");
        let err = parse(&format!("algo = \"dqn\"\n{CARTPOLE}\n[imitation]\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[imitation] applies to algo = \"ppo\""),
            "{err}"
        );
    }

    #[test]
    fn resolved_config_round_trips() {
        let c = parse(CARTPOLE).unwrap();
        let again = TrainConfig::from_table(c.to_toml().parse().unwrap(), "resolved").unwrap();
        assert_eq!(c, again);
    }
}
