//! The mutable state of a cluster episode: servers, the event clock, the queue and per-task
//! records. Kept free of policy (rewards, observations) so that features such as failures,
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
    /// When it last left the queue (a migration keeps it).
    pub start_s: f64,
    pub finish_s: f64,
    /// When its current run began on its current server (a migration moves it), and when
    /// that run starts working (after a boot, a checkpoint read or a migration pause).
    pub run_start_s: f64,
    pub works_from_s: f64,
    /// Work (seconds on a speed-1 server) kept from earlier runs: their last checkpoint, or
    /// all of it across a migration.
    pub work_done_s: f64,
    /// Server it runs or ran on (`u32::MAX` before placement).
    pub server: u32,
    /// Position in the env's running list while `phase == Running`.
    pub running_pos: u32,
    /// When the current run ends (a completion event for another time is stale: the task
    /// was killed by a failure and restarted since).
    pub due_s: f64,
    /// GPUs held while running (bit `i` = GPU `i` of the server), with per-GPU tracking.
    pub gpus: u16,
    /// Times the task was killed by a server failure or preempted, and requeued.
    pub restarts: u32,
}

impl TaskRecord {
    pub const NEW: Self = Self {
        phase: TaskPhase::NotArrived,
        start_s: f64::NAN,
        finish_s: f64::NAN,
        run_start_s: f64::NAN,
        works_from_s: f64::NAN,
        work_done_s: 0.0,
        server: u32::MAX,
        running_pos: u32::MAX,
        due_s: f64::NAN,
        gpus: 0,
        restarts: 0,
    };
}

/// Most GPUs one server may have when GPUs are tracked one by one.
pub const MAX_GPUS: usize = 16;

/// One server: static shape and what is free now.
#[derive(Clone, Copy, Debug)]
pub struct ServerState {
    pub type_index: usize,
    pub speed: f64,
    pub capacity: [u32; MAX_RESOURCES],
    pub free: [u32; MAX_RESOURCES],
    pub num_running: u32,
    /// GPUs tracked one by one (0 without per-GPU tracking).
    pub num_gpus: u8,
    /// Free units of each GPU (first `num_gpus` entries).
    pub gpu_free: [u16; MAX_GPUS],
    /// Number of entirely free GPUs, and the largest free share of one GPU.
    pub full_gpus: u8,
    pub max_gpu_free: u16,
    /// Bit of the server's GPU model (0: no model).
    pub model_bit: u32,
    /// Lowest priority class allowed here (capacity reserved for critical work).
    pub min_priority: u8,
    /// False while failed.
    pub up: bool,
    /// True while powered down (idle timeout); a placement wakes it.
    pub off: bool,
    /// A woken server runs tasks from this time on (the end of its boot).
    pub ready_at_s: f64,
    /// Time of the pending power-down, if the server is idle and a timeout is configured.
    pub power_down_at_s: f64,
    /// Power drawn now (W).
    pub power_w: f64,
}

impl ServerState {
    pub fn new(type_index: usize, speed: f64, capacity: [u32; MAX_RESOURCES]) -> Self {
        Self {
            type_index,
            speed,
            capacity,
            free: capacity,
            num_running: 0,
            num_gpus: 0,
            gpu_free: [0; MAX_GPUS],
            full_gpus: 0,
            max_gpu_free: 0,
            model_bit: 0,
            min_priority: 0,
            up: true,
            off: false,
            ready_at_s: 0.0,
            power_down_at_s: f64::NAN,
            power_w: 0.0,
        }
    }

    /// Back to empty, up and powered on, with `units` free on each of its GPUs.
    pub fn clear(&mut self, units_per_gpu: u16) {
        self.free = self.capacity;
        self.num_running = 0;
        self.gpu_free = [0; MAX_GPUS];
        self.gpu_free[..usize::from(self.num_gpus)].fill(units_per_gpu);
        self.up = true;
        self.off = false;
        self.ready_at_s = 0.0;
        self.power_down_at_s = f64::NAN;
        self.power_w = 0.0;
        self.refresh_gpu_summary(units_per_gpu);
    }

    /// Recomputes `full_gpus` and `max_gpu_free` from `gpu_free`.
    pub fn refresh_gpu_summary(&mut self, units_per_gpu: u16) {
        let gpus = &self.gpu_free[..usize::from(self.num_gpus)];
        self.full_gpus = gpus.iter().filter(|&&g| g == units_per_gpu).count() as u8;
        self.max_gpu_free = gpus.iter().copied().max().unwrap_or(0);
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
/// A completion whose time no longer matches its task's `due_s` is stale (the task was
/// killed) and is ignored; likewise a power-down whose time no longer matches the server's
/// `power_down_at_s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Completion {
        task: TaskIndex,
        server: u32,
    },
    /// The server fails: its tasks are killed (requeued or dropped).
    Failure {
        server: u32,
    },
    /// The server is repaired and usable again.
    Repair {
        server: u32,
    },
    /// An idle server's timeout expires: it powers down.
    PowerDown {
        server: u32,
    },
    /// The monitoring interval of `[preemption] decide_every_s`: a decision for the
    /// scheduler, which may preempt or move running tasks on what it reads now.
    Tick,
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

    /// Keeps only the events whose kind passes `keep`.
    pub fn retain(&mut self, mut keep: impl FnMut(&EventKind) -> bool) {
        self.heap.retain(|e| keep(&e.kind));
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

/// Which backlog task moves into a visible slot when one frees up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SlotOrder {
    /// Arrival order (the backlog's head): DeepRM's and most simulators' choice.
    #[default]
    Fifo,
    /// The shortest estimated task waiting, so the policy sees the quick wins first.
    Shortest,
    /// Even-numbered slots refill in arrival order, odd-numbered ones with the shortest task:
    /// the policy sees both the oldest and the quickest work.
    Mixed,
}

/// The waiting tasks: `num_slots` visible slots, then a backlog of at most `backlog_cap`
/// tasks. Arrivals take the lowest empty slot, else the backlog tail, else are dropped; a
/// slot freed by a placement is refilled from the backlog as [`SlotOrder`] says. Running
/// sums over the backlog give the observation its summary without a scan.
#[derive(Clone, Debug)]
pub struct TaskQueue {
    pub slots: Vec<Option<TaskIndex>>,
    pub backlog: VecDeque<TaskIndex>,
    /// Which backlog task fills a freed slot.
    pub slot_order: SlotOrder,
    pub backlog_cap: usize,
    pub backlog_demand_sum: [u64; MAX_RESOURCES],
    pub backlog_estimate_sum_s: f64,
}

impl TaskQueue {
    pub fn new(num_slots: usize, backlog_cap: usize, slot_order: SlotOrder) -> Self {
        Self {
            slots: vec![None; num_slots],
            backlog: VecDeque::with_capacity(backlog_cap),
            slot_order,
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

    /// Removes the task in slot `k` and refills the slot from the backlog (its head, or its
    /// shortest task by estimate, earliest first among equals, as `slot_order` says for `k`).
    /// `tasks` gives the specs for the backlog summary.
    pub fn take(&mut self, k: usize, tasks: &[TaskSpec]) -> Option<TaskIndex> {
        let taken = self.slots[k].take()?;
        let shortest = match self.slot_order {
            SlotOrder::Fifo => false,
            SlotOrder::Shortest => true,
            SlotOrder::Mixed => k % 2 == 1,
        };
        let pick = match shortest {
            false => 0,
            true => (0..self.backlog.len())
                .min_by(|&a, &b| {
                    let (ta, tb) = (self.backlog[a], self.backlog[b]);
                    tasks[ta as usize]
                        .estimate_s
                        .total_cmp(&tasks[tb as usize].estimate_s)
                        .then(a.cmp(&b))
                })
                .unwrap_or(0),
        };
        if let Some(next) = self.backlog.remove(pick) {
            self.add_to_backlog_sums(&tasks[next as usize], -1.0);
            self.slots[k] = Some(next);
        }
        Some(taken)
    }

    /// Removes task `i` wherever it waits: a slot (refilled as [`take`](Self::take) does) or
    /// the backlog. False if `i` is not queued.
    pub fn remove(&mut self, i: TaskIndex, tasks: &[TaskSpec]) -> bool {
        if let Some(k) = self.slots.iter().position(|&s| s == Some(i)) {
            return self.take(k, tasks).is_some();
        }
        match self.backlog.iter().position(|&b| b == i) {
            Some(pos) => {
                self.backlog.remove(pos);
                self.add_to_backlog_sums(&tasks[i as usize], -1.0);
                true
            }
            None => false,
        }
    }

    /// Every queued task (slots, then backlog), with its slot if it has one.
    pub fn iter(&self) -> impl Iterator<Item = (TaskIndex, Option<usize>)> + '_ {
        let slots = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(k, s)| s.map(|i| (i, Some(k))));
        slots.chain(self.backlog.iter().map(|&i| (i, None)))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One slot, a backlog of lengths 5, 2, 9, 2 (in arrival order): FIFO refills the slot
    /// with 5, 2, 9, 2; shortest-first with 2, 2 (the earlier one first), 5, 9.
    #[test]
    fn freed_slots_refill_in_the_configured_order() {
        let tasks: Vec<TaskSpec> = [3.0, 5.0, 2.0, 9.0, 2.0]
            .iter()
            .enumerate()
            .map(|(i, &d)| TaskSpec::new(i as u64, i as f64, d, &[1]))
            .collect();
        for (order, expected) in [
            (SlotOrder::Fifo, [1, 2, 3, 4]),
            (SlotOrder::Shortest, [2, 4, 1, 3]),
            // Slot 0 is even: Mixed refills it in arrival order.
            (SlotOrder::Mixed, [1, 2, 3, 4]),
        ] {
            let mut queue = TaskQueue::new(1, 10, order);
            for (i, spec) in tasks.iter().enumerate() {
                queue.admit(i as TaskIndex, spec);
            }
            let mut seen = Vec::new();
            while queue.take(0, &tasks).is_some() {
                if let Some(next) = queue.slots[0] {
                    seen.push(next);
                }
            }
            assert_eq!(seen, expected, "{order:?}");
            assert_eq!(queue.backlog_demand_sum[0], 0);
        }
        // Two slots under Mixed: freeing slot 1 (odd) takes the shortest, slot 0 the oldest.
        let mut queue = TaskQueue::new(2, 10, SlotOrder::Mixed);
        for (i, spec) in tasks.iter().enumerate() {
            queue.admit(i as TaskIndex, spec);
        }
        // Slots hold tasks 0 and 1; the backlog is 2 (2 s), 3 (9 s), 4 (2 s).
        queue.take(1, &tasks);
        assert_eq!(queue.slots[1], Some(2));
        queue.take(0, &tasks);
        assert_eq!(queue.slots[0], Some(3));
    }
}
