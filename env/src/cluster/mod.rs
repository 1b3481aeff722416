//! The cluster-scheduling environment.
//!
//! [`ClusterEnv`] simulates heterogeneous servers, a task queue with visible slots and a
//! backlog, and an event-driven (or time-stepped) clock, behind the [`Env`] trait.
//! Scenarios are usually loaded from TOML with [`crate::scenario`]; [`ClusterConfig`] is
//! the resolved, validated form.

mod index;
mod observation;
pub mod reward;
pub mod state;
pub(crate) mod stats;
#[cfg(test)]
mod tests;

pub use reward::RewardWeights;
pub use state::{EventKind, MAX_GPUS, TaskPhase};

use crate::api::{ActionBlock, ActionLayout, Env, EnvError, ObsLayout, Transition};
use crate::metrics::EpisodeMetrics;
use crate::spaces::{BoxSpace, Discrete};
use crate::workload::{MAX_RESOURCES, TaskSource, TaskSpec};
use index::{Need, ServerIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use state::{Admission, EventQueue, ServerState, TaskIndex, TaskQueue, TaskRecord};
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

/// How slot mode picks the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlacementRule {
    /// The lowest-index server where the task fits now.
    FirstFit,
    /// The server where the task fits now leaving the least free capacity (sum over
    /// resources of the leftover fraction of capacity); ties go to the lowest index.
    BestFit,
}

/// What an illegal (masked-out) placement does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IllegalAction {
    /// `step` returns [`EnvError::Illegal`] and the state is unchanged.
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
    /// GPU model names; a task's [`TaskSpec::gpu_models`] bit `m` allows `models[m]`.
    pub models: Vec<String>,
}

/// Exponential time to failure and time to repair of each server of a type (seeded from
/// the episode's seed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FailureModel {
    pub mttf_s: f64,
    pub mttr_s: f64,
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
    /// restart from scratch; the work done is lost.
    Requeue,
    /// Dropped and counted in `num_dropped`.
    Drop,
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
    /// One row per server (see [`ClusterEnv`]).
    PerServer,
    /// One row per server type, aggregated, for large clusters (see [`ClusterEnv`]).
    PerType,
}

/// A resolved, validated cluster scenario.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub resources: Vec<String>,
    pub server_types: Vec<ServerType>,
    pub num_slots: usize,
    pub backlog_cap: usize,
    pub time_mode: TimeMode,
    /// Clock advance of a wait in stepped mode, and of a wait with no future event.
    pub step_s: f64,
    /// Truncation: the episode is cut off when the clock reaches this time.
    pub max_time_s: f64,
    /// Truncation: the episode is cut off after this many steps.
    pub max_decisions: u64,
    pub action_mode: ActionMode,
    pub placement_rule: PlacementRule,
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
}

impl ClusterConfig {
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
            time_mode: TimeMode::EventDriven,
            step_s: 1.0,
            max_time_s: 1e12,
            max_decisions: u64::MAX,
            action_mode: ActionMode::Placement,
            placement_rule: PlacementRule::FirstFit,
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

/// A visible queued task, as a scheduler may see it (no true duration).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlotView<'a> {
    pub slot: usize,
    pub task_id: u64,
    pub arrival_s: f64,
    pub demand: &'a [u32],
    pub estimate_s: f64,
    pub priority: u8,
    pub deadline_s: Option<f64>,
    pub waiting_s: f64,
}

impl<'a> SlotView<'a> {
    /// What a scheduler sees of `spec` in slot `slot` at time `now_s`: everything but the
    /// true duration.
    pub(crate) fn of(slot: usize, spec: &'a TaskSpec, num_resources: usize, now_s: f64) -> Self {
        Self {
            slot,
            task_id: spec.id,
            arrival_s: spec.arrival_s,
            demand: &spec.demand[..num_resources],
            estimate_s: spec.estimate_s,
            priority: spec.priority,
            deadline_s: spec.deadline_s,
            waiting_s: now_s - spec.arrival_s,
        }
    }
}

/// A server, as a scheduler may see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServerView<'a> {
    pub index: usize,
    pub type_index: usize,
    pub speed: f64,
    pub capacity: &'a [u32],
    pub free: &'a [u32],
    pub num_running: usize,
}

/// A running task, as a scheduler may see it: its finish time is the *estimated* one
/// (`start + estimate/speed`), never the true one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunningView<'a> {
    pub task_id: u64,
    pub server: usize,
    pub demand: &'a [u32],
    pub start_s: f64,
    pub estimated_finish_s: f64,
    pub priority: u8,
}

/// Head counts of the tasks that have arrived so far (for conservation checks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub num_arrived: usize,
    pub num_queued: usize,
    pub num_running: usize,
    pub num_finished: usize,
    pub num_dropped: usize,
}

impl Census {
    /// Counts the phases of `records` from scratch (what the running totals must equal).
    pub(crate) fn recount(records: &[TaskRecord]) -> Self {
        let mut census = Self::default();
        for rec in records {
            match rec.phase {
                TaskPhase::NotArrived => continue,
                TaskPhase::Queued => census.num_queued += 1,
                TaskPhase::Running => census.num_running += 1,
                TaskPhase::Finished => census.num_finished += 1,
                TaskPhase::Dropped => census.num_dropped += 1,
            }
            census.num_arrived += 1;
        }
        census
    }
}

/// An event-driven simulator of a heterogeneous cluster with a Gymnasium-style API.
///
/// Servers have integer capacities per resource (the resource list is the scenario's) and a
/// speed; a task with work `w` runs `w / speed` on its server. Tasks arrive from the
/// scenario's [`TaskSource`], wait in a queue of `num_slots` visible slots plus a capped FIFO
/// backlog, and hold their demand on one server until they finish. The agent sees runtime
/// *estimates*; the simulator uses the true durations.
///
/// # Action Space
/// `Discrete(num_slots × num_servers + 1)` in placement mode: action `k × num_servers + n`
/// starts the task in slot `k` on server `n` now; the last action waits. In slot mode,
/// `Discrete(num_slots + 1)`: action `k` starts slot `k` on the server picked by the
/// placement rule (first-fit or best-fit); the last action waits.
/// [`Env::action_mask`] is exact: an action is legal iff the slot holds a task and the task
/// fits in the server's free capacity now. Wait is always legal. Several placements may
/// happen at the same instant: a placement never moves the clock. An illegal action returns
/// [`EnvError::Illegal`] with the state unchanged, or acts as wait when the scenario sets
/// `illegal_action = "wait"`.
///
/// Waiting in event-driven mode jumps to the next event (the next arrival or completion, or
/// `step_s` when there is none). After every step, while no placement is feasible, the env
/// keeps jumping by itself, so the agent only decides when it has a real choice. In stepped
/// mode a wait advances the clock by `step_s` and nothing is skipped.
///
/// # Observation
/// A flat `f32` vector of length `G + num_servers × S + num_slots × K` (see
/// [`Env::obs_layout`]), every element in `[0, 1]` except the deadline slack in `[−1, 1]`.
/// With `R` resources, `T` server types, `sq(x) = x / (1 + x)` and times divided by
/// `time_scale_s`:
///
/// Global block (`G = 2R + 4`):
/// - `0`: backlog length / backlog cap;
/// - `1`: sq(waiting time of the oldest backlog task);
/// - `2`: sq(mean estimated duration of backlog tasks);
/// - `3 .. 3+R`: mean demand of backlog tasks / largest server capacity, per resource;
/// - `3+R .. 3+2R`: cluster utilisation now (used / total capacity), per resource;
/// - `3+2R`: fraction of visible slots holding a task.
///
/// One row per server (`S = 2R + T + 3`):
/// - `0 .. R`: free / capacity per resource (0 where the server has none);
/// - `R .. 2R`: capacity / largest capacity of any server, per resource;
/// - `2R`: speed / fastest speed;
/// - `2R+1 .. 2R+1+T`: one-hot server type;
/// - `2R+1+T`: 1 if any task runs on it;
/// - `2R+2+T`: sq(time to its next *estimated* completion), 0 when idle or overdue.
///
/// A failed server's free-capacity features read 0.
///
/// With `server_obs = PerType` (large clusters) there is one row per server *type* instead
/// (`S = 3R + 7`): `0 .. R` mean free fraction over the type (failed servers count as 0);
/// `R .. 2R` largest free fraction of any up server; `2R .. 3R` capacity / largest
/// capacity; `3R` speed / fastest; `3R+1` fraction up; `3R+2` fraction running a task;
/// `3R+3` fraction powered down; `3R+4` count / largest type count; `3R+5` largest free
/// share of one GPU / units per GPU; `3R+6` largest number of whole free GPUs / GPUs per
/// server (both 0 without per-GPU tracking).
///
/// One row per visible slot (`K = R + 7`), all zeros when the slot is empty:
/// - `0`: 1 if the slot holds a task;
/// - `1 .. 1+R`: demand / largest server capacity, per resource;
/// - `1+R`: sq(estimated duration);
/// - `2+R`: sq(waiting time so far);
/// - `3+R`: priority / largest priority in the workload;
/// - `4+R`: 1 if the task has a deadline;
/// - `5+R`: tanh(slack), slack = (deadline − now − estimate) / time_scale_s; 0 without one;
/// - `6+R`: 1 if the task fits on some server now.
///
/// # Rewards
/// Minus the weighted costs of [`RewardWeights`], integrated over the simulated time each
/// step covers (including time the env skipped by itself). The default is DeepRM's:
/// −Σ over tasks in the system of `1/duration` per unit time, so that an episode's return is
/// −Σ slowdown, with slowdown = (finish − arrival) / work (the runtime on a speed-1 server).
/// Cost incurred during `reset` (only a drop penalty can be) is paid with the first step.
///
/// # Starting State
/// Empty servers and queue at time 0; `reset` then processes the events at time 0 and, in
/// event-driven mode, advances to the first decision (usually the first arrival).
///
/// # Episode End
/// Terminated when every task of the workload has arrived and has finished or been dropped.
/// Truncated when the clock reaches `max_time_s` or after `max_decisions` steps. The final
/// [`EpisodeMetrics`] are then available from [`Env::episode_metrics`].
///
/// # Arguments
/// See [`ClusterConfig`]; scenario files are described in [`crate::scenario`].
///
/// # State API for schedulers
/// Heuristics (and anything else that must not cheat) read the state through
/// [`now_s`](Self::now_s), [`slot`](Self::slot), [`backlog_len`](Self::backlog_len),
/// [`server`](Self::server), [`running`](Self::running), [`fits`](Self::fits),
/// [`action_index`](Self::action_index), [`slot_action_index`](Self::slot_action_index),
/// [`wait_action`](Self::wait_action) and [`chosen_server`](Self::chosen_server). They
/// expose estimates only: never the true duration of an unfinished task, never a task that
/// has not arrived.
#[derive(Clone, Debug)]
pub struct ClusterEnv {
    config: ClusterConfig,
    obs_space: BoxSpace,
    layout: ObsLayout,
    num_resources: usize,
    /// Largest capacity of any server, per resource (observation normaliser).
    max_capacity: [u32; MAX_RESOURCES],
    capacity_total: [f64; MAX_RESOURCES],
    max_speed: f64,
    rng: ChaCha8Rng,

    tasks: Vec<TaskSpec>,
    records: Vec<TaskRecord>,
    servers: Vec<ServerState>,
    events: EventQueue,
    queue: TaskQueue,
    running: Vec<TaskIndex>,

    now_s: f64,
    next_arrival: usize,
    census: Census,
    num_decisions: u64,
    /// Σ 1/duration over tasks in the system (queued or running).
    inv_duration_sum: f64,
    used: [u64; MAX_RESOURCES],
    used_integral: [f64; MAX_RESOURCES],
    /// Cost accumulated since the last step returned (negated into the reward).
    pending_cost: f64,
    terminated: bool,
    truncated: bool,
    metrics: EpisodeMetrics,
    metrics_ready: bool,
    scratch: Vec<f64>,

    // ----- Issue 6: large clusters, failures, energy, reservations -----
    index: ServerIndex,
    /// Servers `lo..hi` of each type.
    type_ranges: Vec<(usize, usize)>,
    /// Lowest reservation gate among a type's servers.
    type_min_gate: Vec<u8>,
    /// Per type: free capacity summed over its up servers, and head counts.
    type_free_sum: Vec<[u64; MAX_RESOURCES]>,
    type_num_up: Vec<u32>,
    type_num_busy: Vec<u32>,
    type_num_off: Vec<u32>,
    any_failures: bool,
    fail_rng: ChaCha8Rng,
    power_w_total: f64,
    energy_j: f64,
    num_failures: usize,
    num_killed: usize,
    lost_work_s: f64,
}

impl ClusterEnv {
    /// Builds the env and starts a first episode from `config.seed`.
    pub fn new(config: ClusterConfig) -> Self {
        let num_resources = config.resources.len();
        let mut servers = Vec::new();
        let mut max_capacity = [0u32; MAX_RESOURCES];
        let mut capacity_total = [0f64; MAX_RESOURCES];
        let mut type_ranges = Vec::new();
        for (t, ty) in config.server_types.iter().enumerate() {
            let lo = servers.len();
            for _ in 0..ty.count {
                let mut s = ServerState::new(t, ty.speed, ty.capacity);
                if let Some(g) = &config.gpu {
                    s.num_gpus = (ty.capacity[g.resource] / g.units_per_gpu.max(1))
                        .min(state::MAX_GPUS as u32) as u8;
                    s.model_bit = ty.gpu_model.map_or(0, |m| 1u32 << m);
                }
                servers.push(s);
            }
            // Reserved servers are taken from the end of the type, highest class first.
            let gates = reservation_gates(ty.count, &config.reservations);
            for (s, gate) in servers[lo..].iter_mut().zip(gates) {
                s.min_priority = gate;
            }
            type_ranges.push((lo, servers.len()));
            for r in 0..num_resources {
                max_capacity[r] = max_capacity[r].max(ty.capacity[r]);
                capacity_total[r] += ty.count as f64 * f64::from(ty.capacity[r]);
            }
        }
        let max_speed = config
            .server_types
            .iter()
            .map(|t| t.speed)
            .fold(0.0, f64::max);
        let layout = observation::layout(
            num_resources,
            config.server_types.len(),
            servers.len(),
            config.num_slots,
            config.server_obs,
        );
        let obs_space = observation::space(&layout, num_resources);
        let num_types = config.server_types.len();
        let index = ServerIndex::new(&servers, num_types, num_resources);
        let any_failures = config.server_types.iter().any(|t| t.failure.is_some());
        let type_min_gate = type_ranges
            .iter()
            .map(|&(lo, hi)| {
                servers[lo..hi]
                    .iter()
                    .map(|s| s.min_priority)
                    .min()
                    .unwrap_or(0)
            })
            .collect();
        let mut env = Self {
            index,
            type_min_gate,
            type_ranges,
            type_free_sum: vec![[0; MAX_RESOURCES]; num_types],
            type_num_up: vec![0; num_types],
            type_num_busy: vec![0; num_types],
            type_num_off: vec![0; num_types],
            any_failures,
            fail_rng: ChaCha8Rng::seed_from_u64(0),
            power_w_total: 0.0,
            energy_j: 0.0,
            num_failures: 0,
            num_killed: 0,
            lost_work_s: 0.0,
            obs_space,
            layout,
            num_resources,
            max_capacity,
            capacity_total,
            max_speed,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            tasks: Vec::new(),
            records: Vec::new(),
            events: EventQueue::default(),
            queue: TaskQueue::new(config.num_slots, config.backlog_cap),
            running: Vec::new(),
            servers,
            now_s: 0.0,
            next_arrival: 0,
            census: Census::default(),
            num_decisions: 0,
            inv_duration_sum: 0.0,
            used: [0; MAX_RESOURCES],
            used_integral: [0.0; MAX_RESOURCES],
            pending_cost: 0.0,
            terminated: false,
            truncated: false,
            metrics: EpisodeMetrics::default(),
            metrics_ready: false,
            scratch: Vec::new(),
            config,
        };
        let mut obs = vec![0.0; env.layout.dim()];
        env.reset(None, &mut obs);
        env
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    // ----- State API for schedulers (read-only, estimates only) -----

    /// Current simulated time.
    pub fn now_s(&self) -> f64 {
        self.now_s
    }

    pub fn num_slots(&self) -> usize {
        self.config.num_slots
    }

    pub fn num_servers(&self) -> usize {
        self.servers.len()
    }

    pub fn num_resources(&self) -> usize {
        self.num_resources
    }

    pub fn resource_names(&self) -> &[String] {
        &self.config.resources
    }

    pub fn server_types(&self) -> &[ServerType] {
        &self.config.server_types
    }

    pub fn action_mode(&self) -> ActionMode {
        self.config.action_mode
    }

    /// The task in visible slot `k`, if any.
    pub fn slot(&self, k: usize) -> Option<SlotView<'_>> {
        let index = (*self.queue.slots.get(k)?)?;
        let spec = &self.tasks[index as usize];
        Some(SlotView::of(k, spec, self.num_resources, self.now_s))
    }

    /// Number of queued tasks beyond the visible slots.
    pub fn backlog_len(&self) -> usize {
        self.queue.backlog.len()
    }

    /// Server `n` (panics if `n >= num_servers()`, like slice indexing).
    pub fn server(&self, n: usize) -> ServerView<'_> {
        let s = &self.servers[n];
        ServerView {
            index: n,
            type_index: s.type_index,
            speed: s.speed,
            capacity: &s.capacity[..self.num_resources],
            free: &s.free[..self.num_resources],
            num_running: s.num_running as usize,
        }
    }

    /// Every running task with its estimated finish time (in no particular order).
    pub fn running(&self) -> impl Iterator<Item = RunningView<'_>> + '_ {
        self.running.iter().map(move |&i| {
            let spec = &self.tasks[i as usize];
            let rec = &self.records[i as usize];
            let server = rec.server as usize;
            RunningView {
                task_id: spec.id,
                server,
                demand: &spec.demand[..self.num_resources],
                start_s: rec.start_s,
                estimated_finish_s: rec.start_s + spec.estimate_s / self.servers[server].speed,
                priority: spec.priority,
            }
        })
    }

    /// True when slot `k` holds a task that can start on server `n` now: it fits in the
    /// free capacity (and, with per-GPU tracking, on the server's GPUs and GPU model), the
    /// server is up, and its priority may use the server (reservations).
    pub fn fits(&self, k: usize, n: usize) -> bool {
        match (self.queue.slots.get(k), self.servers.get(n)) {
            (Some(Some(i)), Some(server)) => {
                index::server_admits(server, &self.need(*i), self.num_resources)
            }
            _ => false,
        }
    }

    /// False while server `n` is failed (it takes no task until repaired).
    pub fn server_is_up(&self, n: usize) -> bool {
        self.servers[n].up
    }

    /// True while server `n` is powered down (a task placed on it waits for its boot).
    pub fn server_is_off(&self, n: usize) -> bool {
        self.servers[n].off
    }

    /// Free units of each GPU of server `n` (empty without per-GPU tracking).
    pub fn server_gpu_free(&self, n: usize) -> &[u16] {
        let s = &self.servers[n];
        &s.gpu_free[..usize::from(s.num_gpus)]
    }

    /// Lowest priority class that may use server `n` (0 unless reserved).
    pub fn server_min_priority(&self, n: usize) -> u8 {
        self.servers[n].min_priority
    }

    /// GPU models allowed to the task in slot `k` (bit set over [`GpuConfig::models`]; 0 =
    /// any).
    pub fn slot_gpu_models(&self, k: usize) -> Option<u32> {
        let i = (*self.queue.slots.get(k)?)?;
        Some(self.tasks[i as usize].gpu_models)
    }

    /// The action that starts slot `k` on server `n`: `k × num_servers + n` in placement
    /// mode; in slot mode `k`, but only if the placement rule would pick `n`.
    pub fn action_index(&self, k: usize, n: usize) -> Option<usize> {
        if k >= self.config.num_slots || n >= self.servers.len() {
            return None;
        }
        match self.config.action_mode {
            ActionMode::Placement => Some(k * self.servers.len() + n),
            ActionMode::Slot => (self.chosen_server(k) == Some(n)).then_some(k),
        }
    }

    /// The action that starts slot `k` on the placement rule's server, in either mode
    /// (`None` if the slot is empty or its task fits nowhere now).
    pub fn slot_action_index(&self, k: usize) -> Option<usize> {
        let n = self.chosen_server(k)?;
        Some(match self.config.action_mode {
            ActionMode::Placement => k * self.servers.len() + n,
            ActionMode::Slot => k,
        })
    }

    /// The wait action (always legal).
    pub fn wait_action(&self) -> usize {
        self.action_space().n - 1
    }

    /// The server the placement rule picks for slot `k` now.
    pub fn chosen_server(&self, k: usize) -> Option<usize> {
        let index = (*self.queue.slots.get(k)?)?;
        self.rule_server(&self.need(index))
    }

    // ----- Introspection for checks and tests (not for schedulers) -----

    /// Head counts of arrived tasks.
    pub fn census(&self) -> Census {
        self.census
    }

    /// Task runs killed by server failures so far this episode.
    pub fn num_killed(&self) -> usize {
        self.num_killed
    }

    /// Recounts task phases and resource use from scratch and compares them with the
    /// running totals: conservation, no server over capacity or negative.
    pub fn check_invariants(&self) -> Result<(), String> {
        let recount = Census::recount(&self.records);
        if recount != self.census {
            return Err(format!("census {:?} != recount {recount:?}", self.census));
        }
        if self.queue.len() != self.census.num_queued
            || self.running.len() != self.census.num_running
        {
            return Err("queue or running list disagrees with the census".into());
        }
        let mut used = [0u64; MAX_RESOURCES];
        for &i in &self.running {
            if self.records[i as usize].phase != TaskPhase::Running {
                return Err(format!("task {i} is in the running list but not running"));
            }
            for (u, &d) in used.iter_mut().zip(&self.tasks[i as usize].demand) {
                *u += u64::from(d);
            }
        }
        let mut free_total = [0u64; MAX_RESOURCES];
        for (n, s) in self.servers.iter().enumerate() {
            let resources = s.free.iter().zip(&s.capacity).zip(&mut free_total);
            for (r, ((&free, &capacity), total)) in resources.enumerate().take(self.num_resources) {
                if free > capacity {
                    return Err(format!(
                        "server {n} resource {r}: free {free} > capacity {capacity}"
                    ));
                }
                *total += u64::from(free);
            }
        }
        if let Some(g) = &self.config.gpu {
            for (n, s) in self.servers.iter().enumerate() {
                let gpus = &s.gpu_free[..usize::from(s.num_gpus)];
                let sum: u32 = gpus.iter().map(|&x| u32::from(x)).sum();
                if s.num_gpus > 0 && sum != s.free[g.resource] {
                    return Err(format!(
                        "server {n}: GPU free units {gpus:?} do not add up to {}",
                        s.free[g.resource]
                    ));
                }
                if gpus.iter().any(|&x| u32::from(x) > g.units_per_gpu) {
                    return Err(format!("server {n}: a GPU has more than a whole GPU free"));
                }
            }
        }
        for &i in &self.running {
            let rec = &self.records[i as usize];
            if !self.servers[rec.server as usize].up {
                return Err(format!("task {i} runs on failed server {}", rec.server));
            }
        }
        for r in 0..self.num_resources {
            let capacity = self.capacity_total[r] as u64;
            if free_total[r] + used[r] != capacity || used[r] != self.used[r] {
                return Err(format!(
                    "resource {r}: free {} + used {} != capacity {capacity}",
                    free_total[r], used[r]
                ));
            }
        }
        Ok(())
    }

    // ----- Dynamics -----

    fn gpu_key(&self) -> Option<(usize, u32)> {
        self.config
            .gpu
            .as_ref()
            .map(|g| (g.resource, g.units_per_gpu))
    }

    fn need(&self, i: TaskIndex) -> Need {
        Need::of(&self.tasks[i as usize], self.gpu_key())
    }

    fn rule_server(&self, need: &Need) -> Option<usize> {
        let nr = self.num_resources;
        match self.config.placement_rule {
            PlacementRule::FirstFit => self.index.first_fit(need),
            PlacementRule::BestFit => {
                let mut best: Option<(f64, usize)> = None;
                for (t, &(lo, hi)) in self.type_ranges.iter().enumerate() {
                    if !self.index.range_summary(lo, hi).admits(need, nr) {
                        continue;
                    }
                    let capacity = &self.config.server_types[t].capacity;
                    let found = self.index.best_of_type(t, capacity, need, |n| {
                        index::server_admits(&self.servers[n], need, nr)
                    });
                    let Some(n) = found else { continue };
                    let s = &self.servers[n];
                    let leftover: f64 = (0..nr)
                        .filter(|&r| s.capacity[r] > 0)
                        .map(|r| f64::from(s.free[r] - need.demand[r]) / f64::from(s.capacity[r]))
                        .sum();
                    if best.is_none_or(|(b, bn)| leftover < b || (leftover == b && n < bn)) {
                        best = Some((leftover, n));
                    }
                }
                best.map(|(_, n)| n)
            }
        }
    }

    /// Decodes a non-wait action into a feasible (slot, server), or says why it is illegal.
    fn feasible_placement(&self, action: usize) -> Result<(usize, usize), &'static str> {
        let (k, n) = match self.config.action_mode {
            ActionMode::Placement => (action / self.servers.len(), action % self.servers.len()),
            ActionMode::Slot => {
                let k = action;
                if self.queue.slots[k].is_none() {
                    return Err("the slot is empty");
                }
                (
                    k,
                    self.chosen_server(k)
                        .ok_or("the task fits on no server now")?,
                )
            }
        };
        match self.queue.slots[k] {
            None => Err("the slot is empty"),
            Some(i)
                if !index::server_admits(&self.servers[n], &self.need(i), self.num_resources) =>
            {
                Err(
                    "the task cannot start on this server now (capacity, GPUs, failure or reservation)",
                )
            }
            Some(_) => Ok((k, n)),
        }
    }

    /// True when `action` would be carried out as a placement (wait is not a placement).
    pub fn is_feasible_placement(&self, action: usize) -> bool {
        action < self.wait_action() && self.feasible_placement(action).is_ok()
    }

    fn fits_somewhere_now(&self, i: TaskIndex) -> bool {
        self.index.first_fit(&self.need(i)).is_some()
    }

    fn any_feasible_placement(&self) -> bool {
        self.queue
            .slots
            .iter()
            .flatten()
            .any(|&i| self.fits_somewhere_now(i))
    }

    /// True when the task could run on some server once it is empty, up and powered on.
    fn fits_some_type(&self, spec: &TaskSpec) -> bool {
        let gpu = self.config.gpu.as_ref();
        self.config
            .server_types
            .iter()
            .zip(&self.type_min_gate)
            .any(|(ty, &gate)| fits_type(spec, ty, gpu, gate))
    }

    /// Applies `f` to server `n`, then refreshes the index, the per-type aggregates and the
    /// power draw: every change to a server goes through here.
    fn modify_server(&mut self, n: usize, f: impl FnOnce(&mut ServerState)) {
        let before = self.servers[n];
        f(&mut self.servers[n]);
        let unit = self.gpu_key().map_or(0, |(_, u)| u as u16);
        let nr = self.num_resources;
        let s = &mut self.servers[n];
        if s.num_gpus > 0 {
            s.refresh_gpu_summary(unit);
        }
        let power = self.config.server_types[s.type_index].power;
        s.power_w = power_draw(s, power, nr);
        let after = *s;
        self.power_w_total += after.power_w - before.power_w;
        let t = after.type_index;
        for r in 0..nr {
            let sum = &mut self.type_free_sum[t][r];
            *sum =
                *sum + if after.up {
                    u64::from(after.free[r])
                } else {
                    0
                } - if before.up {
                    u64::from(before.free[r])
                } else {
                    0
                };
        }
        let delta = |a: bool, b: bool| i64::from(a) - i64::from(b);
        let add = |x: &mut u32, d: i64| *x = (i64::from(*x) + d) as u32;
        add(&mut self.type_num_up[t], delta(after.up, before.up));
        add(
            &mut self.type_num_busy[t],
            delta(after.num_running > 0, before.num_running > 0),
        );
        add(&mut self.type_num_off[t], delta(after.off, before.off));
        self.index.update(n, &self.servers[n]);
    }

    /// Arms the idle timeout of server `n` if it is idle, up and has a power model.
    fn arm_power_down(&mut self, n: usize) {
        let s = &self.servers[n];
        let has_power = self.config.server_types[s.type_index].power.is_some();
        if let Some(timeout_s) = self.config.idle_timeout_s
            && has_power
            && s.up
            && !s.off
            && s.num_running == 0
        {
            let at_s = self.now_s + timeout_s;
            self.servers[n].power_down_at_s = at_s;
            self.events
                .push(at_s, EventKind::PowerDown { server: n as u32 });
        }
    }

    fn place(&mut self, k: usize, n: usize) {
        let Some(i) = self.queue.take(k, &self.tasks) else {
            return;
        };
        let spec = self.tasks[i as usize];
        let need = Need::of(&spec, self.gpu_key());
        let unit = self.gpu_key().map_or(0, |(_, u)| u as u16);
        let gpu_resource = self.gpu_key().map(|(g, _)| g);
        let (now_s, boot_s, nr) = (self.now_s, self.config.boot_s, self.num_resources);
        let mut gpus = 0u16;
        self.modify_server(n, |server| {
            if server.off {
                server.off = false;
                server.ready_at_s = now_s + boot_s;
            }
            server.power_down_at_s = f64::NAN;
            for r in 0..nr {
                server.free[r] -= spec.demand[r];
            }
            let g = &mut server.gpu_free[..usize::from(server.num_gpus)];
            if gpu_resource.is_some() && need.gpu_share > 0 {
                // The GPU with the least room that holds the share.
                let j = (0..g.len())
                    .filter(|&j| g[j] >= need.gpu_share)
                    .min_by_key(|&j| (g[j], j));
                if let Some(j) = j {
                    g[j] -= need.gpu_share;
                    gpus = 1 << j;
                }
            } else if need.gpu_whole > 0 {
                let mut left = need.gpu_whole;
                for (j, free) in g.iter_mut().enumerate() {
                    if left > 0 && *free == unit {
                        *free = 0;
                        gpus |= 1 << j;
                        left -= 1;
                    }
                }
            }
            server.num_running += 1;
        });
        for r in 0..nr {
            self.used[r] += u64::from(spec.demand[r]);
        }
        let server = &self.servers[n];
        let start_s = now_s.max(server.ready_at_s);
        let finish_s = start_s + spec.duration_s / server.speed;
        let rec = &mut self.records[i as usize];
        rec.phase = TaskPhase::Running;
        rec.start_s = start_s;
        rec.server = n as u32;
        rec.running_pos = self.running.len() as u32;
        rec.due_s = finish_s;
        rec.gpus = gpus;
        self.running.push(i);
        self.events.push(
            finish_s,
            EventKind::Completion {
                task: i,
                server: n as u32,
            },
        );
        self.census.num_queued -= 1;
        self.census.num_running += 1;
    }

    /// Gives a running task's resources back and takes it off the running list.
    fn release(&mut self, i: TaskIndex) {
        let spec = self.tasks[i as usize];
        let rec = self.records[i as usize];
        let n = rec.server as usize;
        let unit = self.gpu_key().map_or(0, |(_, u)| u as u16);
        let gpu_resource = self.gpu_key().map(|(g, _)| g);
        let nr = self.num_resources;
        self.modify_server(n, |server| {
            for r in 0..nr {
                server.free[r] += spec.demand[r];
            }
            if let Some(g) = gpu_resource {
                let d = spec.demand[g];
                for j in 0..server.num_gpus as usize {
                    if rec.gpus & (1 << j) != 0 {
                        server.gpu_free[j] += if d < u32::from(unit) { d as u16 } else { unit };
                    }
                }
            }
            server.num_running -= 1;
        });
        for r in 0..nr {
            self.used[r] -= u64::from(spec.demand[r]);
        }
        let pos = rec.running_pos as usize;
        self.running.swap_remove(pos);
        if let Some(&moved) = self.running.get(pos) {
            self.records[moved as usize].running_pos = pos as u32;
        }
        let rec = &mut self.records[i as usize];
        rec.running_pos = u32::MAX;
        rec.due_s = f64::NAN;
        rec.gpus = 0;
        self.census.num_running -= 1;
        self.arm_power_down(n);
    }

    fn complete(&mut self, i: TaskIndex) {
        let spec = self.tasks[i as usize];
        self.release(i);
        let rec = &mut self.records[i as usize];
        rec.phase = TaskPhase::Finished;
        rec.finish_s = self.now_s;
        if spec.deadline_s.is_some_and(|d| self.now_s > d) {
            self.pending_cost += self.config.reward.deadline_miss;
        }
        self.census.num_finished += 1;
        self.leave_system(spec.duration_s);
    }

    /// Marks an arrived (or killed) task dropped.
    fn drop_task(&mut self, i: TaskIndex, in_system: bool) {
        let spec = self.tasks[i as usize];
        self.records[i as usize].phase = TaskPhase::Dropped;
        self.records[i as usize].finish_s = self.now_s;
        self.census.num_dropped += 1;
        self.pending_cost += self.config.reward.dropped;
        if spec.deadline_s.is_some() {
            self.pending_cost += self.config.reward.deadline_miss;
        }
        if in_system {
            self.leave_system(spec.duration_s);
        }
    }

    fn arrive(&mut self, i: TaskIndex) {
        let spec = self.tasks[i as usize];
        self.census.num_arrived += 1;
        let admission = if self.fits_some_type(&spec) {
            self.queue.admit(i, &spec)
        } else {
            Admission::Dropped
        };
        if admission == Admission::Dropped {
            self.drop_task(i, false);
        } else {
            self.records[i as usize].phase = TaskPhase::Queued;
            self.census.num_queued += 1;
            self.inv_duration_sum += 1.0 / spec.duration_s;
        }
    }

    /// A failure kills every task on server `n` (requeued or dropped), then takes it down
    /// until its repair.
    fn fail(&mut self, n: usize) {
        if !self.servers[n].up {
            return;
        }
        self.num_failures += 1;
        let speed = self.servers[n].speed;
        // Backwards, so that the swap-remove of a killed task only moves visited entries.
        let mut pos = self.running.len();
        while pos > 0 {
            pos -= 1;
            let i = self.running[pos];
            if self.records[i as usize].server as usize != n {
                continue;
            }
            let start_s = self.records[i as usize].start_s;
            self.release(i);
            self.num_killed += 1;
            self.lost_work_s += (self.now_s - start_s).max(0.0) * speed;
            match self.config.on_kill {
                KillPolicy::Requeue => {
                    self.records[i as usize].restarts += 1;
                    let spec = self.tasks[i as usize];
                    if self.queue.admit(i, &spec) == Admission::Dropped {
                        self.drop_task(i, true);
                    } else {
                        self.records[i as usize].phase = TaskPhase::Queued;
                        self.census.num_queued += 1;
                    }
                }
                KillPolicy::Drop => self.drop_task(i, true),
            }
        }
        self.modify_server(n, |s| {
            s.up = false;
            s.off = false;
            s.power_down_at_s = f64::NAN;
        });
        let ty = self.config.server_types[self.servers[n].type_index].failure;
        if let Some(model) = ty {
            let at_s = self.now_s + exponential(&mut self.fail_rng, model.mttr_s);
            self.events
                .push(at_s, EventKind::Repair { server: n as u32 });
        }
    }

    fn repair(&mut self, n: usize) {
        let now_s = self.now_s;
        self.modify_server(n, |s| {
            s.up = true;
            s.ready_at_s = now_s;
        });
        self.arm_power_down(n);
        let ty = self.config.server_types[self.servers[n].type_index].failure;
        if let Some(model) = ty {
            let at_s = now_s + exponential(&mut self.fail_rng, model.mttf_s);
            self.events
                .push(at_s, EventKind::Failure { server: n as u32 });
        }
    }

    fn dispatch(&mut self, time_s: f64, kind: EventKind) {
        match kind {
            EventKind::Completion { task, server } => {
                let rec = &self.records[task as usize];
                if rec.phase == TaskPhase::Running && rec.server == server && rec.due_s == time_s {
                    self.complete(task);
                }
            }
            EventKind::Failure { server } => self.fail(server as usize),
            EventKind::Repair { server } => self.repair(server as usize),
            EventKind::PowerDown { server } => {
                let s = &self.servers[server as usize];
                if s.up && !s.off && s.num_running == 0 && s.power_down_at_s == time_s {
                    self.modify_server(server as usize, |s| {
                        s.off = true;
                        s.power_down_at_s = f64::NAN;
                    });
                }
            }
        }
    }

    fn leave_system(&mut self, duration_s: f64) {
        if self.census.num_queued + self.census.num_running == 0 {
            // Reset instead of subtracting so that float drift cannot accumulate.
            self.inv_duration_sum = 0.0;
        } else {
            self.inv_duration_sum -= 1.0 / duration_s;
        }
    }

    /// Moves the clock to `t_s`, accruing cost, utilisation and energy at the current rates.
    fn advance_clock_to(&mut self, t_s: f64) {
        let dt = t_s - self.now_s;
        if dt > 0.0 {
            self.pending_cost += dt
                * self
                    .config
                    .reward
                    .cost_rate(self.inv_duration_sum, self.census.num_queued);
            for r in 0..self.num_resources {
                self.used_integral[r] += dt * self.used[r] as f64;
            }
            let joules = dt * self.power_w_total.max(0.0);
            self.energy_j += joules;
            self.pending_cost += self.config.reward.energy_kwh * joules / JOULES_PER_KWH;
            self.now_s = t_s;
        }
    }

    fn next_arrival_s(&self) -> Option<f64> {
        self.tasks.get(self.next_arrival).map(|t| t.arrival_s)
    }

    fn next_event_s(&self) -> Option<f64> {
        match (self.events.peek_time_s(), self.next_arrival_s()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Processes every event at or before `t_s` in time order (server events before
    /// arrivals at the same instant, so an arrival can use what a completion frees), then
    /// moves the clock to `t_s`.
    fn run_until(&mut self, t_s: f64) {
        loop {
            let event = self.events.peek_time_s().filter(|&c| c <= t_s);
            let arrival = self.next_arrival_s().filter(|&a| a <= t_s);
            match (event, arrival) {
                (Some(c), a) if a.is_none_or(|a| c <= a) => {
                    self.advance_clock_to(c);
                    if let Some(event) = self.events.pop() {
                        self.dispatch(event.time_s, event.kind);
                    }
                }
                (_, Some(a)) => {
                    self.advance_clock_to(a);
                    let i = self.next_arrival as TaskIndex;
                    self.next_arrival += 1;
                    self.arrive(i);
                }
                _ => break,
            }
        }
        self.advance_clock_to(t_s);
    }

    /// One wait: to the next event (event-driven) or by `step_s` (stepped), capped at the
    /// time limit.
    fn wait(&mut self) {
        let target_s = match self.config.time_mode {
            TimeMode::EventDriven => self
                .next_event_s()
                .unwrap_or(self.now_s + self.config.step_s),
            TimeMode::Stepped => self.now_s + self.config.step_s,
        };
        self.run_until(target_s.min(self.config.max_time_s));
    }

    fn update_episode_end(&mut self) {
        let all_done = self.next_arrival == self.tasks.len()
            && self.census.num_queued + self.census.num_running == 0;
        self.terminated = all_done;
        self.truncated = !all_done
            && (self.now_s >= self.config.max_time_s
                || self.num_decisions >= self.config.max_decisions);
    }

    /// In event-driven mode, jumps over instants where only wait is legal.
    fn skip_to_decision(&mut self) {
        self.update_episode_end();
        if self.config.time_mode != TimeMode::EventDriven {
            return;
        }
        while !self.terminated && !self.truncated && !self.any_feasible_placement() {
            if self.next_event_s().is_none() {
                // Nothing can change without the agent: let it decide (it can only wait).
                break;
            }
            self.wait();
            self.update_episode_end();
        }
    }

    fn finish_step(&mut self, obs: &mut [f32]) -> Transition {
        self.skip_to_decision();
        if self.terminated || self.truncated {
            self.fill_metrics();
        }
        self.write_observation(obs);
        let reward = -std::mem::take(&mut self.pending_cost) as f32;
        Transition {
            reward,
            terminated: self.terminated,
            truncated: self.truncated,
        }
    }

    fn fill_metrics(&mut self) {
        let totals = stats::EpisodeTotals {
            num_arrived: self.census.num_arrived,
            end_s: self.now_s,
            used_integral: &self.used_integral[..self.num_resources],
            capacity_total: &self.capacity_total[..self.num_resources],
        };
        stats::fill_metrics(
            &self.tasks,
            &self.records,
            &totals,
            &mut self.scratch,
            &mut self.metrics,
        );
        self.metrics.energy_kwh = self.energy_j / JOULES_PER_KWH;
        self.metrics.num_failures = self.num_failures;
        self.metrics.num_killed = self.num_killed;
        self.metrics.lost_work_s = self.lost_work_s;
        self.metrics_ready = true;
    }

    fn write_observation(&self, obs: &mut [f32]) {
        observation::write(self, obs);
    }

    /// Back to an empty cluster at time 0 (servers, index, aggregates, power, failures).
    fn reset_servers(&mut self) {
        let unit = self.gpu_key().map_or(0, |(_, u)| u as u16);
        let nr = self.num_resources;
        self.power_w_total = 0.0;
        for t in 0..self.type_ranges.len() {
            self.type_free_sum[t] = [0; MAX_RESOURCES];
            self.type_num_up[t] = 0;
            self.type_num_busy[t] = 0;
            self.type_num_off[t] = 0;
        }
        for s in &mut self.servers {
            s.clear(unit);
            s.power_w = power_draw(s, self.config.server_types[s.type_index].power, nr);
            self.power_w_total += s.power_w;
            let t = s.type_index;
            for r in 0..nr {
                self.type_free_sum[t][r] += u64::from(s.free[r]);
            }
            self.type_num_up[t] += 1;
        }
        self.index.rebuild(&self.servers);
        self.energy_j = 0.0;
        self.num_failures = 0;
        self.num_killed = 0;
        self.lost_work_s = 0.0;
    }

    /// Schedules the first failure of every server that can fail, and the idle timeouts.
    fn schedule_server_events(&mut self) {
        if self.any_failures {
            self.fail_rng = ChaCha8Rng::seed_from_u64(self.rng.random::<u64>());
            for n in 0..self.servers.len() {
                let ty = self.config.server_types[self.servers[n].type_index].failure;
                if let Some(model) = ty {
                    let at_s = exponential(&mut self.fail_rng, model.mttf_s);
                    self.events
                        .push(at_s, EventKind::Failure { server: n as u32 });
                }
            }
        }
        for n in 0..self.servers.len() {
            self.arm_power_down(n);
        }
    }
}

const JOULES_PER_KWH: f64 = 3.6e6;

/// Reservation gate of each server of a type of `count` servers (see [`Reservation`]).
fn reservation_gates(count: usize, reservations: &[Reservation]) -> impl Iterator<Item = u8> {
    let mut sorted = reservations.to_vec();
    sorted.sort_by_key(|r| std::cmp::Reverse(r.priority));
    let mut gates = vec![0u8; count];
    let mut end = count;
    for r in &sorted {
        let n = ((r.fraction * count as f64).round() as usize).min(end);
        gates[end - n..end].fill(r.priority);
        end -= n;
    }
    gates.into_iter()
}

/// True when `spec` could run on some server of `server_types` once that server is empty,
/// up and powered on: capacity, whole GPUs or a GPU share, GPU model and reservations.
/// Tasks for which this is false never start: they are rejected at load or dropped.
pub fn fits_some_server_type(
    spec: &TaskSpec,
    server_types: &[ServerType],
    gpu: Option<&GpuConfig>,
    reservations: &[Reservation],
) -> bool {
    server_types.iter().any(|ty| {
        let min_gate = reservation_gates(ty.count, reservations).min().unwrap_or(0);
        fits_type(spec, ty, gpu, min_gate)
    })
}

/// [`fits_some_server_type`] for one type whose lowest reservation gate is `min_gate`.
fn fits_type(spec: &TaskSpec, ty: &ServerType, gpu: Option<&GpuConfig>, min_gate: u8) -> bool {
    let need = Need::of(spec, gpu.map(|g| (g.resource, g.units_per_gpu)));
    {
        let (num_gpus, model_bit, unit) = match gpu {
            Some(g) => (
                ty.capacity[g.resource] / g.units_per_gpu.max(1),
                ty.gpu_model.map_or(0, |m| 1u32 << m),
                g.units_per_gpu,
            ),
            None => (0, 0, 0),
        };
        (0..MAX_RESOURCES).all(|r| need.demand[r] <= ty.capacity[r])
            && min_gate <= need.priority
            && (need.models == 0 || model_bit & need.models != 0)
            && (need.gpu_share == 0 || (num_gpus > 0 && u32::from(need.gpu_share) <= unit))
            && u32::from(need.gpu_whole) <= num_gpus
    }
}

/// An exponential draw with the given mean.
fn exponential(rng: &mut ChaCha8Rng, mean_s: f64) -> f64 {
    let u: f64 = rng.random::<f64>();
    -mean_s * (1.0 - u).ln()
}

/// Power draw of a server now (see [`PowerModel`]).
fn power_draw(s: &ServerState, model: Option<PowerModel>, num_resources: usize) -> f64 {
    let Some(m) = model else { return 0.0 };
    if !s.up || s.off {
        return 0.0;
    }
    let dominant = (0..num_resources)
        .filter(|&r| s.capacity[r] > 0)
        .map(|r| f64::from(s.capacity[r] - s.free[r]) / f64::from(s.capacity[r]))
        .fold(0.0, f64::max);
    m.idle_w + (m.peak_w - m.idle_w) * dominant
}

impl Env for ClusterEnv {
    fn observation_space(&self) -> &BoxSpace {
        &self.obs_space
    }

    fn action_space(&self) -> Discrete {
        let n = match self.config.action_mode {
            ActionMode::Placement => self.config.num_slots * self.servers.len(),
            ActionMode::Slot => self.config.num_slots,
        };
        Discrete { n: n + 1 }
    }

    fn obs_layout(&self) -> ObsLayout {
        self.layout
    }

    fn action_layout(&self) -> ActionLayout {
        let slots = self.config.num_slots;
        let choose = match self.config.action_mode {
            ActionMode::Placement => ActionBlock::Placements {
                slots,
                servers: self.servers.len(),
            },
            ActionMode::Slot => ActionBlock::Slots { slots },
        };
        ActionLayout {
            blocks: vec![choose, ActionBlock::Wait],
        }
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        self.config.workload.fill(&mut self.rng, &mut self.tasks);
        self.records.clear();
        self.records.resize(self.tasks.len(), TaskRecord::NEW);
        self.reset_servers();
        self.events.clear();
        self.queue.clear();
        self.running.clear();
        self.now_s = 0.0;
        self.next_arrival = 0;
        self.census = Census::default();
        self.num_decisions = 0;
        self.inv_duration_sum = 0.0;
        self.used = [0; MAX_RESOURCES];
        self.used_integral = [0.0; MAX_RESOURCES];
        self.pending_cost = 0.0;
        self.metrics_ready = false;
        self.schedule_server_events();
        self.run_until(0.0);
        self.skip_to_decision();
        if self.terminated || self.truncated {
            self.fill_metrics();
        }
        self.write_observation(obs);
    }

    fn step(&mut self, action: usize, obs: &mut [f32]) -> Result<Transition, EnvError> {
        if self.terminated || self.truncated {
            return Err(EnvError::EpisodeOver);
        }
        let n = self.action_space().n;
        if action >= n {
            return Err(EnvError::OutOfRange { action, n });
        }
        if action == n - 1 {
            self.wait();
        } else {
            match self.feasible_placement(action) {
                Ok((k, server)) => self.place(k, server),
                Err(reason) => match self.config.illegal_action {
                    IllegalAction::Error => return Err(EnvError::Illegal { action, reason }),
                    IllegalAction::Wait => self.wait(),
                },
            }
        }
        self.num_decisions += 1;
        Ok(self.finish_step(obs))
    }

    fn action_mask(&self, mask: &mut [bool]) {
        let nr = self.num_resources;
        let num_servers = self.servers.len();
        match self.config.action_mode {
            ActionMode::Placement => {
                for (k, slot) in self.queue.slots.iter().enumerate() {
                    let row = &mut mask[k * num_servers..(k + 1) * num_servers];
                    match slot {
                        Some(i) => {
                            let need = self.need(*i);
                            for (m, s) in row.iter_mut().zip(&self.servers) {
                                *m = index::server_admits(s, &need, nr);
                            }
                        }
                        None => row.fill(false),
                    }
                }
            }
            ActionMode::Slot => {
                for (m, slot) in mask.iter_mut().zip(&self.queue.slots) {
                    *m = slot.is_some_and(|i| self.fits_somewhere_now(i));
                }
            }
        }
        mask[self.wait_action()] = true;
    }

    fn episode_metrics(&self) -> Option<&EpisodeMetrics> {
        self.metrics_ready.then_some(&self.metrics)
    }
}

// ----- Added for lepton-eval (issue 4): per-task outcomes for reports, not for schedulers -----
impl ClusterEnv {
    /// Slowdown (finish − arrival) / work of every task that has finished this episode, in
    /// arrival order. It uses true durations, so it is for reports (slowdown CDFs), never for
    /// a scheduler's decisions.
    pub fn finished_slowdowns(&self) -> impl Iterator<Item = f64> + '_ {
        stats::finished_slowdowns(&self.tasks, &self.records)
    }
}
