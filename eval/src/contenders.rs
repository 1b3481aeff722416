//! Contenders: the heuristics and checkpoints a suite compares. This is the one place that
//! knows how a learned policy is loaded and run; everything downstream sees a
//! [`Scheduler`].

use anyhow::{Context, Result, bail};
use lepton_agent::checkpoint::{self, LoadedPolicy};
use lepton_agent::distributions::episode_sampler;
use lepton_env::scenario::ScenarioEnv;
use lepton_env::schedulers::{self, Decision, RuleChooser, RuleSelectionEnv, Scheduler};
use lepton_env::{ActionLayout, Env, Scenario};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// One loaded checkpoint, as report.json records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// The path as given on the command line (or as a glob expanded it).
    pub path: String,
    /// The metadata file it resolved to.
    pub metadata_file: String,
    /// SHA-256 of the metadata file (which records the weights' own hash).
    pub metadata_sha256: String,
    pub weights_sha256: String,
    pub global_step: u64,
    pub obs_dim: usize,
    pub num_actions: usize,
    /// What the policy's action indices mean (`None` for format-1 checkpoints, which did not
    /// record it: their sizes are all that can be checked).
    #[serde(skip)]
    pub action_layout: Option<ActionLayout>,
}

/// What a contender is, as report.json records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContenderKind {
    Heuristic,
    Checkpoint(CheckpointInfo),
    /// Checkpoints of one training procedure run with different seeds, scored as one
    /// contender: every member plays every episode (`--checkpoint NAME=a,b,c`).
    CheckpointGroup {
        members: Vec<CheckpointInfo>,
    },
}

/// One contender of an evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contender {
    pub name: String,
    #[serde(flatten)]
    pub kind: ContenderKind,
    /// A learned policy that samples its actions (`--sampled`) instead of taking the greedy
    /// one, from a stream seeded by each episode's seed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sampled: bool,
    /// The metadata file of each member (empty for a heuristic).
    #[serde(skip)]
    resolved: Vec<PathBuf>,
}

/// What one `--checkpoint` flag asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckpointSpec {
    /// `--checkpoint PATH`: one checkpoint, named `ckpt:<file stem>`.
    Single(PathBuf),
    /// `--checkpoint NAME=a,b,c` (items may be globs): one contender named NAME.
    Group { name: String, paths: Vec<PathBuf> },
}

impl CheckpointSpec {
    /// Parses one `--checkpoint` value. `NAME=LIST` is a group when NAME is a plain name (no
    /// `/`) and the whole value is not an existing path; LIST is comma-separated, and an item
    /// with `*`, `?` or `[` is a glob expanded in sorted order (it must match something).
    pub fn parse(value: &str) -> Result<Self> {
        let Some((name, list)) = value.split_once('=') else {
            return Ok(Self::Single(PathBuf::from(value)));
        };
        if name.is_empty() || name.contains('/') || Path::new(value).exists() {
            return Ok(Self::Single(PathBuf::from(value)));
        }
        if schedulers::NAMES.contains(&name) || name.starts_with("ckpt:") {
            bail!(
                "--checkpoint {value}: the group name `{name}` is taken (heuristic names and `ckpt:` are reserved)"
            );
        }
        let mut paths = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if item.contains(['*', '?', '[']) {
                let matches = glob(item)?;
                if matches.is_empty() {
                    bail!("--checkpoint {value}: `{item}` matches no file");
                }
                paths.extend(matches);
            } else {
                paths.push(PathBuf::from(item));
            }
        }
        if paths.is_empty() {
            bail!("--checkpoint {value}: no checkpoint after `{name}=`");
        }
        Ok(Self::Group {
            name: name.to_string(),
            paths,
        })
    }
}

/// Whether `name` matches the shell pattern `pattern` (`*`, `?`, `[abc]`, `[a-z]`, `[!a]`).
fn wildcard_match(pattern: &[char], name: &[char]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => (0..=name.len()).any(|k| wildcard_match(rest, &name[k..])),
        Some(('?', rest)) => !name.is_empty() && wildcard_match(rest, &name[1..]),
        Some(('[', rest)) => {
            let Some(close) = rest.iter().skip(1).position(|c| *c == ']').map(|i| i + 1) else {
                return name.first() == Some(&'[') && wildcard_match(rest, &name[1..]);
            };
            let Some(first) = name.first() else {
                return false;
            };
            let (negate, set) = match rest[..close].split_first() {
                Some(('!', set)) => (true, set),
                _ => (false, &rest[..close]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == '-' {
                    hit |= (set[i]..=set[i + 2]).contains(first);
                    i += 3;
                } else {
                    hit |= set[i] == *first;
                    i += 1;
                }
            }
            hit != negate && wildcard_match(&rest[close + 1..], &name[1..])
        }
        Some((c, rest)) => name.first() == Some(c) && wildcard_match(rest, &name[1..]),
    }
}

/// Paths matching `pattern`, sorted; wildcards may sit in any component, and hidden entries
/// match only a pattern that starts with `.`.
pub fn glob(pattern: &str) -> Result<Vec<PathBuf>> {
    let absolute = pattern.starts_with('/');
    let mut found = vec![if absolute {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    }];
    for part in pattern.split('/').filter(|p| !p.is_empty()) {
        let mut next = Vec::new();
        for base in &found {
            if !part.contains(['*', '?', '[']) {
                next.push(base.join(part));
                continue;
            }
            let dir = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base.as_path()
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let pattern_chars: Vec<char> = part.chars().collect();
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') || part.starts_with('.'))
                .filter(|n| wildcard_match(&pattern_chars, &n.chars().collect::<Vec<_>>()))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| base.join(n)));
        }
        found = next;
    }
    let mut paths: Vec<PathBuf> = found.into_iter().filter(|p| p.exists()).collect();
    paths.sort();
    Ok(paths)
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
            sampled: false,
            resolved: Vec::new(),
        })
    }

    /// A checkpoint, loaded once here to validate it (missing files, bad hashes, corrupt
    /// tensors all fail now, before any episode runs). `name` is how reports call it.
    pub fn checkpoint(path: &Path, name: String) -> Result<Self> {
        let (info, resolved) = load_checkpoint(path)?;
        Ok(Self {
            name,
            kind: ContenderKind::Checkpoint(info),
            sampled: false,
            resolved: vec![resolved],
        })
    }

    /// A group of checkpoints (one per training seed) scored as one contender `name`.
    pub fn checkpoint_group(paths: &[PathBuf], name: String) -> Result<Self> {
        let mut members = Vec::new();
        let mut resolved = Vec::new();
        for path in paths {
            let (info, file) =
                load_checkpoint(path).with_context(|| format!("checkpoint group `{name}`"))?;
            members.push(info);
            resolved.push(file);
        }
        Ok(Self {
            name,
            kind: ContenderKind::CheckpointGroup { members },
            sampled: false,
            resolved,
        })
    }

    /// The same learned policy sampling its actions, named `<name>@sampled`; an error for a
    /// Q-network (DQN) checkpoint, whose outputs are not a distribution.
    pub fn sampled_twin(&self) -> Result<Self> {
        for path in &self.resolved {
            let meta = checkpoint::read_meta(path).map_err(|e| anyhow::anyhow!("{e}"))?;
            if meta.head != lepton_agent::networks::Head::Logits {
                bail!(
                    "--sampled: checkpoint {} is a Q-network (DQN), which has no distribution to sample",
                    path.display()
                );
            }
        }
        Ok(Self {
            name: format!("{}@sampled", self.name),
            sampled: true,
            ..self.clone()
        })
    }

    /// Training runs behind this contender: one, except for a checkpoint group.
    pub fn num_members(&self) -> usize {
        self.resolved.len().max(1)
    }

    pub fn is_learned(&self) -> bool {
        !matches!(self.kind, ContenderKind::Heuristic)
    }

    /// Refuses a checkpoint whose observation or action sizes do not fit `scenario`.
    pub fn check_fits(&self, scenario_name: &str, scenario: &Scenario) -> Result<()> {
        let members = match &self.kind {
            ContenderKind::Heuristic => return Ok(()),
            ContenderKind::Checkpoint(info) => std::slice::from_ref(info),
            ContenderKind::CheckpointGroup { members } => members.as_slice(),
        };
        let plain = scenario.build();
        for CheckpointInfo {
            obs_dim,
            num_actions,
            path,
            action_layout,
            ..
        } in members
        {
            // A rule-selection policy sees the scenario through its rules.
            let rules = action_layout
                .as_ref()
                .map_or(&[][..], |l| l.rules.as_slice());
            let wrapped = (!rules.is_empty())
                .then(|| RuleSelectionEnv::new(plain.clone(), rules))
                .transpose()
                .map_err(|e| {
                    anyhow::anyhow!(
                        "checkpoint {path} does not fit scenario `{scenario_name}`: its rules: {e}"
                    )
                })?;
            let env: &dyn Env = match &wrapped {
                Some(wrapped) => wrapped,
                None => &plain,
            };
            let (env_obs, env_actions) = (env.observation_space().dim(), env.action_space().n);
            let env_layout = env.action_layout();
            if (*obs_dim, *num_actions) != (env_obs, env_actions) {
                bail!(
                    "checkpoint {path} does not fit scenario `{scenario_name}`: the policy takes {obs_dim} observations \
                     and {num_actions} actions, the scenario has {env_obs} observations and {env_actions} actions"
                );
            }
            if let Some(layout) = action_layout
                && *layout != env_layout
            {
                bail!(
                    "checkpoint {path} does not fit scenario `{scenario_name}`: the policy's actions are \
                     {layout:?}, the scenario's are {env_layout:?}"
                );
            }
        }
        Ok(())
    }

    /// A fresh scheduler for one episode of training run `member` (0 for a heuristic).
    pub fn instantiate(&self, member: usize) -> Result<Box<dyn Scheduler>> {
        match (&self.kind, self.resolved.get(member)) {
            (ContenderKind::Heuristic, _) => Ok(schedulers::by_name(&self.name)?),
            (_, Some(path)) => {
                let policy = LoadedPolicy::load(path, tch::Device::Cpu)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(Box::new(Learned {
                    name: self.name.clone(),
                    rules: Rules::new(&policy.meta().action_layout.rules),
                    policy,
                    sampler: self.sampled.then(|| ChaCha8Rng::seed_from_u64(0)),
                }))
            }
            (_, None) => bail!("checkpoint {member} of `{}` was not loaded", self.name),
        }
    }
}

/// Loads and validates one checkpoint; returns what the report records and its metadata file.
fn load_checkpoint(path: &Path) -> Result<(CheckpointInfo, PathBuf)> {
    // `runs/x/checkpoints/best` names `best.json` (the form `make demo` passes); a weights
    // file is refused naming its metadata file.
    let resolved = checkpoint::resolve(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let policy =
        LoadedPolicy::load(&resolved, tch::Device::Cpu).map_err(|e| anyhow::anyhow!("{e}"))?;
    let bytes =
        std::fs::read(&resolved).with_context(|| format!("cannot read {}", resolved.display()))?;
    let meta = policy.meta();
    let info = CheckpointInfo {
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
    };
    Ok((info, resolved))
}

/// A trained policy as a [`Scheduler`]: greedy over the legal actions of its observation, or
/// sampling from its masked softmax with a stream reseeded from every episode's seed (so a
/// report does not depend on the order or threads episodes run in).
struct Learned {
    name: String,
    policy: LoadedPolicy,
    sampler: Option<ChaCha8Rng>,
    /// A rule-selection policy's rules (`None`: it acts in the scenario's own actions).
    rules: Option<Rules>,
}

/// What a rule-selection policy needs beside the scenario's env: its rules' decisions, and
/// the observation and mask it was trained on (see `schedulers::RuleSelectionEnv`).
struct Rules {
    names: Vec<String>,
    /// Built at the first decision, from the env (`check_fits` has built it once before).
    chooser: Option<RuleChooser>,
    seed: u64,
    obs: Vec<f32>,
    mask: Vec<bool>,
}

impl Rules {
    fn new(names: &[String]) -> Option<Self> {
        (!names.is_empty()).then(|| Self {
            names: names.to_vec(),
            chooser: None,
            seed: 0,
            obs: Vec::new(),
            mask: Vec::new(),
        })
    }

    /// Asks the rules for their decisions and lays out the policy's observation and mask.
    fn observe(&mut self, env: &ScenarioEnv, obs: &[f32]) -> (&RuleChooser, &[f32], &[bool]) {
        let chooser = self.chooser.get_or_insert_with(|| {
            let mut chooser = RuleChooser::new(&self.names, env)
                .expect("check_fits built these rules on this scenario");
            chooser.reset(self.seed);
            chooser
        });
        self.obs.resize(obs.len() + chooser.num_features(), 0.0);
        chooser.observe(env, obs, &mut self.obs);
        self.mask.resize(chooser.num_rules(), false);
        chooser.write_mask(&mut self.mask);
        (chooser, &self.obs, &self.mask)
    }
}

impl Scheduler for Learned {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn reset(&mut self, seed: u64) {
        if let Some(rng) = self.sampler.as_mut() {
            *rng = episode_sampler(seed);
        }
        if let Some(rules) = self.rules.as_mut() {
            rules.seed = seed;
            if let Some(chooser) = rules.chooser.as_mut() {
                chooser.reset(seed);
            }
        }
    }

    /// The policy's action; for a rule-selection policy whose chosen rule names a task
    /// outside the visible slots (a whole-queue rule), which no action can start, wait.
    /// Episodes use [`decide`](Scheduler::decide), which carries that choice out.
    fn act(&mut self, env: &ScenarioEnv, obs: &[f32], mask: &[bool]) -> usize {
        match self.decide(env, obs, mask) {
            Decision::Action(action) => action,
            _ => mask.len() - 1,
        }
    }

    fn decide(&mut self, env: &ScenarioEnv, obs: &[f32], mask: &[bool]) -> Decision {
        let Some(rules) = self.rules.as_mut() else {
            return Decision::Action(pick(&mut self.policy, self.sampler.as_mut(), obs, mask));
        };
        let (chooser, obs, mask) = rules.observe(env, obs);
        chooser.decision(pick(&mut self.policy, self.sampler.as_mut(), obs, mask))
    }
}

/// The policy's greedy action, or a sample from its masked softmax.
fn pick(
    policy: &mut LoadedPolicy,
    sampler: Option<&mut ChaCha8Rng>,
    obs: &[f32],
    mask: &[bool],
) -> usize {
    match sampler {
        Some(rng) => policy
            .sample(obs, mask, rng)
            .unwrap_or_else(|| policy.act(obs, mask)),
        None => policy.act(obs, mask),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, name: &str) -> bool {
        wildcard_match(
            &pattern.chars().collect::<Vec<_>>(),
            &name.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn wildcards_match_like_a_shell() {
        assert!(matches("ppo_seed*", "ppo_seed12"));
        assert!(matches("ppo_seed*", "ppo_seed"));
        assert!(!matches("ppo_seed*", "dqn_seed1"));
        assert!(matches("seed?", "seed3") && !matches("seed?", "seed34"));
        assert!(matches("seed[0-2]", "seed1") && !matches("seed[0-2]", "seed3"));
        assert!(matches("seed[!0-2]", "seed3"));
    }

    #[test]
    fn checkpoint_flags_parse_into_singles_and_groups() {
        assert_eq!(
            CheckpointSpec::parse("runs/a/checkpoints/best").unwrap(),
            CheckpointSpec::Single("runs/a/checkpoints/best".into())
        );
        assert_eq!(
            CheckpointSpec::parse("ppo=runs/a, runs/b").unwrap(),
            CheckpointSpec::Group {
                name: "ppo".into(),
                paths: vec!["runs/a".into(), "runs/b".into()]
            }
        );
        // A `/` before the `=` makes it a path.
        assert!(matches!(
            CheckpointSpec::parse("runs/x=1/best").unwrap(),
            CheckpointSpec::Single(_)
        ));
        assert!(CheckpointSpec::parse("sjf=runs/a").is_err());
        assert!(CheckpointSpec::parse("ppo=").is_err());
    }

    #[test]
    fn globs_expand_in_sorted_order() {
        let tmp = tempfile::tempdir().unwrap();
        for run in [
            "ppo_seed2",
            "ppo_seed10",
            "ppo_seed1",
            "dqn_seed1",
            ".ppo_seed9",
        ] {
            std::fs::create_dir_all(tmp.path().join(run).join("checkpoints")).unwrap();
        }
        let root = tmp.path().to_str().unwrap();
        let found = glob(&format!("{root}/ppo_seed*/checkpoints")).unwrap();
        let names: Vec<String> = found
            .iter()
            .map(|p| {
                p.parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["ppo_seed1", "ppo_seed10", "ppo_seed2"]);
        let spec = CheckpointSpec::parse(&format!("ppo={root}/ppo_seed*")).unwrap();
        let CheckpointSpec::Group { paths, .. } = spec else {
            panic!("{spec:?}")
        };
        assert_eq!(paths.len(), 3);
        assert!(CheckpointSpec::parse(&format!("ppo={root}/nothing*")).is_err());
    }
}
