//! The audited surface: everything a heuristic may know about the env, and the only code in
//! `schedulers/` that reads an env for a heuristic.
//!
//! A [`Snapshot`] holds exactly what a real scheduler could know — queued tasks with their
//! runtime *estimates*, servers' free capacity, running tasks' *estimated* finish times and
//! the placements that are feasible right now with the action index of each — and nothing
//! else: **no future arrivals, no true durations**. Heuristics (`Rule`s in `rules.rs`) are pure
//! functions of a snapshot, so unit tests build snapshots by hand instead of driving a
//! simulator into a state; `rules.rs` never names an env type (a test below checks it).
//!
//! To audit what heuristics see, read this file: [`Snapshot::fill`] is where the env is
//! read, through these accessors and nothing else:
//!
//! - cluster (`cluster/query.rs`): `now_s`, `num_resources`, `num_slots`, `num_servers`,
//!   `wait_action`, `wait_allowed`,
//!   `action_mode`, `slot` (a [`SlotView`]: estimate, no duration), `server` (capacity, free
//!   units, speed), `health` (the monitoring reading), `running` (estimated finish times,
//!   work at risk), `fits`, `action_index`,
//!   `chosen_server`, `slot_action_index`, `preemption` (the scenario's options),
//!   `can_migrate`, `can_stop`, `running_action_index`, `migration_pause_s`;
//! - DeepRM (`deeprm.rs`, "State API for schedulers"): `now_steps`, `num_resources`,
//!   `num_slots`, `wait_action`, `wait_allowed`, `slot`, `capacity`, `free_at(0)`, `running`,
//!   `fits_now`, `action_index`.
//!
//! Those accessors show only tasks that have arrived (the visible slots and the running
//! list), and report every task's length as its estimate.

use crate::cluster::{ActionMode, ClusterEnv, SlotView};
use crate::deeprm::DeepRmEnv;
use crate::scenario::ScenarioEnv;
use crate::workload::MAX_RESOURCES;

/// A task waiting in a visible slot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QueuedTask {
    pub slot: usize,
    pub task_id: u64,
    pub arrival_s: f64,
    /// Integer units per resource (entries past the scenario's resource count are 0).
    pub demand: [u32; MAX_RESOURCES],
    /// Runtime estimate on a speed-1 server.
    pub estimate_s: f64,
    /// Priority class, 0 = lowest.
    pub priority: u8,
    pub deadline_s: Option<f64>,
}

impl From<SlotView<'_>> for QueuedTask {
    fn from(s: SlotView<'_>) -> Self {
        Self {
            slot: s.slot,
            task_id: s.task_id,
            arrival_s: s.arrival_s,
            demand: padded(s.demand),
            estimate_s: s.estimate_s,
            priority: s.priority,
            deadline_s: s.deadline_s,
        }
    }
}

/// A queued task anywhere in the queue (visible slot or backlog), as the whole-queue
/// batch schedulers see it (`priority.rs`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WaitingTask {
    /// The env's handle for choosing it ([`Decision::Task`](super::Decision::Task)).
    pub index: u32,
    pub arrival_s: f64,
    pub estimate_s: f64,
    /// Demand of the first resource (processors, for HPC traces).
    pub first_demand: u32,
    /// True when it can start on some server now.
    pub fits_now: bool,
    /// The action that chooses it now, when it sits in a visible slot and may be chosen.
    pub action: Option<usize>,
}

impl WaitingTask {
    /// Size for the HPC priority formulas: the first resource's demand, at least 1.
    pub fn size(&self) -> f64 {
        f64::from(self.first_demand.max(1))
    }

    /// Refills `out` with every queued task of `env` and returns the env's time (a DeepRM
    /// env shows its visible slots only).
    pub fn fill_queue(out: &mut Vec<WaitingTask>, env: &ScenarioEnv) -> f64 {
        out.clear();
        match env {
            ScenarioEnv::Cluster(env) => {
                let commits = env.discipline().commits();
                out.extend(env.queued().map(|t| WaitingTask {
                    index: t.index,
                    arrival_s: t.arrival_s,
                    estimate_s: t.estimate_s,
                    first_demand: t.demand.first().copied().unwrap_or(0),
                    fits_now: t.fits_now,
                    action: t.slot.and_then(|k| {
                        if commits {
                            Some(k)
                        } else {
                            env.slot_action_index(k)
                        }
                    }),
                }));
                env.now_s()
            }
            ScenarioEnv::DeepRm(env) => {
                out.extend((0..env.num_slots()).filter_map(|k| {
                    let slot = env.slot(k)?;
                    let fits_now = env.fits_now(k);
                    Some(WaitingTask {
                        index: k as u32,
                        arrival_s: slot.arrival_s,
                        estimate_s: slot.estimate_s,
                        first_demand: slot.demand.first().copied().unwrap_or(0),
                        fits_now,
                        action: if fits_now { env.action_index(k) } else { None },
                    })
                }));
                f64::from(env.now_steps())
            }
        }
    }
}

/// A server's shape and what is free on it now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServerInfo {
    pub capacity: [u32; MAX_RESOURCES],
    pub free: [u32; MAX_RESOURCES],
    pub speed: f64,
    /// The monitoring reading in `[0, 1]` that rises before announced failures (0 without
    /// `[failures] health`).
    pub health: f64,
}

/// A task holding resources on a server until its *estimated* finish time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunningTask {
    /// The env's handle for preempting or moving it ([`Decision::Preempt`](super::Decision::Preempt)).
    pub index: u32,
    pub server: usize,
    pub demand: [u32; MAX_RESOURCES],
    pub estimated_finish_s: f64,
    pub priority: u8,
    /// When its current run started.
    pub started_s: f64,
    /// Work a preemption now would lose (speed-1 s since its last checkpoint).
    pub at_risk_s: f64,
    /// The action that preempts it, when it has a running row (`[preemption]`).
    pub preempt_action: Option<usize>,
    /// False while it may not be preempted or moved (its run started at this instant).
    pub can_stop: bool,
}

impl RunningTask {
    /// A task that started at 0 with nothing at risk (hand-built snapshots).
    pub fn new(index: u32, server: usize, demand: &[u32], estimated_finish_s: f64) -> Self {
        Self {
            index,
            server,
            demand: padded(demand),
            estimated_finish_s,
            priority: 0,
            started_s: 0.0,
            at_risk_s: 0.0,
            preempt_action: None,
            can_stop: true,
        }
    }
}

/// A migration the env would carry out now: move `running[running]` to `servers[server]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Move {
    pub running: usize,
    pub server: usize,
    /// The action that makes the move, when the task has a running row.
    pub action: Option<usize>,
    /// How long the move pauses the task.
    pub pause_s: f64,
}

/// A placement that the env would carry out now: start `tasks[task]` on `servers[server]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub task: usize,
    pub server: usize,
    pub action: usize,
}

/// The scheduler-facing state at one decision (see the module docs).
///
/// Invariants the heuristics rely on: `tasks` ascend by slot; `placements` ascend by
/// (slot, server), so "the first best placement" means the lowest slot, then the lowest
/// server.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub now_s: f64,
    pub num_resources: usize,
    pub tasks: Vec<QueuedTask>,
    pub servers: Vec<ServerInfo>,
    pub running: Vec<RunningTask>,
    pub placements: Vec<Placement>,
    /// May a scheduler preempt running tasks, or move them (`[preemption]`)?
    pub can_preempt: bool,
    pub can_migrate: bool,
    /// Every migration possible now, when `can_migrate` (ascending by running task, server).
    pub moves: Vec<Move>,
    pub wait_action: usize,
    /// False when the env forbids waiting now (a hold limit): a rule that would wait starts
    /// the longest-waiting placeable task instead (see `Heuristic::action_in`).
    pub wait_allowed: bool,
    /// Under a commit discipline, the action that chooses the oldest visible task whether or
    /// not it fits now (what a rule does when it would wait but may not).
    pub commit_fallback: Option<usize>,
    /// Alignment scores (Packer, Tetris) in raw units instead of fractions of each server's
    /// capacity: set for DeepRM, whose Packer dots raw free units with raw demands.
    pub raw_units: bool,
}

/// `values` padded with zeros to [`MAX_RESOURCES`].
pub(crate) fn padded(values: &[u32]) -> [u32; MAX_RESOURCES] {
    let mut out = [0; MAX_RESOURCES];
    out[..values.len()].copy_from_slice(values);
    out
}

impl Snapshot {
    /// Refills `self` from `env`, reusing its buffers.
    ///
    /// Cluster scenarios: in placement mode every (slot, server) where the task fits now is
    /// a placement; in slot mode the server is the env's placement rule's choice. DeepRM:
    /// one server whose free capacity is the grid's offset 0, and a slot is a placement only
    /// when its job fits *now for its whole length* (DeepRM's heuristics never reserve a
    /// future start).
    pub fn fill(&mut self, env: &ScenarioEnv) {
        self.tasks.clear();
        self.servers.clear();
        self.running.clear();
        self.placements.clear();
        self.moves.clear();
        self.can_preempt = false;
        self.can_migrate = false;
        match env {
            ScenarioEnv::Cluster(env) => self.fill_cluster(env),
            ScenarioEnv::DeepRm(env) => self.fill_deeprm(env),
        }
    }

    fn fill_cluster(&mut self, env: &ClusterEnv) {
        self.now_s = env.now_s();
        self.num_resources = env.num_resources();
        self.wait_action = env.wait_action();
        self.wait_allowed = env.wait_allowed();
        self.raw_units = false;
        self.tasks.extend(
            (0..env.num_slots())
                .filter_map(|k| env.slot(k))
                .map(QueuedTask::from),
        );
        self.commit_fallback = None;
        if env.discipline().commits() && env.action_mode() == ActionMode::Slot {
            self.commit_fallback = self.oldest_task().map(|t| self.tasks[t].slot);
        }
        self.servers.extend((0..env.num_servers()).map(|n| {
            let s = env.server(n);
            ServerInfo {
                capacity: padded(s.capacity),
                free: padded(s.free),
                speed: s.speed,
                health: env.health(n),
            }
        }));
        self.running.extend(env.running().map(|r| RunningTask {
            index: r.index,
            server: r.server,
            demand: padded(r.demand),
            estimated_finish_s: r.estimated_finish_s,
            priority: r.priority,
            started_s: r.start_s,
            at_risk_s: r.work_at_risk_s,
            preempt_action: env.running_action_index(r.index, None),
            can_stop: env.can_stop(r.index),
        }));
        if let Some(p) = env.preemption() {
            self.can_preempt = p.preempt;
            self.can_migrate = p.migrate;
        }
        if self.can_migrate {
            for (j, r) in self.running.iter().enumerate() {
                for n in 0..self.servers.len() {
                    if env.can_migrate(r.index, n) {
                        self.moves.push(Move {
                            running: j,
                            server: n,
                            action: env.running_action_index(r.index, Some(n)),
                            pause_s: env.migration_pause_s(r.index),
                        });
                    }
                }
            }
        }
        for (t, task) in self.tasks.iter().enumerate() {
            match env.action_mode() {
                ActionMode::Placement => {
                    for n in 0..self.servers.len() {
                        if env.fits(task.slot, n) {
                            let action = env.action_index(task.slot, n).unwrap_or(self.wait_action);
                            self.placements.push(Placement {
                                task: t,
                                server: n,
                                action,
                            });
                        }
                    }
                }
                ActionMode::Slot => {
                    if let (Some(n), Some(action)) = (
                        env.chosen_server(task.slot),
                        env.slot_action_index(task.slot),
                    ) {
                        self.placements.push(Placement {
                            task: t,
                            server: n,
                            action,
                        });
                    }
                }
            }
        }
    }

    fn fill_deeprm(&mut self, env: &DeepRmEnv) {
        self.now_s = f64::from(env.now_steps());
        self.num_resources = env.num_resources();
        self.wait_action = env.wait_action();
        self.wait_allowed = env.wait_allowed();
        self.raw_units = true;
        self.commit_fallback = None;
        self.tasks.extend(
            (0..env.num_slots())
                .filter_map(|k| env.slot(k))
                .map(QueuedTask::from),
        );
        self.servers.push(ServerInfo {
            capacity: padded(env.capacity()),
            free: padded(env.free_at(0)),
            speed: 1.0,
            health: 0.0,
        });
        self.running.extend(env.running().map(|r| RunningTask {
            index: r.index,
            server: 0,
            demand: padded(r.demand),
            estimated_finish_s: r.estimated_finish_s,
            priority: r.priority,
            started_s: r.start_s,
            at_risk_s: 0.0,
            preempt_action: None,
            can_stop: false,
        }));
        for (t, task) in self.tasks.iter().enumerate() {
            if env.fits_now(task.slot) {
                let action = env.action_index(task.slot).unwrap_or(self.wait_action);
                self.placements.push(Placement {
                    task: t,
                    server: 0,
                    action,
                });
            }
        }
    }

    /// A hand-built snapshot for tests and examples: placement-mode actions
    /// (`slot × num_servers + server`, wait last) with `num_slots` slots, and every
    /// (task, server) where the demand fits in the free capacity as a placement.
    pub fn by_hand(
        now_s: f64,
        num_resources: usize,
        num_slots: usize,
        tasks: Vec<QueuedTask>,
        servers: Vec<ServerInfo>,
        running: Vec<RunningTask>,
    ) -> Self {
        let num_servers = servers.len();
        let mut placements = Vec::new();
        for (t, task) in tasks.iter().enumerate() {
            for (n, server) in servers.iter().enumerate() {
                if fits(&task.demand, &server.free, num_resources) {
                    placements.push(Placement {
                        task: t,
                        server: n,
                        action: task.slot * num_servers + n,
                    });
                }
            }
        }
        Self {
            now_s,
            num_resources,
            tasks,
            servers,
            running,
            placements,
            can_preempt: false,
            can_migrate: false,
            moves: Vec::new(),
            wait_action: num_slots * num_servers,
            wait_allowed: true,
            commit_fallback: None,
            raw_units: false,
        }
    }

    /// The task's waiting time so far.
    pub fn waiting_s(&self, task: usize) -> f64 {
        self.now_s - self.tasks[task].arrival_s
    }

    /// First-come-first-served order of two queued tasks: arrival, then task id.
    pub fn arrival_order(&self, a: usize, b: usize) -> std::cmp::Ordering {
        let (ta, tb) = (&self.tasks[a], &self.tasks[b]);
        ta.arrival_s
            .total_cmp(&tb.arrival_s)
            .then(ta.task_id.cmp(&tb.task_id))
    }

    /// The queued task that arrived first (ties: lower task id, then lower slot).
    pub fn oldest_task(&self) -> Option<usize> {
        (0..self.tasks.len()).min_by(|&a, &b| self.arrival_order(a, b))
    }

    /// Task indices in first-come-first-served order (arrival, then task id).
    pub fn fcfs_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.tasks.len()).collect();
        order.sort_by(|&a, &b| self.arrival_order(a, b));
        order
    }

    /// What server `n` would have free after taking `demand`: Σ over the resources it has of
    /// free / capacity (best fit's key; lower is tighter).
    pub fn leftover_after(&self, n: usize, demand: &[u32; MAX_RESOURCES]) -> f64 {
        let server = &self.servers[n];
        (0..self.num_resources)
            .filter(|&r| server.capacity[r] > 0)
            .map(|r| {
                f64::from(server.free[r].saturating_sub(demand[r])) / f64::from(server.capacity[r])
            })
            .sum()
    }

    /// The first placement of `task` (its lowest feasible server), if any.
    pub fn first_placement_of(&self, task: usize) -> Option<usize> {
        self.placements.iter().position(|p| p.task == task)
    }
}

/// True when `demand` fits in `free` on the first `num_resources` resources.
pub fn fits(
    demand: &[u32; MAX_RESOURCES],
    free: &[u32; MAX_RESOURCES],
    num_resources: usize,
) -> bool {
    (0..num_resources).all(|r| demand[r] <= free[r])
}

#[cfg(test)]
mod tests {
    /// The heuristics must reach the env only through this file.
    #[test]
    fn rules_never_name_an_env_type() {
        let rules = include_str!("rules.rs");
        for name in [
            "ScenarioEnv",
            "ClusterEnv",
            "DeepRmEnv",
            "crate::cluster",
            "crate::deeprm",
        ] {
            assert!(!rules.contains(name), "rules.rs names `{name}`");
        }
    }
}
