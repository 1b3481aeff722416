//! What the env shows outside itself: [`SlotView`], [`ServerView`] and [`RunningView`] (a
//! scheduler's view: estimates only, never a true duration), and the [`Census`] of task
//! phases that checks compare with a recount.

use super::state::{TaskPhase, TaskRecord};
use crate::workload::TaskSpec;

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

/// A queued task anywhere in the queue (a visible slot or the backlog), as a batch scheduler
/// sees it: estimates only.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QueuedView<'a> {
    /// The task's handle for [`ClusterEnv::step_task`](super::ClusterEnv::step_task): its
    /// index in the episode's workload (arrival order).
    pub index: u32,
    /// Its visible slot, `None` in the backlog.
    pub slot: Option<usize>,
    pub task_id: u64,
    pub arrival_s: f64,
    pub demand: &'a [u32],
    pub estimate_s: f64,
    pub priority: u8,
    pub deadline_s: Option<f64>,
    /// True when it can start on some server now.
    pub fits_now: bool,
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
    /// The env's handle for preempting or moving it ([`ClusterEnv::step_preempt`](super::ClusterEnv::step_preempt)).
    pub index: u32,
    pub task_id: u64,
    pub server: usize,
    pub demand: &'a [u32],
    pub start_s: f64,
    pub estimated_finish_s: f64,
    pub priority: u8,
    /// Work a preemption now would lose: done since its last checkpoint (speed-1 s).
    pub work_at_risk_s: f64,
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
