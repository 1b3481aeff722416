//! The mutable state of a cluster episode: servers, the event clock, the queue and per-task
//! records. Kept free of policy (rewards, observations) so that the next issue's failures,
//! power states and reservations extend these types rather than the step logic.

use crate::workload::{MAX_RESOURCES, TaskSpec};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

/// Index of a task in the episode's workload (its arrival order).
pub type TaskIndex = u32;

/// Where a task is in its life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskPhase {
    NotArrived,
    Queued,
    Running,
    Finished,
    Dropped,
}

/// What happened to one task during the episode (times in seconds, NaN until known).
#[derive(Clone, Copy, Debug)]
pub struct TaskRecord {
    pub phase: TaskPhase,
    pub start_s: f64,
    pub finish_s: f64,
    /// Server it runs or ran on (`u32::MAX` before placement).
    pub server: u32,
    /// Position in the env's running list while `phase == Running`.
    pub running_pos: u32,
}

impl TaskRecord {
    pub const NEW: Self = Self {
        phase: TaskPhase::NotArrived,
        start_s: f64::NAN,
        finish_s: f64::NAN,
        server: u32::MAX,
        running_pos: u32::MAX,
    };
}

/// One server: static shape and what is free now.
#[derive(Clone, Copy, Debug)]
pub struct ServerState {
    pub type_index: usize,
    pub speed: f64,
    pub capacity: [u32; MAX_RESOURCES],
    pub free: [u32; MAX_RESOURCES],
    pub num_running: u32,
}

impl ServerState {
    pub fn new(type_index: usize, speed: f64, capacity: [u32; MAX_RESOURCES]) -> Self {
        Self {
            type_index,
            speed,
            capacity,
            free: capacity,
            num_running: 0,
        }
    }

    /// True when `demand` fits in the free capacity right now.
    #[inline]
    pub fn fits_now(&self, demand: &[u32; MAX_RESOURCES], num_resources: usize) -> bool {
        (0..num_resources).all(|r| demand[r] <= self.free[r])
    }

    /// True when `demand` fits on this server when it is empty.
    #[inline]
    pub fn fits_when_empty(&self, demand: &[u32; MAX_RESOURCES], num_resources: usize) -> bool {
        (0..num_resources).all(|r| demand[r] <= self.capacity[r])
    }
}

/// Something that happens at a known future time.
///
/// Only completions exist today. Issue 6 adds `Failure`/`Repair` (a server leaves and
/// rejoins; its running tasks are requeued or lost) and `BootDone` (a powered-down server
/// becomes usable); the clock, ordering and dispatch below are written to take them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Completion { task: TaskIndex, server: u32 },
}

#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub time_s: f64,
    /// Insertion order: breaks ties between events at the same instant deterministically.
    pub seq: u64,
    pub kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .time_s
            .total_cmp(&self.time_s)
            .then(other.seq.cmp(&self.seq))
    }
}

/// Future events, earliest first. Arrivals are not stored here: the workload is sorted by
/// arrival, so the env keeps a cursor into it instead.
#[derive(Clone, Debug, Default)]
pub struct EventQueue {
    heap: BinaryHeap<Event>,
    next_seq: u64,
}

impl EventQueue {
    pub fn clear(&mut self) {
        self.heap.clear();
        self.next_seq = 0;
    }

    pub fn push(&mut self, time_s: f64, kind: EventKind) {
        self.heap.push(Event {
            time_s,
            seq: self.next_seq,
            kind,
        });
        self.next_seq += 1;
    }

    pub fn peek_time_s(&self) -> Option<f64> {
        self.heap.peek().map(|e| e.time_s)
    }

    pub fn pop(&mut self) -> Option<Event> {
        self.heap.pop()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// Where an arriving task went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Slot(usize),
    Backlog,
    Dropped,
}

/// The waiting tasks: `num_slots` visible slots, then a FIFO backlog of at most
/// `backlog_cap` tasks. Arrivals take the lowest empty slot, else the backlog tail, else
/// are dropped; a slot freed by a placement is refilled from the backlog head. Running
/// sums over the backlog give the observation its summary without a scan.
#[derive(Clone, Debug)]
pub struct TaskQueue {
    pub slots: Vec<Option<TaskIndex>>,
    pub backlog: VecDeque<TaskIndex>,
    pub backlog_cap: usize,
    pub backlog_demand_sum: [u64; MAX_RESOURCES],
    pub backlog_estimate_sum_s: f64,
}

impl TaskQueue {
    pub fn new(num_slots: usize, backlog_cap: usize) -> Self {
        Self {
            slots: vec![None; num_slots],
            backlog: VecDeque::with_capacity(backlog_cap),
            backlog_cap,
            backlog_demand_sum: [0; MAX_RESOURCES],
            backlog_estimate_sum_s: 0.0,
        }
    }

    pub fn clear(&mut self) {
        self.slots.fill(None);
        self.backlog.clear();
        self.backlog_demand_sum = [0; MAX_RESOURCES];
        self.backlog_estimate_sum_s = 0.0;
    }

    /// Queued tasks: occupied slots plus the backlog.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count() + self.backlog.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn admit(&mut self, task: TaskIndex, spec: &TaskSpec) -> Admission {
        if let Some(k) = self.slots.iter().position(Option::is_none) {
            self.slots[k] = Some(task);
            Admission::Slot(k)
        } else if self.backlog.len() < self.backlog_cap {
            self.backlog.push_back(task);
            self.add_to_backlog_sums(spec, 1.0);
            Admission::Backlog
        } else {
            Admission::Dropped
        }
    }

    /// Removes the task in slot `k` and refills the slot from the backlog head.
    /// `tasks` gives the specs for the backlog summary.
    pub fn take(&mut self, k: usize, tasks: &[TaskSpec]) -> Option<TaskIndex> {
        let taken = self.slots[k].take()?;
        if let Some(next) = self.backlog.pop_front() {
            self.add_to_backlog_sums(&tasks[next as usize], -1.0);
            self.slots[k] = Some(next);
        }
        Some(taken)
    }

    fn add_to_backlog_sums(&mut self, spec: &TaskSpec, sign: f64) {
        for (sum, &d) in self.backlog_demand_sum.iter_mut().zip(&spec.demand) {
            if sign > 0.0 {
                *sum += u64::from(d);
            } else {
                *sum -= u64::from(d);
            }
        }
        if self.backlog.is_empty() {
            // Reset instead of subtracting so that float drift cannot accumulate.
            self.backlog_estimate_sum_s = 0.0;
        } else {
            self.backlog_estimate_sum_s += sign * spec.estimate_s;
        }
    }
}
