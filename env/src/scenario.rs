//! Scenario files: `configs/scenarios/<name>.toml` → a validated, resolved config → an env.
//!
//! Parsing is strict (`deny_unknown_fields`), and all checks happen in one resolution step
//! whose errors name the file, the key and the reason. [`Scenario::from_toml_str`] is pure;
//! [`load_file`] and [`load_named`] are the thin IO around it (plus the CSV a workload may
//! name, read relative to the scenario file).
//!
//! A scenario is either a general cluster (`model = "cluster"`, the default) or DeepRM's
//! environment (`model = "deeprm"`). Cluster scenario keys:
//!
//! ```toml
//! name = "tiny"
//! seed = 0                             # workload seed until reset(Some(seed))
//! resources = ["cpu", "mem_gib"]       # at most 8
//! [[server_types]]                     # repeated
//! name = "small"
//! count = 2
//! capacity = [4, 16]                   # integer units, one per resource
//! speed = 1.0                          # runtime = work / speed
//! [queue]
//! num_slots = 4
//! backlog_cap = 20                     # overflow is dropped (and counted)
//! [time]                               # optional
//! mode = "event"                       # "event" | "stepped"
//! step_s = 1.0                         # stepped wait; wait with no future event
//! max_time_s = 1e6                     # truncation
//! max_decisions = 100000               # truncation
//! [actions]                            # optional
//! mode = "placement"                   # "placement" | "slot"
//! placement_rule = "first_fit"         # slot mode: "first_fit" | "best_fit"
//! illegal = "error"                    # "error" | "wait"
//! [reward]                             # optional; weights of RewardWeights
//! slowdown = 1.0
//! wait = 0.0
//! deadline_miss = 0.0
//! dropped = 0.0
//! [observation]                        # optional
//! time_scale_s = 10.0                  # default: mean task duration of the workload
//! [workload]
//! kind = "synthetic"                   # "synthetic" | "list" | "csv" | "deeprm"
//! oversize = "reject"                  # task larger than every server: "reject" | "drop"
//! num_tasks = 50
//! arrivals = { process = "poisson", offered_load = 0.8 }
//! # process: "poisson" | "mmpp" (burst_ratio, mean_calm_s, mean_burst_s)
//! #          | "diurnal" (amplitude, period_s); rate by rate_per_s or offered_load
//! [[workload.classes]]
//! name = "batch"
//! weight = 1.0
//! demand = [1, 2]
//! duration = { dist = "uniform", min_s = 5, max_s = 15 }
//! # dist: "fixed" (value_s) | "uniform" (min_s, max_s) | "exponential" (mean_s, min_s)
//! #       | "lognormal" (mean_s, sigma)
//! estimate_noise = 0.2                 # estimate = duration × U[0.8, 1.2]
//! priority = 0
//! deadline_factor = 3.0                # deadline = arrival + 3 × duration
//! ```
//!
//! `kind = "list"` takes `tasks = [{ id, arrival_s, duration_s, demand, estimate_s?,
//! priority?, deadline_s? }, ...]`; `kind = "csv"` takes `path` (see
//! [`crate::workload::csv`]); `kind = "deeprm"` takes `arrival_prob`, `num_steps`,
//! `max_demand` (see [`DeepRmGenerator`]). DeepRM scenarios are shown in
//! `configs/scenarios/deeprm.toml`.
//!
//! Trace workloads (issue 6; see [`crate::trace`] for each format's mapping):
//!
//! ```toml
//! [workload]
//! kind = "swf"              # "swf" (path) | "alibaba" (path = pods, nodes) | "tiresias" (path, cluster)
//! path = "../../../shared/data/swf/lublin_256_new2.swf"   # relative to the scenario file
//! window_jobs = 1024        # optional: a window of this many tasks at a seeded offset
//! load_factor = 1.0         # optional: inter-arrival times divided by this
//! lenient = false           # optional: skip and count malformed lines instead of failing
//! ```
//!
//! With a trace, `resources` and `server_types` may be left out: they come from the trace
//! (SWF header `MaxNodes`/`MaxProcs`; the Alibaba node list; the Tiresias cluster shape).
//! Cluster options of issue 6 (all optional):
//!
//! ```toml
//! [gpu]                                # per-GPU tracking: shares of one GPU, GPU models
//! resource = "gpu_milli"
//! units_per_gpu = 1000
//! models = ["T4", "V100"]              # server_types[].gpu_model names one
//! [failures]                           # default for every type; per type: failure = {..}
//! mttf_s = 40000.0                     # exponential time to failure
//! mttr_s = 600.0                       # exponential time to repair
//! on_kill = "requeue"                  # "requeue" | "drop"
//! [power]                              # default for every type; per type: power = {..}
//! idle_w = 100.0
//! peak_w = 300.0                       # linear in the dominant resource's utilisation
//! idle_timeout_s = 300.0               # idle servers power down; none: never
//! boot_s = 30.0                        # a task placed on a powered-down server waits this
//! [[reservations]]                     # repeated, one per class
//! priority = 2
//! fraction = 0.1                       # of each server type, for priority >= 2 only
//! [observation]
//! servers = "per_type"                 # "per_server" | "per_type" (large clusters)
//! [reward]
//! energy_kwh = 0.0                     # cost per kWh
//! ```
//!
//! Offered load: for a target `offered_load`, the mean arrival rate is chosen so that the
//! bottleneck resource `r` receives `rate × E[demand_r × work] = load × Σ_servers capacity_r
//! × speed`.

use crate::api::{ActionLayout, Env, EnvError, ObsLayout, Transition};
use crate::check::Inspect;
use crate::cluster::{
    ActionMode, Census, ClusterConfig, ClusterEnv, FailureModel, GpuConfig, IllegalAction,
    KillPolicy, OversizePolicy, PlacementRule, PowerModel, Reservation, RewardWeights, ServerObs,
    ServerType, TimeMode,
};
use crate::deeprm::{DeepRmConfig, DeepRmEnv};
use crate::metrics::EpisodeMetrics;
use crate::spaces::{BoxSpace, Discrete};
use crate::trace::{self, LoadedTrace, Trace};
use crate::workload::{
    ArrivalProcess, DeepRmGenerator, DurationDist, MAX_RESOURCES, Synthetic, TaskClass, TaskList,
    TaskSource, TaskSpec,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The scenarios shipped in `configs/scenarios/`.
pub const SHIPPED: &[&str] = &[
    "tiny",
    "deeprm",
    "cloud",
    "hpc-lublin",
    "alibaba-gpu",
    "tiresias",
];

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

/// A resolved scenario, ready to build envs from.
#[derive(Clone, Debug)]
pub enum Scenario {
    Cluster(ClusterConfig),
    DeepRm(DeepRmConfig),
}

impl Scenario {
    /// Parses and validates scenario text. `path` names the file in errors and anchors
    /// relative paths (a CSV workload).
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self, ScenarioError> {
        let parse_err = |e: toml::de::Error| ScenarioError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let probe: ModelProbe = toml::from_str(text).map_err(parse_err)?;
        match probe.model.as_deref() {
            None | Some("cluster") => {
                let file: ClusterFile = toml::from_str(text).map_err(parse_err)?;
                resolve_cluster(file, path).map(Self::Cluster)
            }
            Some("deeprm") => {
                let file: DeepRmFile = toml::from_str(text).map_err(parse_err)?;
                resolve_deeprm(file, path).map(Self::DeepRm)
            }
            Some(other) => Err(invalid(
                path,
                "model",
                format!("unknown model `{other}`; expected `cluster` or `deeprm`"),
            )),
        }
    }

    /// Replaces the seed the env starts from (before any `reset(Some(seed))`).
    pub fn with_seed(mut self, seed: u64) -> Self {
        match &mut self {
            Self::Cluster(c) => c.seed = seed,
            Self::DeepRm(c) => c.seed = seed,
        }
        self
    }

    pub fn build(&self) -> ScenarioEnv {
        match self {
            Self::Cluster(c) => ScenarioEnv::Cluster(ClusterEnv::new(c.clone())),
            Self::DeepRm(c) => ScenarioEnv::DeepRm(DeepRmEnv::new(c.clone())),
        }
    }
}

/// `configs/scenarios` of this repository (compile-time path, for tests, benches and tools
/// run from the source tree).
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/scenarios")
}

/// Reads and resolves a scenario file.
pub fn load_file(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
        path: path.to_owned(),
        source,
    })?;
    Scenario::from_toml_str(&text, path)
}

/// Loads `configs/scenarios/<name>.toml`.
pub fn load_named(name: &str) -> Result<Scenario, ScenarioError> {
    load_file(&scenarios_dir().join(format!("{name}.toml")))
}

/// Any scenario's env, behind one concrete type (so vector envs need no boxing).
// The variants differ by a few hundred bytes of inline arrays; boxing would add a pointer
// chase to every step for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum ScenarioEnv {
    Cluster(ClusterEnv),
    DeepRm(DeepRmEnv),
}

macro_rules! delegate {
    ($self:ident, $env:ident => $body:expr) => {
        match $self {
            ScenarioEnv::Cluster($env) => $body,
            ScenarioEnv::DeepRm($env) => $body,
        }
    };
}

impl Env for ScenarioEnv {
    fn observation_space(&self) -> &BoxSpace {
        delegate!(self, e => e.observation_space())
    }
    fn action_space(&self) -> Discrete {
        delegate!(self, e => e.action_space())
    }
    fn obs_layout(&self) -> ObsLayout {
        delegate!(self, e => e.obs_layout())
    }
    fn action_layout(&self) -> ActionLayout {
        delegate!(self, e => e.action_layout())
    }
    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        delegate!(self, e => e.reset(seed, obs))
    }
    fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
        delegate!(self, e => e.step(action, obs))
    }
    fn action_mask(&self, mask: &mut [bool]) {
        delegate!(self, e => e.action_mask(mask))
    }
    fn episode_metrics(&self) -> Option<&EpisodeMetrics> {
        delegate!(self, e => e.episode_metrics())
    }
}

// ----- Added for lepton-eval (issue 4): per-task outcomes for reports, not for schedulers -----
impl ScenarioEnv {
    /// Slowdown of every task that has finished this episode, in arrival order (see
    /// [`ClusterEnv::finished_slowdowns`]); for reports, never for a scheduler's decisions.
    pub fn finished_slowdowns(&self) -> Box<dyn Iterator<Item = f64> + '_> {
        match self {
            ScenarioEnv::Cluster(e) => Box::new(e.finished_slowdowns()),
            ScenarioEnv::DeepRm(e) => Box::new(e.finished_slowdowns()),
        }
    }
}

impl Inspect for ScenarioEnv {
    fn census(&self) -> Census {
        delegate!(self, e => e.census())
    }
    fn now(&self) -> f64 {
        delegate!(self, e => Inspect::now(e))
    }
    fn check_invariants(&self) -> Result<(), String> {
        delegate!(self, e => e.check_invariants())
    }
    fn is_feasible_placement(&self, action: usize) -> bool {
        delegate!(self, e => Inspect::is_feasible_placement(e, action))
    }
    fn illegal_action_errors(&self) -> bool {
        delegate!(self, e => e.illegal_action_errors())
    }
    fn num_killed(&self) -> usize {
        delegate!(self, e => e.num_killed())
    }
}

// ----- File format (raw, as written) -----

#[derive(Deserialize)]
struct ModelProbe {
    model: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFile {
    #[allow(dead_code)]
    model: Option<String>,
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    #[serde(default)]
    seed: u64,
    /// Optional for trace workloads that bring their own (SWF, Alibaba, Tiresias).
    #[serde(default)]
    resources: Vec<String>,
    /// Optional for trace workloads that describe their cluster.
    #[serde(default)]
    server_types: Vec<ServerTypeFile>,
    queue: QueueFile,
    gpu: Option<GpuFile>,
    failures: Option<FailuresFile>,
    power: Option<PowerFile>,
    #[serde(default)]
    reservations: Vec<ReservationFile>,
    #[serde(default)]
    time: TimeFile,
    #[serde(default)]
    actions: ActionsFile,
    #[serde(default)]
    reward: RewardFile,
    #[serde(default)]
    observation: ObservationFile,
    workload: WorkloadFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerTypeFile {
    name: String,
    count: usize,
    capacity: Vec<u32>,
    #[serde(default = "one")]
    speed: f64,
    gpu_model: Option<String>,
    failure: Option<FailureModelFile>,
    power: Option<PowerModelFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GpuFile {
    resource: String,
    units_per_gpu: u32,
    #[serde(default)]
    models: Vec<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct FailureModelFile {
    mttf_s: f64,
    mttr_s: f64,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct PowerModelFile {
    idle_w: f64,
    peak_w: f64,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum KillFile {
    #[default]
    Requeue,
    Drop,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailuresFile {
    mttf_s: Option<f64>,
    mttr_s: Option<f64>,
    #[serde(default)]
    on_kill: KillFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PowerFile {
    idle_w: Option<f64>,
    peak_w: Option<f64>,
    idle_timeout_s: Option<f64>,
    #[serde(default)]
    boot_s: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReservationFile {
    priority: u8,
    fraction: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueFile {
    num_slots: usize,
    backlog_cap: usize,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum TimeModeFile {
    #[default]
    Event,
    Stepped,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeFile {
    #[serde(default)]
    mode: TimeModeFile,
    #[serde(default = "one")]
    step_s: f64,
    #[serde(default = "default_max_time_s")]
    max_time_s: f64,
    #[serde(default = "default_max_decisions")]
    max_decisions: u64,
}

impl Default for TimeFile {
    fn default() -> Self {
        Self {
            mode: TimeModeFile::Event,
            step_s: 1.0,
            max_time_s: default_max_time_s(),
            max_decisions: default_max_decisions(),
        }
    }
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum ActionModeFile {
    #[default]
    Placement,
    Slot,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum PlacementRuleFile {
    #[default]
    FirstFit,
    BestFit,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum IllegalFile {
    #[default]
    Error,
    Wait,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActionsFile {
    #[serde(default)]
    mode: ActionModeFile,
    #[serde(default)]
    placement_rule: PlacementRuleFile,
    #[serde(default)]
    illegal: IllegalFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RewardFile {
    #[serde(default = "one")]
    slowdown: f64,
    #[serde(default)]
    wait: f64,
    #[serde(default)]
    deadline_miss: f64,
    #[serde(default)]
    dropped: f64,
    #[serde(default)]
    energy_kwh: f64,
}

impl Default for RewardFile {
    fn default() -> Self {
        Self {
            slowdown: 1.0,
            wait: 0.0,
            deadline_miss: 0.0,
            dropped: 0.0,
            energy_kwh: 0.0,
        }
    }
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum ServerObsFile {
    #[default]
    PerServer,
    PerType,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ObservationFile {
    time_scale_s: Option<f64>,
    #[serde(default)]
    servers: ServerObsFile,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
enum WorkloadKind {
    Synthetic,
    List,
    Csv,
    Deeprm,
    Swf,
    Alibaba,
    Tiresias,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum OversizeFile {
    #[default]
    Reject,
    Drop,
}

/// One table for every workload kind; resolution checks that the keys match the kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadFile {
    kind: WorkloadKind,
    #[serde(default)]
    oversize: OversizeFile,
    num_tasks: Option<usize>,
    arrivals: Option<ArrivalsFile>,
    classes: Option<Vec<ClassFile>>,
    tasks: Option<Vec<TaskFile>>,
    path: Option<String>,
    /// Alibaba: the node list.
    nodes: Option<String>,
    /// Tiresias: the cluster shape.
    cluster: Option<String>,
    window_jobs: Option<usize>,
    load_factor: Option<f64>,
    lenient: Option<bool>,
    arrival_prob: Option<f64>,
    num_steps: Option<u32>,
    max_demand: Option<u32>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
enum ProcessFile {
    Poisson,
    Mmpp,
    Diurnal,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArrivalsFile {
    process: ProcessFile,
    rate_per_s: Option<f64>,
    offered_load: Option<f64>,
    burst_ratio: Option<f64>,
    mean_calm_s: Option<f64>,
    mean_burst_s: Option<f64>,
    amplitude: Option<f64>,
    period_s: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassFile {
    name: String,
    #[serde(default = "one")]
    weight: f64,
    demand: Vec<u32>,
    duration: DurationFile,
    #[serde(default)]
    estimate_noise: f64,
    #[serde(default)]
    priority: u8,
    deadline_factor: Option<f64>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
enum DistFile {
    Fixed,
    Uniform,
    Exponential,
    Lognormal,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DurationFile {
    dist: DistFile,
    value_s: Option<f64>,
    min_s: Option<f64>,
    max_s: Option<f64>,
    mean_s: Option<f64>,
    sigma: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskFile {
    id: u64,
    arrival_s: f64,
    duration_s: f64,
    demand: Vec<u32>,
    estimate_s: Option<f64>,
    #[serde(default)]
    priority: u8,
    deadline_s: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeepRmFile {
    #[allow(dead_code)]
    model: String,
    #[allow(dead_code)]
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    #[serde(default)]
    seed: u64,
    resources: Vec<String>,
    capacity: Vec<u32>,
    horizon: usize,
    num_slots: usize,
    backlog_cap: usize,
    max_steps: u32,
    #[serde(default = "default_max_decisions")]
    max_decisions: u64,
    #[serde(default)]
    reward: RewardFile,
    workload: WorkloadFile,
}

fn one() -> f64 {
    1.0
}
fn default_max_time_s() -> f64 {
    1e12
}
fn default_max_decisions() -> u64 {
    10_000_000
}

// ----- Resolution: every check in one place -----

fn invalid(path: &Path, key: &str, reason: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        path: path.to_owned(),
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// Builds errors for one file.
struct Check<'a>(&'a Path);

impl Check<'_> {
    fn err(&self, key: &str, reason: impl Into<String>) -> ScenarioError {
        invalid(self.0, key, reason)
    }

    fn positive(&self, key: &str, value: f64) -> Result<f64, ScenarioError> {
        if value.is_finite() && value > 0.0 {
            Ok(value)
        } else {
            Err(self.err(key, format!("must be a finite number > 0, got {value}")))
        }
    }

    fn non_negative(&self, key: &str, value: f64) -> Result<f64, ScenarioError> {
        if value.is_finite() && value >= 0.0 {
            Ok(value)
        } else {
            Err(self.err(key, format!("must be a finite number >= 0, got {value}")))
        }
    }

    fn required<T>(&self, key: &str, value: Option<T>, why: &str) -> Result<T, ScenarioError> {
        value.ok_or_else(|| self.err(key, format!("is required {why}")))
    }

    fn unused<T>(&self, key: &str, value: &Option<T>, why: &str) -> Result<(), ScenarioError> {
        match value {
            Some(_) => Err(self.err(key, format!("is not used {why}"))),
            None => Ok(()),
        }
    }

    fn resources(&self, names: &[String]) -> Result<(), ScenarioError> {
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

    fn per_resource(
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

    fn failure_model(&self, key: &str, f: FailureModelFile) -> Result<FailureModel, ScenarioError> {
        Ok(FailureModel {
            mttf_s: self.positive(&format!("{key}.mttf_s"), f.mttf_s)?,
            mttr_s: self.positive(&format!("{key}.mttr_s"), f.mttr_s)?,
        })
    }

    fn power_model(&self, key: &str, p: PowerModelFile) -> Result<PowerModel, ScenarioError> {
        let idle_w = self.non_negative(&format!("{key}.idle_w"), p.idle_w)?;
        let peak_w = self.non_negative(&format!("{key}.peak_w"), p.peak_w)?;
        if peak_w < idle_w {
            return Err(self.err(&format!("{key}.peak_w"), "must be >= idle_w"));
        }
        Ok(PowerModel { idle_w, peak_w })
    }

    fn reward(&self, r: &RewardFile) -> Result<RewardWeights, ScenarioError> {
        Ok(RewardWeights {
            slowdown: self.non_negative("reward.slowdown", r.slowdown)?,
            wait: self.non_negative("reward.wait", r.wait)?,
            deadline_miss: self.non_negative("reward.deadline_miss", r.deadline_miss)?,
            dropped: self.non_negative("reward.dropped", r.dropped)?,
            energy_kwh: self.non_negative("reward.energy_kwh", r.energy_kwh)?,
        })
    }
}

fn resolve_cluster(mut file: ClusterFile, path: &Path) -> Result<ClusterConfig, ScenarioError> {
    let c = Check(path);
    if file.name.trim().is_empty() {
        return Err(c.err("name", "must not be empty"));
    }
    let loaded = load_trace(&file.workload, path, &c)?;
    if let Some(t) = &loaded {
        if file.resources.is_empty() {
            file.resources = t.resources.clone();
        } else if file.resources.len() != t.resources.len() {
            return Err(c.err(
                "resources",
                format!(
                    "this trace has {} resources ({}); give as many names or none",
                    t.resources.len(),
                    t.resources.join(", ")
                ),
            ));
        }
    }
    c.resources(&file.resources)?;
    let nr = file.resources.len();
    let trace_cluster = loaded.as_ref().and_then(|t| t.cluster.clone());
    let mut gpu = match &file.gpu {
        Some(g) => {
            let resource = file
                .resources
                .iter()
                .position(|r| *r == g.resource)
                .ok_or_else(|| {
                    c.err(
                        "gpu.resource",
                        format!("`{}` is not a resource", g.resource),
                    )
                })?;
            if g.units_per_gpu == 0 || g.units_per_gpu > u32::from(u16::MAX) {
                return Err(c.err("gpu.units_per_gpu", "must be in 1..=65535"));
            }
            Some(GpuConfig {
                resource,
                units_per_gpu: g.units_per_gpu,
                models: g.models.clone(),
            })
        }
        None => None,
    };
    let server_types = if file.server_types.is_empty() {
        match trace_cluster {
            Some(cluster) => {
                if gpu.is_none() {
                    gpu = cluster.gpu;
                }
                cluster.server_types
            }
            None => return Err(c.err("server_types", "needs at least one server type")),
        }
    } else {
        let mut server_types = Vec::with_capacity(file.server_types.len());
        for (t, st) in file.server_types.iter().enumerate() {
            let key = |k: &str| format!("server_types[{t}].{k}");
            if st.count == 0 {
                return Err(c.err(&key("count"), "must be >= 1"));
            }
            let gpu_model = match (&st.gpu_model, &mut gpu) {
                (None, _) => None,
                (Some(_), None) => {
                    return Err(c.err(&key("gpu_model"), "needs a [gpu] section"));
                }
                (Some(m), Some(g)) => {
                    Some(g.models.iter().position(|x| x == m).unwrap_or_else(|| {
                        g.models.push(m.clone());
                        g.models.len() - 1
                    }))
                }
            };
            let mut ty = ServerType::new(
                &st.name,
                st.count,
                &c.per_resource(&key("capacity"), &st.capacity, nr)?[..nr],
                c.positive(&key("speed"), st.speed)?,
            );
            ty.gpu_model = gpu_model;
            ty.failure = st
                .failure
                .map(|f| c.failure_model(&key("failure"), f))
                .transpose()?;
            ty.power = st
                .power
                .map(|p| c.power_model(&key("power"), p))
                .transpose()?;
            server_types.push(ty);
        }
        server_types
    };
    let mut server_types = server_types;
    if let Some(g) = &gpu {
        if g.models.len() > 31 {
            return Err(c.err("gpu.models", "at most 31 GPU models"));
        }
        for (t, ty) in server_types.iter().enumerate() {
            if ty.capacity[g.resource] % g.units_per_gpu != 0
                || ty.capacity[g.resource] / g.units_per_gpu > crate::cluster::MAX_GPUS as u32
            {
                return Err(c.err(
                    &format!("server_types[{t}].capacity"),
                    format!(
                        "GPU capacity must be whole GPUs of {} units, at most {}",
                        g.units_per_gpu,
                        crate::cluster::MAX_GPUS
                    ),
                ));
            }
        }
    }
    let mut on_kill = KillPolicy::Requeue;
    if let Some(f) = &file.failures {
        on_kill = match f.on_kill {
            KillFile::Requeue => KillPolicy::Requeue,
            KillFile::Drop => KillPolicy::Drop,
        };
        match (f.mttf_s, f.mttr_s) {
            (Some(mttf_s), Some(mttr_s)) => {
                let model = c.failure_model("failures", FailureModelFile { mttf_s, mttr_s })?;
                for ty in &mut server_types {
                    ty.failure.get_or_insert(model);
                }
            }
            (None, None) => {}
            _ => return Err(c.err("failures", "give both `mttf_s` and `mttr_s`, or neither")),
        }
    }
    let (mut idle_timeout_s, mut boot_s) = (None, 0.0);
    if let Some(p) = &file.power {
        idle_timeout_s = p
            .idle_timeout_s
            .map(|t| c.positive("power.idle_timeout_s", t))
            .transpose()?;
        boot_s = c.non_negative("power.boot_s", p.boot_s)?;
        match (p.idle_w, p.peak_w) {
            (Some(idle_w), Some(peak_w)) => {
                let model = c.power_model("power", PowerModelFile { idle_w, peak_w })?;
                for ty in &mut server_types {
                    ty.power.get_or_insert(model);
                }
            }
            (None, None) => {}
            _ => return Err(c.err("power", "give both `idle_w` and `peak_w`, or neither")),
        }
    }
    let mut reservations = Vec::with_capacity(file.reservations.len());
    for (i, r) in file.reservations.iter().enumerate() {
        let key = format!("reservations[{i}].fraction");
        let fraction = c.non_negative(&key, r.fraction)?;
        if fraction > 1.0 {
            return Err(c.err(&key, "must be in [0, 1]"));
        }
        if file.reservations[..i]
            .iter()
            .any(|o| o.priority == r.priority)
        {
            return Err(c.err(
                &format!("reservations[{i}].priority"),
                format!("class {} is reserved twice", r.priority),
            ));
        }
        reservations.push(Reservation {
            priority: r.priority,
            fraction,
        });
    }
    if reservations.iter().map(|r| r.fraction).sum::<f64>() > 1.0 {
        return Err(c.err("reservations", "the fractions add up to more than 1"));
    }
    if file.queue.num_slots == 0 {
        return Err(c.err("queue.num_slots", "must be >= 1"));
    }
    let step_s = c.positive("time.step_s", file.time.step_s)?;
    let max_time_s = c.positive("time.max_time_s", file.time.max_time_s)?;
    if file.time.max_decisions == 0 {
        return Err(c.err("time.max_decisions", "must be >= 1"));
    }
    let oversize = match file.workload.oversize {
        OversizeFile::Reject => OversizePolicy::Reject,
        OversizeFile::Drop => OversizePolicy::Drop,
    };
    let fits_somewhere = |demand: &[u32; MAX_RESOURCES]| {
        server_types
            .iter()
            .any(|t| (0..nr).all(|r| demand[r] <= t.capacity[r]))
    };
    let resolved = match loaded {
        Some(t) => resolve_trace(
            t,
            &file.workload,
            &c,
            |spec| {
                crate::cluster::fits_some_server_type(
                    spec,
                    &server_types,
                    gpu.as_ref(),
                    &reservations,
                )
            },
            oversize,
        )?,
        None => resolve_workload(&file.workload, &file.resources, &c, path, |demand, what| {
            if oversize == OversizePolicy::Reject && !fits_somewhere(demand) {
                Err(format!(
                    "{what}: demand {:?} is larger than every server",
                    &demand[..nr]
                ))
            } else {
                Ok(())
            }
        })?,
    };
    // Offered load needs the cluster's capacity, so it is resolved here.
    let workload: Arc<dyn TaskSource> = match resolved.synthetic {
        Some((mut synthetic, Some(load))) => {
            let need = Synthetic::mean_demand_times_duration(&synthetic.classes);
            let rate = (0..nr)
                .filter(|&r| need[r] > 0.0)
                .map(|r| {
                    let supply: f64 = server_types
                        .iter()
                        .map(|t| t.count as f64 * f64::from(t.capacity[r]) * t.speed)
                        .sum();
                    load * supply / need[r]
                })
                .fold(f64::INFINITY, f64::min);
            if !rate.is_finite() || rate <= 0.0 {
                return Err(c.err(
                    "workload.arrivals.offered_load",
                    "no resource is both demanded and supplied; cannot derive a rate",
                ));
            }
            synthetic.arrivals = synthetic.arrivals.with_mean_rate(rate);
            Arc::new(Synthetic::new(
                synthetic.num_tasks,
                synthetic.arrivals,
                synthetic.classes,
            ))
        }
        Some((synthetic, None)) => Arc::new(synthetic),
        None => resolved.source,
    };
    let time_scale_s = match file.observation.time_scale_s {
        Some(s) => c.positive("observation.time_scale_s", s)?,
        None => resolved.mean_duration_s,
    };
    Ok(ClusterConfig {
        resources: file.resources,
        server_types,
        num_slots: file.queue.num_slots,
        backlog_cap: file.queue.backlog_cap,
        time_mode: match file.time.mode {
            TimeModeFile::Event => TimeMode::EventDriven,
            TimeModeFile::Stepped => TimeMode::Stepped,
        },
        step_s,
        max_time_s,
        max_decisions: file.time.max_decisions,
        action_mode: match file.actions.mode {
            ActionModeFile::Placement => ActionMode::Placement,
            ActionModeFile::Slot => ActionMode::Slot,
        },
        placement_rule: match file.actions.placement_rule {
            PlacementRuleFile::FirstFit => PlacementRule::FirstFit,
            PlacementRuleFile::BestFit => PlacementRule::BestFit,
        },
        illegal_action: match file.actions.illegal {
            IllegalFile::Error => IllegalAction::Error,
            IllegalFile::Wait => IllegalAction::Wait,
        },
        oversize,
        reward: c.reward(&file.reward)?,
        time_scale_s,
        max_priority: resolved.max_priority,
        seed: file.seed,
        workload,
        gpu,
        on_kill,
        idle_timeout_s,
        boot_s,
        reservations,
        server_obs: match file.observation.servers {
            ServerObsFile::PerServer => ServerObs::PerServer,
            ServerObsFile::PerType => ServerObs::PerType,
        },
    })
}

/// Loads the trace a trace workload names (paths relative to the scenario file).
fn load_trace(
    w: &WorkloadFile,
    path: &Path,
    c: &Check<'_>,
) -> Result<Option<LoadedTrace>, ScenarioError> {
    let why = format!(
        "when workload.kind = \"{}\"",
        format!("{:?}", w.kind).to_lowercase()
    );
    let is_trace = matches!(
        w.kind,
        WorkloadKind::Swf | WorkloadKind::Alibaba | WorkloadKind::Tiresias
    );
    for (key, present, kind) in [
        ("workload.nodes", w.nodes.is_some(), WorkloadKind::Alibaba),
        (
            "workload.cluster",
            w.cluster.is_some(),
            WorkloadKind::Tiresias,
        ),
    ] {
        if present && w.kind != kind {
            return Err(c.err(key, format!("is not used {why}")));
        }
    }
    for (key, present) in [
        ("workload.window_jobs", w.window_jobs.is_some()),
        ("workload.load_factor", w.load_factor.is_some()),
        ("workload.lenient", w.lenient.is_some()),
    ] {
        if present && !is_trace {
            return Err(c.err(key, format!("is not used {why}")));
        }
    }
    if !is_trace {
        return Ok(None);
    }
    for (key, present) in [
        ("workload.num_tasks", w.num_tasks.is_some()),
        ("workload.arrivals", w.arrivals.is_some()),
        ("workload.classes", w.classes.is_some()),
        ("workload.tasks", w.tasks.is_some()),
        ("workload.arrival_prob", w.arrival_prob.is_some()),
        ("workload.num_steps", w.num_steps.is_some()),
        ("workload.max_demand", w.max_demand.is_some()),
    ] {
        if present {
            return Err(c.err(key, format!("is not used {why}")));
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let file = |key: &str, rel: &Option<String>| -> Result<PathBuf, ScenarioError> {
        Ok(dir.join(c.required(key, rel.as_ref(), &why)?))
    };
    let lenient = w.lenient.unwrap_or(false);
    let main = file("workload.path", &w.path)?;
    let loaded = match w.kind {
        WorkloadKind::Swf => trace::swf::load(&main, lenient),
        WorkloadKind::Alibaba => {
            trace::alibaba::load(&file("workload.nodes", &w.nodes)?, &main, lenient)
        }
        _ => trace::tiresias::load(&main, &file("workload.cluster", &w.cluster)?, lenient),
    };
    loaded
        .map(Some)
        .map_err(|e| c.err("workload.path", e.to_string()))
}

/// A loaded trace as the scenario's workload: window, load factor, and tasks that fit.
fn resolve_trace(
    t: LoadedTrace,
    w: &WorkloadFile,
    c: &Check<'_>,
    fits: impl Fn(&TaskSpec) -> bool,
    oversize: OversizePolicy,
) -> Result<ResolvedWorkload, ScenarioError> {
    let window_jobs = match w.window_jobs {
        Some(0) => return Err(c.err("workload.window_jobs", "must be >= 1")),
        other => other,
    };
    let load_factor = c.positive("workload.load_factor", w.load_factor.unwrap_or(1.0))?;
    let mut num_fitting = 0;
    for task in &t.tasks {
        if fits(task) {
            num_fitting += 1;
        } else if oversize == OversizePolicy::Reject {
            return Err(c.err(
                "workload",
                format!(
                    "task {}: demand {:?} fits no server of the cluster (size, GPUs, GPU model \
                     or reservation); set workload.oversize = \"drop\" to drop such tasks",
                    task.id,
                    &task.demand[..t.resources.len()]
                ),
            ));
        }
    }
    if num_fitting == 0 {
        return Err(c.err("workload", "no task of the trace fits any server"));
    }
    let mean_duration_s = t.tasks.iter().map(|t| t.estimate_s).sum::<f64>() / t.tasks.len() as f64;
    let max_priority = t.tasks.iter().map(|t| t.priority).max().unwrap_or(0);
    Ok(ResolvedWorkload {
        source: Arc::new(Trace::new(t.tasks, window_jobs, load_factor)),
        synthetic: None,
        list: None,
        deeprm: None,
        max_priority,
        mean_duration_s,
    })
}

fn resolve_deeprm(file: DeepRmFile, path: &Path) -> Result<DeepRmConfig, ScenarioError> {
    let c = Check(path);
    c.resources(&file.resources)?;
    let nr = file.resources.len();
    let capacity = c.per_resource("capacity", &file.capacity, nr)?;
    if capacity[..nr].contains(&0) {
        return Err(c.err("capacity", "every resource needs at least 1 unit"));
    }
    if file.horizon < 2 {
        return Err(c.err("horizon", "must be >= 2"));
    }
    if file.num_slots == 0 {
        return Err(c.err("num_slots", "must be >= 1"));
    }
    if file.max_steps == 0 {
        return Err(c.err("max_steps", "must be >= 1"));
    }
    if matches!(
        file.workload.kind,
        WorkloadKind::Swf | WorkloadKind::Alibaba | WorkloadKind::Tiresias
    ) {
        return Err(c.err(
            "workload.kind",
            "DeepRM scenarios take kind = \"deeprm\", \"list\" or \"csv\"",
        ));
    }
    let reject = matches!(file.workload.oversize, OversizeFile::Reject);
    let horizon = file.horizon;
    let resolved = resolve_workload(&file.workload, &file.resources, &c, path, |demand, what| {
        if reject && (0..nr).any(|r| demand[r] > capacity[r]) {
            Err(format!(
                "{what}: demand {:?} exceeds the machine's capacity",
                &demand[..nr]
            ))
        } else {
            Ok(())
        }
    })?;
    let source = match resolved.synthetic {
        Some(_) => {
            return Err(c.err(
                "workload.kind",
                "DeepRM scenarios take kind = \"deeprm\", \"list\" or \"csv\"",
            ));
        }
        None => resolved.source,
    };
    // DeepRM time is in whole steps: check explicit lists here, with task ids.
    if let Some(list) = resolved.list {
        for t in list.tasks() {
            let whole = |x: f64| x.fract() == 0.0;
            if !whole(t.arrival_s) || !whole(t.duration_s) {
                return Err(c.err(
                    "workload",
                    format!(
                        "task {}: arrival_s and duration_s must be whole steps",
                        t.id
                    ),
                ));
            }
            if reject && t.duration_s as usize >= horizon {
                return Err(c.err(
                    "workload",
                    format!(
                        "task {}: length {} does not fit the horizon {horizon}",
                        t.id, t.duration_s
                    ),
                ));
            }
        }
    }
    if let Some(g) = &resolved.deeprm {
        if DeepRmGenerator::LARGE_LEN.1 as usize >= horizon {
            return Err(c.err(
                "horizon",
                format!(
                    "must exceed the generator's longest job ({})",
                    DeepRmGenerator::LARGE_LEN.1
                ),
            ));
        }
        if capacity[..nr].iter().any(|&cap| cap < g.max_demand) {
            return Err(c.err("workload.max_demand", "exceeds the machine's capacity"));
        }
    }
    Ok(DeepRmConfig {
        resources: file.resources,
        capacity,
        horizon,
        num_slots: file.num_slots,
        backlog_cap: file.backlog_cap,
        max_steps: file.max_steps,
        max_decisions: file.max_decisions,
        reward: c.reward(&file.reward)?,
        seed: file.seed,
        workload: source,
    })
}

/// A workload section, resolved except for what needs the cluster (offered load).
struct ResolvedWorkload {
    source: Arc<dyn TaskSource>,
    /// Synthetic workloads with their pending offered-load target, if any.
    synthetic: Option<(Synthetic, Option<f64>)>,
    list: Option<TaskList>,
    deeprm: Option<DeepRmGenerator>,
    max_priority: u8,
    mean_duration_s: f64,
}

fn resolve_workload(
    w: &WorkloadFile,
    resources: &[String],
    c: &Check<'_>,
    path: &Path,
    fits: impl Fn(&[u32; MAX_RESOURCES], &str) -> Result<(), String>,
) -> Result<ResolvedWorkload, ScenarioError> {
    let nr = resources.len();
    let why = format!(
        "when workload.kind = \"{}\"",
        format!("{:?}", w.kind).to_lowercase()
    );
    let synthetic_only = [
        ("workload.num_tasks", w.num_tasks.is_some()),
        ("workload.arrivals", w.arrivals.is_some()),
        ("workload.classes", w.classes.is_some()),
    ];
    let others = [
        ("workload.tasks", w.tasks.is_some(), WorkloadKind::List),
        ("workload.path", w.path.is_some(), WorkloadKind::Csv),
        (
            "workload.arrival_prob",
            w.arrival_prob.is_some(),
            WorkloadKind::Deeprm,
        ),
        (
            "workload.num_steps",
            w.num_steps.is_some(),
            WorkloadKind::Deeprm,
        ),
        (
            "workload.max_demand",
            w.max_demand.is_some(),
            WorkloadKind::Deeprm,
        ),
    ];
    for (key, present) in synthetic_only {
        if present && w.kind != WorkloadKind::Synthetic {
            return Err(c.err(key, format!("is not used {why}")));
        }
    }
    for (key, present, kind) in others {
        if present && w.kind != kind {
            return Err(c.err(key, format!("is not used {why}")));
        }
    }
    match w.kind {
        WorkloadKind::Synthetic => {
            let num_tasks = c.required("workload.num_tasks", w.num_tasks, &why)?;
            if num_tasks == 0 {
                return Err(c.err("workload.num_tasks", "must be >= 1"));
            }
            let arrivals = c.required("workload.arrivals", w.arrivals.as_ref(), &why)?;
            let file_classes = c.required("workload.classes", w.classes.as_ref(), &why)?;
            if file_classes.is_empty() {
                return Err(c.err("workload.classes", "needs at least one class"));
            }
            let mut classes = Vec::with_capacity(file_classes.len());
            for (i, cf) in file_classes.iter().enumerate() {
                let key = |k: &str| format!("workload.classes[{i}].{k}");
                let demand = c.per_resource(&key("demand"), &cf.demand, nr)?;
                fits(&demand, &format!("class `{}`", cf.name))
                    .map_err(|reason| c.err(&key("demand"), reason))?;
                let noise = c.non_negative(&key("estimate_noise"), cf.estimate_noise)?;
                if noise >= 1.0 {
                    return Err(c.err(&key("estimate_noise"), "must be < 1"));
                }
                classes.push(TaskClass {
                    name: cf.name.clone(),
                    weight: c.non_negative(&key("weight"), cf.weight)?,
                    demand,
                    duration_s: resolve_duration(&cf.duration, &key("duration"), c)?,
                    estimate_noise: noise,
                    priority: cf.priority,
                    deadline_factor: cf
                        .deadline_factor
                        .map(|f| c.positive(&key("deadline_factor"), f))
                        .transpose()?,
                });
            }
            if classes.iter().map(|cl| cl.weight).sum::<f64>() <= 0.0 {
                return Err(c.err("workload.classes", "the class weights sum to 0"));
            }
            let (process, load) = resolve_arrivals(arrivals, c)?;
            let total_weight: f64 = classes.iter().map(|cl| cl.weight).sum();
            let mean_duration_s = classes
                .iter()
                .map(|cl| cl.weight / total_weight * cl.duration_s.mean_s())
                .sum();
            let max_priority = classes.iter().map(|cl| cl.priority).max().unwrap_or(0);
            let synthetic = Synthetic::new(num_tasks, process, classes);
            Ok(ResolvedWorkload {
                source: Arc::new(synthetic.clone()),
                synthetic: Some((synthetic, load)),
                list: None,
                deeprm: None,
                max_priority,
                mean_duration_s,
            })
        }
        WorkloadKind::List | WorkloadKind::Csv => {
            let tasks = if w.kind == WorkloadKind::List {
                let file_tasks = c.required("workload.tasks", w.tasks.as_ref(), &why)?;
                let mut tasks = Vec::with_capacity(file_tasks.len());
                for (i, t) in file_tasks.iter().enumerate() {
                    let key = |k: &str| format!("workload.tasks[{i}].{k}");
                    let estimate_s = t.estimate_s.unwrap_or(t.duration_s);
                    tasks.push(TaskSpec {
                        id: t.id,
                        arrival_s: c.non_negative(&key("arrival_s"), t.arrival_s)?,
                        duration_s: c.positive(&key("duration_s"), t.duration_s)?,
                        estimate_s: c.positive(&key("estimate_s"), estimate_s)?,
                        demand: c.per_resource(&key("demand"), &t.demand, nr)?,
                        priority: t.priority,
                        deadline_s: t
                            .deadline_s
                            .map(|d| c.non_negative(&key("deadline_s"), d))
                            .transpose()?,
                        gpu_models: 0,
                    });
                }
                tasks
            } else {
                let rel = c.required("workload.path", w.path.as_ref(), &why)?;
                let csv_path = path.parent().unwrap_or(Path::new(".")).join(rel);
                TaskList::from_csv(&csv_path, resources)
                    .map_err(|e| c.err("workload.path", e.to_string()))?
                    .tasks()
                    .to_vec()
            };
            if tasks.is_empty() {
                return Err(c.err("workload", "the task list is empty"));
            }
            for t in &tasks {
                fits(&t.demand, &format!("task {}", t.id))
                    .map_err(|reason| c.err("workload", reason))?;
            }
            let mean_duration_s =
                tasks.iter().map(|t| t.estimate_s).sum::<f64>() / tasks.len() as f64;
            let max_priority = tasks.iter().map(|t| t.priority).max().unwrap_or(0);
            let list = TaskList::new(tasks);
            Ok(ResolvedWorkload {
                source: Arc::new(list.clone()),
                synthetic: None,
                list: Some(list),
                deeprm: None,
                max_priority,
                mean_duration_s,
            })
        }
        WorkloadKind::Swf | WorkloadKind::Alibaba | WorkloadKind::Tiresias => Err(c.err(
            "workload.kind",
            "trace workloads are only for cluster scenarios",
        )),
        WorkloadKind::Deeprm => {
            let p = c.required("workload.arrival_prob", w.arrival_prob, &why)?;
            if !(0.0..=1.0).contains(&p) {
                return Err(c.err(
                    "workload.arrival_prob",
                    format!("must be in [0, 1], got {p}"),
                ));
            }
            let max_demand = w.max_demand.unwrap_or(10);
            if max_demand < 2 {
                return Err(c.err("workload.max_demand", "must be >= 2"));
            }
            let generator = DeepRmGenerator {
                arrival_prob: p,
                num_steps: c.required("workload.num_steps", w.num_steps, &why)?,
                num_resources: nr,
                max_demand,
            };
            Ok(ResolvedWorkload {
                source: Arc::new(generator.clone()),
                synthetic: None,
                list: None,
                deeprm: Some(generator),
                max_priority: 0,
                mean_duration_s: 4.1,
            })
        }
    }
}

fn resolve_arrivals(
    a: &ArrivalsFile,
    c: &Check<'_>,
) -> Result<(ArrivalProcess, Option<f64>), ScenarioError> {
    // The rate is either given or derived later from the offered load; a placeholder of 1
    // is replaced by `with_mean_rate` in that case.
    let (rate, load) = match (a.rate_per_s, a.offered_load) {
        (Some(r), None) => (c.positive("workload.arrivals.rate_per_s", r)?, None),
        (None, Some(l)) => (1.0, Some(c.positive("workload.arrivals.offered_load", l)?)),
        _ => {
            return Err(c.err(
                "workload.arrivals",
                "give exactly one of `rate_per_s` and `offered_load`",
            ));
        }
    };
    let why = format!(
        "for process = \"{}\"",
        format!("{:?}", a.process).to_lowercase()
    );
    let process = match a.process {
        ProcessFile::Poisson => {
            for (k, v) in [
                ("burst_ratio", a.burst_ratio),
                ("mean_calm_s", a.mean_calm_s),
                ("mean_burst_s", a.mean_burst_s),
                ("amplitude", a.amplitude),
                ("period_s", a.period_s),
            ] {
                c.unused(&format!("workload.arrivals.{k}"), &v, &why)?;
            }
            ArrivalProcess::Poisson { rate_per_s: rate }
        }
        ProcessFile::Mmpp => {
            for (k, v) in [("amplitude", a.amplitude), ("period_s", a.period_s)] {
                c.unused(&format!("workload.arrivals.{k}"), &v, &why)?;
            }
            let burst_ratio = c.positive(
                "workload.arrivals.burst_ratio",
                c.required("workload.arrivals.burst_ratio", a.burst_ratio, &why)?,
            )?;
            ArrivalProcess::Mmpp {
                mean_rate_per_s: rate,
                burst_ratio,
                mean_calm_s: c.positive(
                    "workload.arrivals.mean_calm_s",
                    c.required("workload.arrivals.mean_calm_s", a.mean_calm_s, &why)?,
                )?,
                mean_burst_s: c.positive(
                    "workload.arrivals.mean_burst_s",
                    c.required("workload.arrivals.mean_burst_s", a.mean_burst_s, &why)?,
                )?,
            }
        }
        ProcessFile::Diurnal => {
            for (k, v) in [
                ("burst_ratio", a.burst_ratio),
                ("mean_calm_s", a.mean_calm_s),
                ("mean_burst_s", a.mean_burst_s),
            ] {
                c.unused(&format!("workload.arrivals.{k}"), &v, &why)?;
            }
            let amplitude = c.non_negative(
                "workload.arrivals.amplitude",
                c.required("workload.arrivals.amplitude", a.amplitude, &why)?,
            )?;
            if amplitude > 1.0 {
                return Err(c.err("workload.arrivals.amplitude", "must be in [0, 1]"));
            }
            ArrivalProcess::Diurnal {
                mean_rate_per_s: rate,
                amplitude,
                period_s: c.positive(
                    "workload.arrivals.period_s",
                    c.required("workload.arrivals.period_s", a.period_s, &why)?,
                )?,
            }
        }
    };
    Ok((process, load))
}

fn resolve_duration(
    d: &DurationFile,
    key: &str,
    c: &Check<'_>,
) -> Result<DurationDist, ScenarioError> {
    let k = |name: &str| format!("{key}.{name}");
    let why = format!("for dist = \"{}\"", format!("{:?}", d.dist).to_lowercase());
    let need = |name: &str, v: Option<f64>| c.required(&k(name), v, &why);
    let allowed: &[&str] = match d.dist {
        DistFile::Fixed => &["value_s"],
        DistFile::Uniform => &["min_s", "max_s"],
        DistFile::Exponential => &["mean_s", "min_s"],
        DistFile::Lognormal => &["mean_s", "sigma"],
    };
    for (name, v) in [
        ("value_s", d.value_s),
        ("min_s", d.min_s),
        ("max_s", d.max_s),
        ("mean_s", d.mean_s),
        ("sigma", d.sigma),
    ] {
        if !allowed.contains(&name) {
            c.unused(&k(name), &v, &why)?;
        }
    }
    Ok(match d.dist {
        DistFile::Fixed => DurationDist::Fixed {
            value_s: c.positive(&k("value_s"), need("value_s", d.value_s)?)?,
        },
        DistFile::Uniform => {
            let min_s = c.positive(&k("min_s"), need("min_s", d.min_s)?)?;
            let max_s = c.positive(&k("max_s"), need("max_s", d.max_s)?)?;
            if max_s < min_s {
                return Err(c.err(
                    &k("max_s"),
                    format!("must be >= min_s ({min_s}), got {max_s}"),
                ));
            }
            DurationDist::Uniform { min_s, max_s }
        }
        DistFile::Exponential => DurationDist::Exponential {
            min_s: c.non_negative(&k("min_s"), d.min_s.unwrap_or(0.0))?,
            mean_s: c.positive(&k("mean_s"), need("mean_s", d.mean_s)?)?,
        },
        DistFile::Lognormal => DurationDist::LogNormal {
            mean_s: c.positive(&k("mean_s"), need("mean_s", d.mean_s)?)?,
            sigma: c.positive(&k("sigma"), need("sigma", d.sigma)?)?,
        },
    })
}
