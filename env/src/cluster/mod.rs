//! The cluster-scheduling environment.
//!
//! [`ClusterEnv`] simulates heterogeneous servers, a task queue with visible slots and a
//! backlog, and an event-driven (or time-stepped) clock, behind the [`Env`] trait.
//! Scenarios are usually loaded from TOML with [`crate::scenario`]; [`ClusterConfig`] is
//! the resolved, validated form.

mod observation;
pub mod reward;
pub mod state;
pub(crate) mod stats;
#[cfg(test)]
mod tests;

pub use reward::RewardWeights;
pub use state::{EventKind, TaskPhase};

use crate::api::{Env, EnvError, ObsLayout, Transition};
use crate::metrics::EpisodeMetrics;
use crate::spaces::{BoxSpace, Discrete};
use crate::workload::{MAX_RESOURCES, TaskSource, TaskSpec};
use rand::SeedableRng;
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
}

impl ClusterEnv {
    /// Builds the env and starts a first episode from `config.seed`.
    pub fn new(config: ClusterConfig) -> Self {
        let num_resources = config.resources.len();
        let mut servers = Vec::new();
        let mut max_capacity = [0u32; MAX_RESOURCES];
        let mut capacity_total = [0f64; MAX_RESOURCES];
        for (t, ty) in config.server_types.iter().enumerate() {
            for _ in 0..ty.count {
                servers.push(ServerState::new(t, ty.speed, ty.capacity));
            }
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
        );
        let obs_space = observation::space(&layout, num_resources);
        let mut env = Self {
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
        Some(SlotView {
            slot: k,
            task_id: spec.id,
            arrival_s: spec.arrival_s,
            demand: &spec.demand[..self.num_resources],
            estimate_s: spec.estimate_s,
            priority: spec.priority,
            deadline_s: spec.deadline_s,
            waiting_s: self.now_s - spec.arrival_s,
        })
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

    /// True when slot `k` holds a task that fits in server `n`'s free capacity now.
    pub fn fits(&self, k: usize, n: usize) -> bool {
        match (self.queue.slots.get(k), self.servers.get(n)) {
            (Some(Some(i)), Some(server)) => {
                server.fits_now(&self.tasks[*i as usize].demand, self.num_resources)
            }
            _ => false,
        }
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
        self.rule_server(&self.tasks[index as usize].demand)
    }

    // ----- Introspection for checks and tests (not for schedulers) -----

    /// Head counts of arrived tasks.
    pub fn census(&self) -> Census {
        self.census
    }

    /// Recounts task phases and resource use from scratch and compares them with the
    /// running totals: conservation, no server over capacity or negative.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut recount = Census::default();
        for rec in &self.records {
            match rec.phase {
                TaskPhase::NotArrived => continue,
                TaskPhase::Queued => recount.num_queued += 1,
                TaskPhase::Running => recount.num_running += 1,
                TaskPhase::Finished => recount.num_finished += 1,
                TaskPhase::Dropped => recount.num_dropped += 1,
            }
            recount.num_arrived += 1;
        }
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

    fn rule_server(&self, demand: &[u32; MAX_RESOURCES]) -> Option<usize> {
        let nr = self.num_resources;
        match self.config.placement_rule {
            PlacementRule::FirstFit => self.servers.iter().position(|s| s.fits_now(demand, nr)),
            PlacementRule::BestFit => {
                let mut best: Option<(f64, usize)> = None;
                for (n, s) in self.servers.iter().enumerate() {
                    if !s.fits_now(demand, nr) {
                        continue;
                    }
                    let leftover: f64 = (0..nr)
                        .filter(|&r| s.capacity[r] > 0)
                        .map(|r| f64::from(s.free[r] - demand[r]) / f64::from(s.capacity[r]))
                        .sum();
                    if best.is_none_or(|(b, _)| leftover < b) {
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
                if !self.servers[n]
                    .fits_now(&self.tasks[i as usize].demand, self.num_resources) =>
            {
                Err("the task does not fit in the server's free capacity")
            }
            Some(_) => Ok((k, n)),
        }
    }

    /// True when `action` would be carried out as a placement (wait is not a placement).
    pub fn is_feasible_placement(&self, action: usize) -> bool {
        action < self.wait_action() && self.feasible_placement(action).is_ok()
    }

    fn any_feasible_placement(&self) -> bool {
        let nr = self.num_resources;
        self.queue.slots.iter().flatten().any(|&i| {
            let demand = &self.tasks[i as usize].demand;
            self.servers.iter().any(|s| s.fits_now(demand, nr))
        })
    }

    fn place(&mut self, k: usize, n: usize) {
        let Some(i) = self.queue.take(k, &self.tasks) else {
            return;
        };
        let spec = &self.tasks[i as usize];
        let server = &mut self.servers[n];
        for r in 0..self.num_resources {
            server.free[r] -= spec.demand[r];
            self.used[r] += u64::from(spec.demand[r]);
        }
        server.num_running += 1;
        let finish_s = self.now_s + spec.duration_s / server.speed;
        let rec = &mut self.records[i as usize];
        rec.phase = TaskPhase::Running;
        rec.start_s = self.now_s;
        rec.server = n as u32;
        rec.running_pos = self.running.len() as u32;
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

    fn complete(&mut self, i: TaskIndex, n: u32) {
        let spec = self.tasks[i as usize];
        let server = &mut self.servers[n as usize];
        for r in 0..self.num_resources {
            server.free[r] += spec.demand[r];
            self.used[r] -= u64::from(spec.demand[r]);
        }
        server.num_running -= 1;
        let pos = self.records[i as usize].running_pos as usize;
        self.running.swap_remove(pos);
        if let Some(&moved) = self.running.get(pos) {
            self.records[moved as usize].running_pos = pos as u32;
        }
        let rec = &mut self.records[i as usize];
        rec.phase = TaskPhase::Finished;
        rec.finish_s = self.now_s;
        rec.running_pos = u32::MAX;
        if spec.deadline_s.is_some_and(|d| self.now_s > d) {
            self.pending_cost += self.config.reward.deadline_miss;
        }
        self.census.num_running -= 1;
        self.census.num_finished += 1;
        self.leave_system(spec.duration_s);
    }

    fn arrive(&mut self, i: TaskIndex) {
        let spec = self.tasks[i as usize];
        self.census.num_arrived += 1;
        let fits_somewhere = self
            .servers
            .iter()
            .any(|s| s.fits_when_empty(&spec.demand, self.num_resources));
        let admission = if fits_somewhere {
            self.queue.admit(i, &spec)
        } else {
            Admission::Dropped
        };
        if admission == Admission::Dropped {
            self.records[i as usize].phase = TaskPhase::Dropped;
            self.records[i as usize].finish_s = self.now_s;
            self.census.num_dropped += 1;
            self.pending_cost += self.config.reward.dropped;
            if spec.deadline_s.is_some() {
                self.pending_cost += self.config.reward.deadline_miss;
            }
        } else {
            self.records[i as usize].phase = TaskPhase::Queued;
            self.census.num_queued += 1;
            self.inv_duration_sum += 1.0 / spec.duration_s;
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

    /// Moves the clock to `t_s`, accruing cost and utilisation at the current rates.
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

    /// Processes every event at or before `t_s` in time order (completions before arrivals
    /// at the same instant, so an arrival can use what a completion frees), then moves the
    /// clock to `t_s`.
    fn run_until(&mut self, t_s: f64) {
        loop {
            let completion = self.events.peek_time_s().filter(|&c| c <= t_s);
            let arrival = self.next_arrival_s().filter(|&a| a <= t_s);
            match (completion, arrival) {
                (Some(c), a) if a.is_none_or(|a| c <= a) => {
                    self.advance_clock_to(c);
                    if let Some(event) = self.events.pop() {
                        match event.kind {
                            EventKind::Completion { task, server } => self.complete(task, server),
                        }
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
        self.metrics_ready = true;
    }

    fn write_observation(&self, obs: &mut [f32]) {
        observation::write(self, obs);
    }
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

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        self.config.workload.fill(&mut self.rng, &mut self.tasks);
        self.records.clear();
        self.records.resize(self.tasks.len(), TaskRecord::NEW);
        for s in &mut self.servers {
            s.free = s.capacity;
            s.num_running = 0;
        }
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
                            let demand = &self.tasks[*i as usize].demand;
                            for (m, s) in row.iter_mut().zip(&self.servers) {
                                *m = s.fits_now(demand, nr);
                            }
                        }
                        None => row.fill(false),
                    }
                }
            }
            ActionMode::Slot => {
                for (m, slot) in mask.iter_mut().zip(&self.queue.slots) {
                    *m = slot.is_some_and(|i| {
                        let demand = &self.tasks[i as usize].demand;
                        self.servers.iter().any(|s| s.fits_now(demand, nr))
                    });
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
        self.tasks
            .iter()
            .zip(&self.records)
            .filter(|(_, rec)| rec.phase == TaskPhase::Finished)
            .map(|(spec, rec)| (rec.finish_s - spec.arrival_s) / spec.duration_s)
    }
}
