//! Scenario files: `configs/scenarios/<name>.toml` → a validated, resolved config → an env.
//!
//! Parsing is strict (`deny_unknown_fields`), and all checks happen in one resolution step
//! whose errors name the file, the key and the reason. [`Scenario::from_toml_str`] is pure;
//! [`load_file`] and [`load_named`] are the thin IO around it (plus the CSV a workload may
//! name, read relative to the scenario file).
//!
//! Files: `file.rs` (the TOML as serde structs), `validate.rs` (errors and shared checks),
//! `cluster.rs` and `deeprm.rs` (one resolver per model), `workload.rs` (the `[workload]`
//! table), `trace.rs` (trace workloads and the replay keys of every replayed kind), `env.rs`
//! (the runtime [`ScenarioEnv`]), `held_out.rs` (the warning that test episodes are not held
//! out).
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
//! hold_limit_s = 600                   # optional: wait is illegal while a task that fits has
//!                                      # waited this long (0: work-conserving; absent: no limit)
//! slot_order = "fifo"                  # optional: which backlog task fills a freed slot:
//!                                      # "fifo" (arrival order) | "shortest" (by estimate)
//!                                      # | "mixed" (odd slots shortest, even slots oldest)
//! [time]                               # optional
//! mode = "event"                       # "event" | "stepped"
//! step_s = 1.0                         # stepped wait; wait with no future event
//! max_time_s = 1e6                     # truncation
//! max_decisions = 100000               # truncation
//! [actions]                            # optional
//! mode = "placement"                   # "placement" | "slot"
//! placement_rule = "first_fit"         # slot mode: "first_fit" | "best_fit" | "fastest_fit"
//! illegal = "error"                    # "error" | "wait"
//! discipline = "greedy"                # slot mode: "greedy" (a choice starts now) |
//!                                      # "strict" | "easy" | "conservative" (a choice is
//!                                      # the next task to start: see cluster::Discipline)
//! [reward]                             # optional; weights of RewardWeights
//! slowdown = 1.0
//! bounded_slowdown = 0.0               # Σ (finish − arrival) / max(duration, 10 s)
//! wait = 0.0
//! deadline_miss = 0.0
//! dropped = 0.0
//! [observation]                        # optional
//! time_scale_s = 10.0                  # default: mean task duration of the workload
//! extended = false                     # optional: per task 1/estimate, slowdown so far, work;
//!                                      # per server remaining work (see `ClusterEnv`)
//! forecast = { window_s = 600.0, period_s = 86400.0 }  # optional, both keys too: arrival
//!                                      # rates of the last window, the last 10 windows and the
//!                                      # window after this moment one period ago
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
//! `max_demand` (see [`DeepRmGenerator`](crate::workload::DeepRmGenerator)). DeepRM scenarios take the same
//! optional `slot_order`, and a hold limit as a top-level `hold_limit` in steps (`configs/scenarios/deeprm-hold.toml`);
//! they are shown in
//! `configs/scenarios/deeprm.toml`.
//!
//! Trace workloads (see [`crate::trace`] for each format's mapping):
//!
//! ```toml
//! [workload]
//! kind = "swf"              # "swf" (path) | "alibaba" (path = pods, nodes) | "tiresias" (path, cluster)
//! path = "../../../shared/data/swf/lublin_256_new2.swf"   # relative to the scenario file
//! window_jobs = 1024        # optional: a window of this many tasks at a seeded offset
//! # window_s = 86400.0      # or (not both): the tasks of a seeded span of this many seconds
//! # window_offsets = [1981, 2756]   # or: fixed windows, the seed's (mod count)
//! # window_sampler = { kind = "rlscheduler", seed = 1 }   # or: RLScheduler's test windows
//! # exclude_windows = { kind = "rlscheduler", seed = 1, episodes = 10 }   # never overlapped
//! times = "shifted"         # optional: "shifted" (window starts at 0) | "absolute"
//! load_factor = 1.0         # optional: inter-arrival times divided by this
//! lenient = false           # optional: skip and count malformed lines instead of failing
//! split = { by = "time", test_fraction = 0.2 }   # optional: "time" | "window"
//! part = "train"            # optional, with split: "train" (default) | "test"
//! perturb = { load_noise = 0.3, arrival_jitter_s = 30.0, estimate_noise = 0.1 }   # optional, off by default
//! # perturb = { estimates = { model = "tsafrir", max_s = 86400.0, p_max = 0.2 } }
//! ```
//!
//! Every replayed kind (`swf`, `alibaba`, `tiresias`, `csv`, `list`) takes the same replay
//! keys `window_jobs` (or `window_s`), `window_offsets` or `window_sampler`,
//! `exclude_windows`, `times`, `load_factor`, `split`, `part` and `perturb` (see
//! [`crate::trace::Trace`] for their exact meaning); a `csv` or `list` workload without any
//! of them replays its tasks exactly, at their own times, in every episode.
//!
//! With a trace, `resources` and `server_types` may be left out: they come from the trace
//! (SWF header `MaxNodes`/`MaxProcs`; the Alibaba node list; the Tiresias cluster shape).
//! Cluster options for GPU sharing, failures, energy and reservations (all optional):
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

mod cluster;
mod deeprm;
mod env;
mod file;
mod held_out;
mod replay;
mod trace;
mod validate;
mod workload;

pub use env::ScenarioEnv;
pub use held_out::EpisodeUse;
pub use validate::{ScenarioError, limits};

use crate::cluster::{ClusterConfig, ClusterEnv};
use crate::deeprm::{DeepRmConfig, DeepRmEnv};
use cluster::resolve_cluster;
use deeprm::resolve_deeprm;
use file::{ClusterFile, DeepRmFile, ModelProbe};
use std::path::{Path, PathBuf};
use validate::invalid;

macro_rules! shipped {
    ($($name:literal),* $(,)?) => {
        /// The scenarios shipped in `configs/scenarios/`.
        pub const SHIPPED: &[&str] = &[$($name),*];

        /// Each shipped scenario's file, compiled in, by name: for front ends that run
        /// without a checkout (the Python package). Its relative paths (traces, CSV task
        /// lists) still resolve against a folder the caller names.
        pub const SHIPPED_FILES: &[(&str, &str)] = &[$((
            $name,
            include_str!(concat!("../../../configs/scenarios/", $name, ".toml")),
        )),*];
    };
}

shipped!(
    "tiny",
    "deeprm",
    "deeprm-hold",
    "cloud",
    "cloud-hold",
    "cloud-slot",
    "cloud-sorted",
    "cloud-inference",
    "cloud-ops",
    "cloud-easy",
    "hpc-lublin",
    "lublin-1",
    "lublin-2",
    "lublin-1-train",
    "lublin-2-train",
    "lublin-2-train-1024",
    "lublin-2-modelsel",
    "alibaba-gpu",
    "tiresias",
    "csv-example",
);

/// A resolved scenario, ready to build envs from.
// Resolved once per run and never stored in bulk: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
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

    /// The seed the env starts from (before any `reset(Some(seed))`).
    pub fn seed(&self) -> u64 {
        match self {
            Self::Cluster(c) => c.seed,
            Self::DeepRm(c) => c.seed,
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

    /// The files this scenario was resolved from, in a fixed order: the scenario file when
    /// it was loaded from one ([`load_file`], [`load_named`]; not [`Self::from_toml_str`]),
    /// then every data file it names (CSV task list or trace, then the Alibaba node list or
    /// the Tiresias cluster file), each joined onto the scenario file's folder as the loader
    /// opened it (not canonicalized). A resumed run compares their contents with what it was
    /// trained on.
    pub fn source_files(&self) -> Vec<PathBuf> {
        match self {
            Self::Cluster(c) => c.source_files.clone(),
            Self::DeepRm(c) => c.source_files.clone(),
        }
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
    let mut scenario = Scenario::from_toml_str(&text, path)?;
    let files = match &mut scenario {
        Scenario::Cluster(c) => &mut c.source_files,
        Scenario::DeepRm(c) => &mut c.source_files,
    };
    files.insert(0, path.to_owned());
    Ok(scenario)
}

/// Loads `configs/scenarios/<name>.toml`.
pub fn load_named(name: &str) -> Result<Scenario, ScenarioError> {
    load_file(&scenarios_dir().join(format!("{name}.toml")))
}
