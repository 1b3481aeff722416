//! The resolved, validated form of a cluster scenario: [`ClusterConfig`] and the types it is
//! made of (server types, GPUs, failures, power, reservations, modes and policies).

use super::reward::RewardWeights;
pub use super::state::SlotOrder;
use crate::workload::{MAX_RESOURCES, TaskSource};
use std::path::PathBuf;
use std::sync::Arc;

/// How the clock moves when the agent waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeMode {
    /// Wait jumps to the next event (arrival or completion); when no placement is feasible
    /// the env keeps jumping by itself, so every decision the agent sees has a real choice.
    EventDriven,
    /// Wait advances the clock by `step_s`; every step is shown to the agent.
    Stepped,
}

/// What an action index names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionMode {
    /// `Discrete(num_slots × num_servers + 1)`: `slot × num_servers + server`, last = wait.
    Placement,
    /// `Discrete(num_slots + 1)`: the slot; the server is chosen by the [`PlacementRule`].
    Slot,
}

/// What choosing a queued task means: start it now, or commit to it as the next task to
/// start (batch scheduling: Feitelson & Weil, IPPS'98; Mu'alem & Feitelson, TPDS 2001).
///
/// Under the three commit disciplines the agent's choice is a promise that the task starts
/// before any other task chosen later; the env then runs the clock itself until the task
/// starts (the step returns only then), starting other tasks meanwhile only as the
/// discipline allows. Backfilling reads the whole queue (visible slots and backlog) in
/// arrival order and decides on runtime *estimates*, never true durations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Discipline {
    /// The chosen task starts now; only tasks that fit now may be chosen (lepton's
    /// default, and DeepRM's).
    #[default]
    Greedy,
    /// The chosen task waits until it fits; nothing else starts meanwhile.
    Strict,
    /// EASY backfilling (Lifka, 1995): the chosen task holds a reservation at its shadow
    /// time (when enough running tasks will have ended, by their estimates, for it to fit);
    /// while it waits, a later task that fits now may start if it would end, by its estimate,
    /// strictly before the shadow time or runs on another server than the reserved one.
    /// (RLScheduler's variant, Zhang et al., SC'20: no "extra nodes" rule.)
    Easy,
    /// Conservative backfilling: the chosen task, then every other queued task in arrival
    /// order, gets the earliest reservation that fits in the estimated availability profile
    /// for its whole estimated run without moving an earlier reservation; a task whose
    /// reservation is now starts now.
    Conservative,
}

impl Discipline {
    /// Every discipline in the order of the docs, with its name in scenario files and
    /// scheduler names (`sjf+easy`).
    pub const ALL: [(Discipline, &'static str); 4] = [
        (Discipline::Greedy, "greedy"),
        (Discipline::Strict, "strict"),
        (Discipline::Easy, "easy"),
        (Discipline::Conservative, "conservative"),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(d, _)| *d == self)
            .map_or("greedy", |(_, n)| n)
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(d, _)| *d)
    }

    /// True for the disciplines under which a chosen task may wait for room.
    pub fn commits(self) -> bool {
        self != Discipline::Greedy
    }
}

/// How slot mode picks the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlacementRule {
    /// The lowest-index server where the task fits now.
    FirstFit,
    /// The server where the task fits now leaving the least free capacity (sum over
    /// resources of the leftover fraction of capacity); ties go to the lowest index.
    BestFit,
    /// The lowest-index server where the task fits now among those of the fastest server
    /// types (`speed`) that have one.
    FastestFit,
}

/// What an illegal (masked-out) placement does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IllegalAction {
    /// `step` returns [`EnvError::Illegal`](crate::api::EnvError::Illegal) and the state is unchanged.
    Error,
    /// The action is treated as wait (DeepRM's convention).
    Wait,
}

/// What to do with a task that does not fit on any server even when it is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OversizePolicy {
    /// The scenario is rejected at load, naming the task (or class).
    Reject,
    /// The task is dropped at arrival and counted in `num_dropped`.
    Drop,
}

/// A group of identical servers.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerType {
    pub name: String,
    pub count: usize,
    /// Integer units per resource (padded with zeros to [`MAX_RESOURCES`]).
    pub capacity: [u32; MAX_RESOURCES],
    /// Runtime on this type = work / speed.
    pub speed: f64,
    /// Index of its GPUs' model in [`GpuConfig::models`] (tasks may restrict models).
    pub gpu_model: Option<usize>,
    /// Random failures and repairs; `None`: never fails.
    pub failure: Option<FailureModel>,
    /// Power draw; `None`: not counted in the energy.
    pub power: Option<PowerModel>,
}

/// Per-GPU tracking: GPU capacity is resource `resource`, `units_per_gpu` units per whole
/// GPU (e.g. 1000 for milli-GPUs). A demand below one GPU is a *share of one GPU* (it must
/// fit in the free units of a single GPU); a larger demand is a number of *whole* GPUs
/// (multiples of `units_per_gpu`, each entirely free). Placement gives a share the GPU
/// with the least room that holds it, and whole GPUs the lowest-numbered free ones.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuConfig {
    pub resource: usize,
    pub units_per_gpu: u32,
    /// GPU model names; a task's [`TaskSpec::gpu_models`](crate::workload::TaskSpec::gpu_models) bit `m` allows `models[m]`.
    pub models: Vec<String>,
}

/// Exponential time to failure and time to repair of each server of a type (seeded from
/// the episode's seed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FailureModel {
    pub mttf_s: f64,
    pub mttr_s: f64,
}

/// Observable server health before failures (`[failures] health`; see `failures.rs` for the
/// generative model). A failure is *announced* with probability `announced`: over the
/// `lead_s` seconds before it the server's degradation rises linearly from 0 to 1. Every
/// `sample_s` seconds each up server's reading also gets a fresh noise term, exponential with
/// mean `noise`. The reading is min(1, degradation + noise), and 0 while the server is down.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthModel {
    pub lead_s: f64,
    pub announced: f64,
    pub noise: f64,
    pub sample_s: f64,
}

/// Power draw of a server that is up and powered on: `idle_w + (peak_w − idle_w) × u`, with
/// `u` the utilisation of its dominant resource (the largest used / capacity). Failed and
/// powered-down servers draw nothing; a booting server draws like a running one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PowerModel {
    pub idle_w: f64,
    pub peak_w: f64,
}

/// What happens to the tasks running on a server that fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillPolicy {
    /// Back into the queue (lowest empty slot, else the backlog tail, else dropped), to
    /// restart from scratch (from its last checkpoint with `[preemption] checkpoint_s`); the
    /// work since is lost.
    Requeue,
    /// Dropped and counted in `num_dropped`.
    Drop,
}

/// Preemption and migration (`[preemption]`; off without it): the running-task rows the
/// policy sees, the actions on them, and what stopping or moving a task costs.
///
/// A running task saves its work every `checkpoint_s` seconds of running (never when
/// infinite). Stopped by a preemption or killed by a failure, it keeps the work of its last
/// checkpoint and loses the rest; when it starts again it spends `restart_s` reading its
/// checkpoint before it works. A migration moves it to another server with all its work: it
/// pauses for `migration_s`, plus `gpu_migration_s` when it holds GPUs (their memory moves
/// too), and holds the destination's resources from the moment it moves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preemption {
    /// Running tasks shown to the policy (the most recently started first) and acted on.
    pub running_rows: usize,
    /// A preempt action per running row (stop the task, requeue it).
    pub preempt: bool,
    /// A migrate action per (running row, server).
    pub migrate: bool,
    pub checkpoint_s: f64,
    pub restart_s: f64,
    pub migration_s: f64,
    pub gpu_migration_s: f64,
    /// A monitoring interval: with `Some(s)` the scheduler also decides every `s` seconds
    /// (a tick event), so it can act on readings that change between arrivals and
    /// completions (a server's health); `None`: only at events.
    pub decide_every_s: Option<f64>,
}

impl Preemption {
    /// Work kept (speed-1 seconds) when a task that has worked `run_s` seconds on a server of
    /// `speed` stops: the work of its last checkpoint.
    pub fn checkpointed_work(&self, run_s: f64, speed: f64) -> f64 {
        if self.checkpoint_s.is_finite() && run_s > 0.0 {
            (run_s / self.checkpoint_s).floor() * self.checkpoint_s * speed
        } else {
            0.0
        }
    }

    /// Actions the running rows add: preempt per row, then migrate per (row, server).
    pub fn num_actions(&self, num_servers: usize) -> Option<usize> {
        let preempt = if self.preempt { self.running_rows } else { 0 };
        let migrate = if self.migrate {
            self.running_rows.checked_mul(num_servers)?
        } else {
            0
        };
        preempt.checked_add(migrate)
    }
}

/// Capacity reserved for critical work: on every server type, the last
/// `round(fraction × count)` servers (after those of higher classes) accept only tasks of
/// priority `>= priority`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reservation {
    pub priority: u8,
    pub fraction: f64,
}

/// How servers appear in the observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerObs {
    /// One row per server (see [`ClusterEnv`](super::ClusterEnv)).
    PerServer,
    /// One row per server type, aggregated, for large clusters (see [`ClusterEnv`](super::ClusterEnv)).
    PerType,
}

/// The windows of the arrival-rate forecast (see [`ClusterEnv::arrival_forecast`](super::ClusterEnv::arrival_forecast)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Forecast {
    /// The recent window: rates over the last `window_s` and the last `10 × window_s`.
    pub window_s: f64,
    /// The seasonal period (a day for diurnal load): the rate over the `window_s` that
    /// followed this moment one period ago.
    pub period_s: f64,
}

/// A resolved, validated cluster scenario.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub resources: Vec<String>,
    pub server_types: Vec<ServerType>,
    pub num_slots: usize,
    pub backlog_cap: usize,
    /// How long a task that fits may be held back: with `Some(h)`, waiting is illegal while a
    /// visible task that fits some server now has waited `h` seconds or more (`Some(0.0)`:
    /// work-conserving), under every discipline. `None`: waiting is legal (under a commit
    /// discipline, while some task runs or none is queued).
    pub hold_limit_s: Option<f64>,
    /// Which backlog task fills a freed slot.
    pub slot_order: SlotOrder,
    pub time_mode: TimeMode,
    /// Clock advance of a wait in stepped mode, and of a wait with no future event.
    pub step_s: f64,
    /// Truncation: the episode is cut off when the clock reaches this time.
    pub max_time_s: f64,
    /// Truncation: the episode is cut off after this many steps.
    pub max_decisions: u64,
    pub action_mode: ActionMode,
    pub placement_rule: PlacementRule,
    /// What choosing a task means (greedy: start now; or a commitment, see [`Discipline`]).
    pub discipline: Discipline,
    pub illegal_action: IllegalAction,
    pub oversize: OversizePolicy,
    pub reward: RewardWeights,
    /// Time normaliser of the observation (about a typical task duration).
    pub time_scale_s: f64,
    /// Largest priority class in the workload (normalises the priority feature).
    pub max_priority: u8,
    /// Seed of the workload stream until `reset(Some(seed))` replaces it.
    pub seed: u64,
    pub workload: Arc<dyn TaskSource>,
    /// Per-GPU tracking (GPU sharing and GPU models); `None`: GPUs are plain units.
    pub gpu: Option<GpuConfig>,
    /// What a server failure does to its tasks.
    pub on_kill: KillPolicy,
    /// A server idle this long powers down (types with a power model); `None`: never.
    pub idle_timeout_s: Option<f64>,
    /// Delay before a powered-down server that receives a task can run it.
    pub boot_s: f64,
    /// Capacity reserved per priority class.
    pub reservations: Vec<Reservation>,
    pub server_obs: ServerObs,
    /// Extra observation features (see the env's docs): per slot 1/estimate, slowdown so far
    /// and estimated work; per server (per-server rows only) its running tasks' remaining
    /// estimated work.
    pub extended_features: bool,
    /// Arrival-rate forecast features in the global block (`[observation] forecast`).
    pub forecast: Option<Forecast>,
    /// Observable server health ahead of failures (`[failures] health`).
    pub health: Option<HealthModel>,
    /// Running-task rows, preempt and migrate actions, checkpoint-restart (`[preemption]`).
    pub preemption: Option<Preemption>,
    /// The files this config was resolved from: the scenario file (when loaded from one),
    /// then the data files it names; empty for a config built in code. The env never reads
    /// them.
    pub source_files: Vec<PathBuf>,
}

impl ClusterConfig {
    /// Servers over all types (`None` if the counts overflow: a scenario the loader refuses).
    pub fn num_servers(&self) -> Option<usize> {
        self.server_types
            .iter()
            .try_fold(0usize, |n, t| n.checked_add(t.count))
    }

    /// Actions of an env of this config: slots × servers (placement) or slots, then the
    /// running rows' preempt and migrate actions, plus wait (`None` on overflow).
    pub fn num_actions(&self) -> Option<usize> {
        let num_servers = self.num_servers()?;
        let choices = match self.action_mode {
            ActionMode::Placement => self.num_slots.checked_mul(num_servers)?,
            ActionMode::Slot => self.num_slots,
        };
        let running = match &self.preemption {
            Some(p) => p.num_actions(num_servers)?,
            None => 0,
        };
        choices.checked_add(running)?.checked_add(1)
    }

    /// A config with defaults for everything but the cluster and the workload: 10 slots, a
    /// backlog of 100, event-driven time with no practical limit, placement actions that
    /// error when illegal, oversize tasks dropped, DeepRM's reward, time scale 1 s, seed 0.
    /// Handy for tests and for building scenarios in code; `server_types` capacities are
    /// padded with zeros past `resources.len()`.
    pub fn new(
        resources: Vec<String>,
        server_types: Vec<ServerType>,
        workload: Arc<dyn TaskSource>,
    ) -> Self {
        Self {
            resources,
            server_types,
            num_slots: 10,
            backlog_cap: 100,
            hold_limit_s: None,
            slot_order: SlotOrder::Fifo,
            time_mode: TimeMode::EventDriven,
            step_s: 1.0,
            max_time_s: 1e12,
            max_decisions: u64::MAX,
            action_mode: ActionMode::Placement,
            placement_rule: PlacementRule::FirstFit,
            discipline: Discipline::Greedy,
            illegal_action: IllegalAction::Error,
            oversize: OversizePolicy::Drop,
            reward: RewardWeights::default(),
            time_scale_s: 1.0,
            max_priority: 0,
            seed: 0,
            workload,
            gpu: None,
            on_kill: KillPolicy::Requeue,
            idle_timeout_s: None,
            boot_s: 0.0,
            reservations: Vec::new(),
            server_obs: ServerObs::PerServer,
            extended_features: false,
            forecast: None,
            health: None,
            preemption: None,
            source_files: Vec::new(),
        }
    }
}

impl ServerType {
    pub fn new(name: &str, count: usize, capacity: &[u32], speed: f64) -> Self {
        let mut padded = [0; MAX_RESOURCES];
        padded[..capacity.len()].copy_from_slice(capacity);
        Self {
            name: name.to_owned(),
            count,
            capacity: padded,
            speed,
            gpu_model: None,
            failure: None,
            power: None,
        }
    }
}
