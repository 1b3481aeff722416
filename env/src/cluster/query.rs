//! The read-only state API: what a real scheduler could see (estimates only, never the true
//! duration of an unfinished task, never a task that has not arrived). The heuristics read
//! it only through `schedulers/snapshot.rs`, the audited surface.

use super::ClusterEnv;
use super::config::{ActionMode, ClusterConfig, Discipline, ServerType};
use super::index;
use super::views::{QueuedView, RunningView, ServerView, SlotView};
use crate::api::Env;

/// Arrival rates (tasks per second) seen so far, from the scenario's forecast windows (see
/// [`ClusterEnv::arrival_forecast`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArrivalForecast {
    /// Over the last `window_s`.
    pub recent: f64,
    /// Over the last `10 × window_s`.
    pub longer: f64,
    /// Over the `window_s` that followed this moment one `period_s` ago: what the same time
    /// of the last period brought next (the diurnal forecast). Before one period has passed,
    /// the `longer` rate stands in.
    pub seasonal: f64,
}

impl ClusterEnv {
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// The arrival-rate forecast of `[observation] forecast` (`None` without it). It counts
    /// only tasks that have arrived, so it never sees the future. Windows that reach back
    /// before the episode's start count the time since the start instead (a window of the
    /// first 30 s of an episode is 30 s long).
    pub fn arrival_forecast(&self) -> Option<ArrivalForecast> {
        let forecast = self.config.forecast?;
        let arrived = &self.tasks[..self.next_arrival];
        // Tasks that arrived within (from, to], all in the past.
        let count = |from: f64, to: f64| {
            let after = |t: f64| arrived.partition_point(|task| task.arrival_s <= t);
            after(to).saturating_sub(after(from))
        };
        let (now, start) = (self.now_s, self.episode_start_s);
        let rate = |length: f64| {
            let from = (now - length).max(start);
            match now - from {
                span if span > 0.0 => count(from, now) as f64 / span,
                _ => 0.0,
            }
        };
        let longer = rate(10.0 * forecast.window_s);
        let ago = now - forecast.period_s;
        let seasonal = if ago >= start {
            let to = (ago + forecast.window_s).min(now);
            count(ago, to) as f64 / (to - ago)
        } else {
            longer
        };
        Some(ArrivalForecast {
            recent: rate(forecast.window_s),
            longer,
            seasonal,
        })
    }

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

    /// Every queued task, visible or in the backlog (slots first, then the backlog in
    /// arrival order): what a batch scheduler reads; the slots are only what a policy sees.
    pub fn queued(&self) -> impl Iterator<Item = QueuedView<'_>> + '_ {
        self.queue.iter().map(move |(i, slot)| {
            let spec = &self.tasks[i as usize];
            QueuedView {
                index: i,
                slot,
                task_id: spec.id,
                arrival_s: spec.arrival_s,
                demand: &spec.demand[..self.num_resources],
                estimate_s: spec.estimate_s,
                priority: spec.priority,
                deadline_s: spec.deadline_s,
                fits_now: self.fits_somewhere_now(i),
            }
        })
    }

    /// What choosing a task means now (see [`Discipline`]).
    pub fn discipline(&self) -> Discipline {
        self.config.discipline
    }

    /// Switches the discipline for the following steps (evaluation runs a scheduler such as
    /// `sjf+easy` under its own discipline on any slot-mode scenario).
    pub fn set_discipline(&mut self, discipline: Discipline) {
        self.config.discipline = discipline;
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
                index: i,
                task_id: spec.id,
                server,
                demand: &spec.demand[..self.num_resources],
                start_s: rec.run_start_s,
                estimated_finish_s: self.estimated_finish_s(i),
                priority: spec.priority,
                work_at_risk_s: self.work_at_risk_s(i),
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

    /// GPU models allowed to the task in slot `k` (bit set over [`GpuConfig::models`](super::config::GpuConfig::models); 0 =
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

    /// The wait action (legal unless [`wait_allowed`](Self::wait_allowed) says otherwise).
    pub fn wait_action(&self) -> usize {
        self.action_space().n - 1
    }

    /// False while the queue's hold limit forbids waiting (a visible task that fits some
    /// server now has waited `hold_limit_s` or longer), under every discipline, and under a
    /// commit discipline while tasks are queued and none runs (then waiting would wait for
    /// nothing).
    pub fn wait_allowed(&self) -> bool {
        // Under a commit discipline waiting for the next event is a choice (RLScheduler's
        // "skip"); with nothing running there may be none to wait for, and a queued task must
        // be chosen.
        if self.config.discipline.commits() && !self.queue.is_empty() && self.running.is_empty() {
            return false;
        }
        let Some(limit) = self.config.hold_limit_s else {
            return true;
        };
        !self.queue.slots.iter().flatten().any(|&i| {
            self.now_s - self.tasks[i as usize].arrival_s >= limit && self.fits_somewhere_now(i)
        })
    }

    /// The server the placement rule picks for slot `k` now.
    pub fn chosen_server(&self, k: usize) -> Option<usize> {
        let index = (*self.queue.slots.get(k)?)?;
        self.rule_server(&self.need(index))
    }
}
