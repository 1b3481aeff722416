//! The scenario file as written: serde structs that mirror the TOML, with unknown keys
//! rejected. Nothing here checks values: the resolvers do, with the helpers of `validate.rs`.

use serde::Deserialize;

#[derive(Deserialize)]
pub(super) struct ModelProbe {
    pub(super) model: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClusterFile {
    #[allow(dead_code)]
    pub(super) model: Option<String>,
    pub(super) name: String,
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) seed: u64,
    /// Optional for trace workloads that bring their own (SWF, Alibaba, Tiresias).
    #[serde(default)]
    pub(super) resources: Vec<String>,
    /// Optional for trace workloads that describe their cluster.
    #[serde(default)]
    pub(super) server_types: Vec<ServerTypeFile>,
    pub(super) queue: QueueFile,
    pub(super) gpu: Option<GpuFile>,
    pub(super) failures: Option<FailuresFile>,
    pub(super) power: Option<PowerFile>,
    #[serde(default)]
    pub(super) reservations: Vec<ReservationFile>,
    #[serde(default)]
    pub(super) time: TimeFile,
    #[serde(default)]
    pub(super) actions: ActionsFile,
    #[serde(default)]
    pub(super) reward: RewardFile,
    #[serde(default)]
    pub(super) observation: ObservationFile,
    pub(super) preemption: Option<PreemptionFile>,
    pub(super) workload: WorkloadFile,
}

/// `[preemption]`: running-task rows, preempt/migrate actions and checkpoint-restart.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PreemptionFile {
    pub(super) actions: Option<Vec<String>>,
    pub(super) running_rows: Option<usize>,
    pub(super) checkpoint_s: Option<f64>,
    pub(super) restart_s: Option<f64>,
    pub(super) migration_s: Option<f64>,
    pub(super) gpu_migration_s: Option<f64>,
    pub(super) decide_every_s: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerTypeFile {
    pub(super) name: String,
    pub(super) count: usize,
    pub(super) capacity: Vec<u32>,
    #[serde(default = "one")]
    pub(super) speed: f64,
    pub(super) gpu_model: Option<String>,
    pub(super) failure: Option<FailureModelFile>,
    pub(super) power: Option<PowerModelFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GpuFile {
    pub(super) resource: String,
    pub(super) units_per_gpu: u32,
    #[serde(default)]
    pub(super) models: Vec<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(super) struct FailureModelFile {
    pub(super) mttf_s: f64,
    pub(super) mttr_s: f64,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(super) struct PowerModelFile {
    pub(super) idle_w: f64,
    pub(super) peak_w: f64,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum KillFile {
    #[default]
    Requeue,
    Drop,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FailuresFile {
    pub(super) mttf_s: Option<f64>,
    pub(super) mttr_s: Option<f64>,
    #[serde(default)]
    pub(super) on_kill: KillFile,
    pub(super) health: Option<HealthFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct HealthFile {
    pub(super) lead_s: Option<f64>,
    pub(super) announced: Option<f64>,
    pub(super) noise: Option<f64>,
    pub(super) sample_s: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PowerFile {
    pub(super) idle_w: Option<f64>,
    pub(super) peak_w: Option<f64>,
    pub(super) idle_timeout_s: Option<f64>,
    #[serde(default)]
    pub(super) boot_s: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReservationFile {
    pub(super) priority: u8,
    pub(super) fraction: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QueueFile {
    pub(super) num_slots: usize,
    pub(super) backlog_cap: usize,
    /// Seconds a task that fits may be held back before waiting becomes illegal (absent: no
    /// limit; 0: work-conserving).
    pub(super) hold_limit_s: Option<f64>,
    #[serde(default)]
    pub(super) slot_order: SlotOrderFile,
}

/// `slot_order`: which backlog task fills a freed slot.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum SlotOrderFile {
    #[default]
    Fifo,
    Shortest,
    Mixed,
}

impl From<SlotOrderFile> for crate::cluster::SlotOrder {
    fn from(f: SlotOrderFile) -> Self {
        match f {
            SlotOrderFile::Fifo => Self::Fifo,
            SlotOrderFile::Shortest => Self::Shortest,
            SlotOrderFile::Mixed => Self::Mixed,
        }
    }
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum TimeModeFile {
    #[default]
    Event,
    Stepped,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TimeFile {
    #[serde(default)]
    pub(super) mode: TimeModeFile,
    #[serde(default = "one")]
    pub(super) step_s: f64,
    #[serde(default = "default_max_time_s")]
    pub(super) max_time_s: f64,
    #[serde(default = "default_max_decisions")]
    pub(super) max_decisions: u64,
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
pub(super) enum ActionModeFile {
    #[default]
    Placement,
    Slot,
}

// The variants spell the file's values (`first_fit`, `best_fit`, `fastest_fit`).
#[allow(clippy::enum_variant_names)]
#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum PlacementRuleFile {
    #[default]
    FirstFit,
    BestFit,
    FastestFit,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum IllegalFile {
    #[default]
    Error,
    Wait,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ActionsFile {
    #[serde(default)]
    pub(super) mode: ActionModeFile,
    #[serde(default)]
    pub(super) placement_rule: PlacementRuleFile,
    #[serde(default)]
    pub(super) illegal: IllegalFile,
    /// `greedy` (default), `strict`, `easy` or `conservative`: see `cluster::Discipline`.
    #[serde(default)]
    pub(super) discipline: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RewardFile {
    #[serde(default = "one")]
    pub(super) slowdown: f64,
    #[serde(default)]
    pub(super) bounded_slowdown: f64,
    #[serde(default)]
    pub(super) wait: f64,
    #[serde(default)]
    pub(super) deadline_miss: f64,
    #[serde(default)]
    pub(super) dropped: f64,
    #[serde(default)]
    pub(super) energy_kwh: f64,
}

impl Default for RewardFile {
    fn default() -> Self {
        Self {
            slowdown: 1.0,
            bounded_slowdown: 0.0,
            wait: 0.0,
            deadline_miss: 0.0,
            dropped: 0.0,
            energy_kwh: 0.0,
        }
    }
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum ServerObsFile {
    #[default]
    PerServer,
    PerType,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ObservationFile {
    pub(super) time_scale_s: Option<f64>,
    #[serde(default)]
    pub(super) servers: ServerObsFile,
    #[serde(default)]
    pub(super) extended: bool,
    pub(super) forecast: Option<ForecastFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ForecastFile {
    pub(super) window_s: Option<f64>,
    pub(super) period_s: Option<f64>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub(super) enum WorkloadKind {
    Synthetic,
    List,
    Csv,
    Deeprm,
    Swf,
    Alibaba,
    Tiresias,
}

impl WorkloadKind {
    /// True for the kinds that replay a trace file.
    pub(super) fn is_trace(self) -> bool {
        match self {
            Self::Swf | Self::Alibaba | Self::Tiresias => true,
            Self::Synthetic | Self::List | Self::Csv | Self::Deeprm => false,
        }
    }

    /// Kinds that replay a fixed task sequence (and so take windows, a split, perturbation).
    pub(super) fn is_replay(self) -> bool {
        self.is_trace() || matches!(self, Self::List | Self::Csv)
    }
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum OversizeFile {
    #[default]
    Reject,
    Drop,
}

/// One table for every workload kind; resolution checks that the keys match the kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WorkloadFile {
    pub(super) kind: WorkloadKind,
    #[serde(default)]
    pub(super) oversize: OversizeFile,
    pub(super) num_tasks: Option<usize>,
    pub(super) arrivals: Option<ArrivalsFile>,
    pub(super) classes: Option<Vec<ClassFile>>,
    pub(super) tasks: Option<Vec<TaskFile>>,
    pub(super) path: Option<String>,
    /// Alibaba: the node list.
    pub(super) nodes: Option<String>,
    /// Tiresias: the cluster shape.
    pub(super) cluster: Option<String>,
    pub(super) window_jobs: Option<usize>,
    pub(super) window_s: Option<f64>,
    pub(super) load_factor: Option<f64>,
    pub(super) split: Option<SplitFile>,
    pub(super) part: Option<PartFile>,
    pub(super) perturb: Option<PerturbFile>,
    pub(super) window_offsets: Option<Vec<usize>>,
    pub(super) window_sampler: Option<SamplerFile>,
    pub(super) exclude_windows: Option<ExcludeFile>,
    pub(super) times: Option<TimesFile>,
    pub(super) lenient: Option<bool>,
    pub(super) arrival_prob: Option<f64>,
    pub(super) num_steps: Option<u32>,
    pub(super) max_demand: Option<u32>,
}

/// `split = { by = "time" | "window", test_fraction = 0.2 }` of a replayed workload.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SplitFile {
    pub(super) by: SplitByFile,
    pub(super) test_fraction: f64,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum SplitByFile {
    Time,
    Window,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum PartFile {
    Train,
    Test,
}

/// `perturb = { load_noise = 0.3, arrival_jitter_s = 30.0, estimate_noise = 0.1 }`; a missing
/// field is 0.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PerturbFile {
    #[serde(default)]
    pub(super) load_noise: f64,
    #[serde(default)]
    pub(super) arrival_jitter_s: f64,
    #[serde(default)]
    pub(super) estimate_noise: f64,
    pub(super) estimates: Option<EstimatesFile>,
}

/// `estimates = { model = "tsafrir", max_s = 86400.0, p_max = 0.2 }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EstimatesFile {
    pub(super) model: EstimateModelFile,
    pub(super) max_s: f64,
    pub(super) p_max: f64,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum EstimateModelFile {
    Tsafrir,
}

/// `window_sampler = { kind = "rlscheduler", seed = 1 }` (optional `episodes`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SamplerFile {
    pub(super) kind: SamplerKindFile,
    pub(super) seed: u64,
    pub(super) episodes: Option<usize>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum SamplerKindFile {
    Rlscheduler,
}

/// `exclude_windows = { offsets = [...] }` or `{ kind = "rlscheduler", seed = 1, episodes =
/// 10 }`, with an optional `jobs` (tasks per excluded window).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExcludeFile {
    pub(super) offsets: Option<Vec<usize>>,
    pub(super) kind: Option<SamplerKindFile>,
    pub(super) seed: Option<u64>,
    pub(super) episodes: Option<usize>,
    pub(super) jobs: Option<usize>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum TimesFile {
    Shifted,
    Absolute,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub(super) enum ProcessFile {
    Poisson,
    Mmpp,
    Diurnal,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ArrivalsFile {
    pub(super) process: ProcessFile,
    pub(super) rate_per_s: Option<f64>,
    pub(super) offered_load: Option<f64>,
    pub(super) burst_ratio: Option<f64>,
    pub(super) mean_calm_s: Option<f64>,
    pub(super) mean_burst_s: Option<f64>,
    pub(super) amplitude: Option<f64>,
    pub(super) period_s: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClassFile {
    pub(super) name: String,
    #[serde(default = "one")]
    pub(super) weight: f64,
    pub(super) demand: Vec<u32>,
    pub(super) duration: DurationFile,
    #[serde(default)]
    pub(super) estimate_noise: f64,
    #[serde(default)]
    pub(super) priority: u8,
    pub(super) deadline_factor: Option<f64>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub(super) enum DistFile {
    Fixed,
    Uniform,
    Exponential,
    Lognormal,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DurationFile {
    pub(super) dist: DistFile,
    pub(super) value_s: Option<f64>,
    pub(super) min_s: Option<f64>,
    pub(super) max_s: Option<f64>,
    pub(super) mean_s: Option<f64>,
    pub(super) sigma: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TaskFile {
    pub(super) id: u64,
    pub(super) arrival_s: f64,
    pub(super) duration_s: f64,
    pub(super) demand: Vec<u32>,
    pub(super) estimate_s: Option<f64>,
    #[serde(default)]
    pub(super) priority: u8,
    pub(super) deadline_s: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeepRmFile {
    #[allow(dead_code)]
    pub(super) model: String,
    #[allow(dead_code)]
    pub(super) name: String,
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) seed: u64,
    pub(super) resources: Vec<String>,
    pub(super) capacity: Vec<u32>,
    pub(super) horizon: usize,
    pub(super) num_slots: usize,
    pub(super) backlog_cap: usize,
    pub(super) max_steps: u32,
    #[serde(default = "default_max_decisions")]
    pub(super) max_decisions: u64,
    /// Steps a job that fits now may be held back before waiting becomes illegal (absent:
    /// no limit, as in DeepRM; 0: work-conserving).
    #[serde(default)]
    pub(super) hold_limit: Option<u32>,
    #[serde(default)]
    pub(super) slot_order: SlotOrderFile,
    #[serde(default)]
    pub(super) reward: RewardFile,
    pub(super) workload: WorkloadFile,
}

pub(super) fn one() -> f64 {
    1.0
}
pub(super) fn default_max_time_s() -> f64 {
    1e12
}
pub(super) fn default_max_decisions() -> u64 {
    10_000_000
}
