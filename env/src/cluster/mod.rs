//! The cluster-scheduling environment.
//!
//! [`ClusterEnv`] simulates heterogeneous servers, a task queue with visible slots and a
//! backlog, and an event-driven (or time-stepped) clock, behind the [`Env`](crate::api::Env) trait.
//! Scenarios are usually loaded from TOML by the `scenario` module; [`ClusterConfig`] is
//! the resolved, validated form.
//!
//! Files: `config.rs` (the config types), `views.rs` (what schedulers and checks see),
//! `query.rs` (the read-only state API), `placement.rs` (mask, placement rule, starting and
//! releasing tasks), `dynamics.rs` (event clock, arrivals, completions, episode end),
//! `servers.rs` (server bookkeeping), `power.rs`, `failures.rs`, `schedule.rs` (the
//! optional schedule recorder for Gantt charts), `setup.rs`
//! ([`ClusterEnv::new`]), `env.rs` (`impl Env`), `inspect.rs` (checks and reports), `live.rs` (a real cluster's moment as a state), and the
//! lower layers `state.rs`, `index.rs`, `observation.rs`, `reward.rs`, `stats.rs`.

mod config;
mod discipline;
mod dynamics;
mod env;
mod failures;
mod hidden;
mod index;
mod inspect;
mod live;
mod observation;
mod placement;
mod power;
mod preemption;
#[cfg(test)]
mod preemption_tests;
mod query;
pub mod reward;
mod schedule;
mod servers;
mod setup;
pub mod state;
pub(crate) mod stats;
#[cfg(test)]
mod tests;
mod views;

pub use config::{
    ActionMode, ClusterConfig, Discipline, FailureModel, Forecast, GpuConfig, HealthModel,
    IllegalAction, KillPolicy, OversizePolicy, PlacementRule, PowerModel, Preemption, Reservation,
    ServerObs, ServerType, SlotOrder, TimeMode,
};
pub use live::{LiveError, LiveState};
pub use placement::fits_some_server_type;
pub use query::ArrivalForecast;
pub use reward::RewardWeights;
pub use schedule::{DownInterval, RunEnd, Schedule, TaskRun};
pub use state::{EventKind, MAX_GPUS, TaskPhase};
pub use views::{Census, QueuedView, RunningView, ServerView, SlotView};

use crate::api::ObsLayout;
use crate::metrics::EpisodeMetrics;
use crate::spaces::BoxSpace;
use crate::workload::{MAX_RESOURCES, TaskSpec};
use index::ServerIndex;
use rand_chacha::ChaCha8Rng;
use state::{EventQueue, ServerState, TaskIndex, TaskQueue, TaskRecord};

/// An event-driven simulator of a heterogeneous cluster with a Gymnasium-style API.
///
/// Servers have integer capacities per resource (the resource list is the scenario's) and a
/// speed; a task with work `w` runs `w / speed` on its server. Tasks arrive from the
/// scenario's [`TaskSource`](crate::workload::TaskSource), wait in a queue of `num_slots` visible slots plus a capped FIFO
/// backlog, and hold their demand on one server until they finish. The agent sees runtime
/// *estimates*; the simulator uses the true durations.
///
/// # Action Space
/// `Discrete(num_slots × num_servers + 1)` in placement mode: action `k × num_servers + n`
/// starts the task in slot `k` on server `n` now; the last action waits. In slot mode,
/// `Discrete(num_slots + 1)`: action `k` starts slot `k` on the server picked by the
/// placement rule (first-fit or best-fit); the last action waits.
/// [`Env::action_mask`](crate::api::Env::action_mask) is exact: an action is legal iff the slot holds a task and the task
/// fits in the server's free capacity now. Wait is legal unless the queue's hold limit
/// (`hold_limit_s`) forbids it: then a visible task that fits has waited that long, and waiting
/// returns [`EnvError::Illegal`](crate::api::EnvError::Illegal). Under a commit
/// [`Discipline`] (`strict`, `easy`, `conservative`; slot mode) every occupied slot is legal,
/// the chosen task is the next to start (the step returns once it has started, backfilling
/// meanwhile as the discipline allows), and waiting is legal only while a task runs.
/// [`ClusterEnv::step_task`] chooses any queued task, visible or not.
///
/// With `[preemption]` ([`Preemption`]), two blocks come before wait: one *preempt* action per
/// running row (stop the row's task and requeue it), then one *migrate* action per (running
/// row, server) (move the task there with its work). A preempt action is legal when its row
/// holds a task; a migration when the task fits on the destination now (as a placement would)
/// and the destination is not its own server. While a task runs, some such action is legal,
/// so every event is a decision; `decide_every_s` adds a decision every that many seconds.
/// [`ClusterEnv::step_preempt`] and [`ClusterEnv::step_migrate`] name any running task. Several placements may
/// happen at the same instant: a placement never moves the clock. An illegal action returns
/// [`EnvError::Illegal`](crate::api::EnvError::Illegal) with the state unchanged, or acts as wait when the scenario sets
/// `illegal_action = "wait"`.
///
/// Waiting in event-driven mode jumps to the next event (the next arrival or completion, or
/// `step_s` when there is none). After every step, while no placement is feasible, the env
/// keeps jumping by itself, so the agent only decides when it has a real choice. In stepped
/// mode a wait advances the clock by `step_s` and nothing is skipped.
///
/// # Observation
/// A flat `f32` vector of length `G + num_servers × S + num_slots × K` (plus the running rows
/// below) (see
/// [`Env::obs_layout`](crate::api::Env::obs_layout)), every element in `[0, 1]` except the deadline slack in `[−1, 1]`.
/// With `R` resources, `T` server types, `sq(x) = x / (1 + x)` and times divided by
/// `time_scale_s`:
///
/// Global block (`G = 2R + 4`):
/// - `0`: backlog length / backlog cap;
/// - `1`: sq(waiting time of the oldest backlog task);
/// - `2`: sq(mean estimated duration of backlog tasks);
/// - `3 .. 3+R`: mean demand of backlog tasks / largest server capacity, per resource;
/// - `3+R .. 3+2R`: cluster utilisation now (used / total capacity), per resource;
/// - `3+2R`: fraction of visible slots holding a task;
/// - with `[observation] forecast` (`G = 2R + 7`), the arrival-rate forecast of
///   [`ClusterEnv::arrival_forecast`] as sq(arrivals per `time_scale_s`): `4+2R` over the
///   last `window_s`, `5+2R` over the last `10 × window_s`, `6+2R` over the `window_s` that
///   followed this moment one `period_s` ago (the diurnal forecast).
///
/// One row per server (`S = 2R + T + 3`):
/// - `0 .. R`: free / capacity per resource (0 where the server has none);
/// - `R .. 2R`: capacity / largest capacity of any server, per resource;
/// - `2R`: speed / fastest speed;
/// - `2R+1 .. 2R+1+T`: one-hot server type;
/// - `2R+1+T`: 1 if any task runs on it;
/// - `2R+2+T`: sq(time to its next *estimated* completion), 0 when idle or overdue.
///
/// A failed server's free-capacity features read 0. With `[failures] health`, each server row
/// ends with the server's health reading ([`ClusterEnv::health`]; per-server rows only).
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
/// With `[preemption]`, one row per running row (`running_rows` of them, the most recently
/// started task first; `F = R + 8`), all zeros when the row is empty: `0`: 1 if the row holds
/// a task; `1 .. 1+R`: demand / largest server capacity; `1+R`: sq(estimated time to its
/// finish); `2+R`: sq(time since its run started); `3+R`: sq(work a preemption now would
/// lose, speed-1 seconds since its last checkpoint); `4+R`: priority / largest priority; `5+R`:
/// its server's health reading; `6+R`: its server's index / (servers − 1); `7+R`: 1 if it
/// holds `[gpu]` units.
///
/// With `[observation] extended = true`, each server row (per-server rows only) ends with
/// sq(remaining estimated work of its running tasks, in server-seconds: time to go × the mean
/// share of the server's capacity each task holds), and each slot row with three more
/// features (`K = R + 10`): `7+R`: min(1, time_scale_s / estimate) (1/estimate); `8+R`:
/// sq(waiting time / estimate), the slowdown so far minus 1; `9+R`: sq(estimated work:
/// estimate × mean demand share of the largest server).
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
/// [`EpisodeMetrics`] are then available from [`Env::episode_metrics`](crate::api::Env::episode_metrics).
///
/// # Arguments
/// See [`ClusterConfig`]; scenario files are described in the `scenario` module.
///
/// # State API for schedulers
/// The read-only accessors of `query.rs` ([`now_s`](Self::now_s), [`slot`](Self::slot),
/// [`server`](Self::server), [`running`](Self::running), [`fits`](Self::fits), ...) expose
/// estimates only: never the true duration of an unfinished task, never a task that has not
/// arrived. Heuristics read them only through `schedulers/snapshot.rs`, the audited surface.
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
    /// The clock at the episode's start (windows of the arrival forecast stop there).
    episode_start_s: f64,
    next_arrival: usize,
    census: Census,
    num_decisions: u64,
    /// Σ of the reward's presence rate over tasks in the system (queued or running).
    presence_sum: f64,
    used: [u64; MAX_RESOURCES],
    used_integral: [f64; MAX_RESOURCES],
    /// Cost accumulated since the last step returned (negated into the reward).
    pending_cost: f64,
    terminated: bool,
    /// The episode reached its end during reset (no task before the time limit): the first
    /// step, whatever its action, reports that end.
    end_pending: bool,
    truncated: bool,
    metrics: EpisodeMetrics,
    metrics_ready: bool,
    scratch: Vec<f64>,

    // Large clusters, failures, energy and reservations.
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
    /// Which failures are announced by the health signal, and the signal's noise salt.
    health_rng: ChaCha8Rng,
    health_salt: u64,
    /// Each server's next scheduled failure (infinite when none is scheduled) and whether
    /// its health signal announces it.
    next_failure_s: Vec<f64>,
    announced: Vec<bool>,
    power_w_total: f64,
    energy_j: f64,
    num_failures: usize,
    num_killed: usize,
    /// Work lost by killed and preempted runs since their last checkpoint (speed-1 s).
    lost_work_s: f64,
    num_preempted: usize,
    num_migrated: usize,
    /// The running rows of the observation (`[preemption]`; `preemption.rs`).
    rows: Vec<TaskIndex>,
    /// The schedule recorder (`schedule.rs`): `None`, the default, records nothing.
    schedule: Option<Box<Schedule>>,
}
