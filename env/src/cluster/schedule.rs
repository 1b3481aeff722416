//! The schedule recorder: off by default, and then it costs one branch per task run and per
//! failure. Switched on ([`ClusterEnv::record_schedule`]), it keeps every run of every task
//! (server, GPUs, start, end, how it ended) and every interval a server was down, for Gantt
//! charts; [`ClusterEnv::schedule`] returns the episode so far. DeepRM envs fill the same
//! types from their own state (`deeprm/schedule.rs`), with one machine of unit resources.

use super::ClusterEnv;
use super::state::TaskIndex;
use crate::workload::MAX_RESOURCES;

/// How a recorded run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEnd {
    Finished,
    /// Its server failed; the task was requeued or dropped (the scenario's `on_kill`).
    Killed,
    /// A scheduler preempted it; the task was requeued (`[preemption]`).
    Preempted,
    /// A scheduler moved it to another server, where its next run continues its work.
    Migrated,
    /// Still running when the schedule was read (the episode's end, or a truncation).
    Unfinished,
    /// Still waiting when the schedule was read (DeepRM only: a queued job, or one reserved
    /// to start later): `start_s` = `end_s` = the time it was read, so only the wait shows.
    NotStarted,
}

/// One run of a task on a server.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskRun {
    /// Index of the task in the episode's arrival order.
    pub task: usize,
    /// The task's user-facing id (the CSV/trace id, or the generation index).
    pub task_id: u64,
    pub priority: u8,
    pub server: usize,
    /// GPUs held (bit `i` = GPU `i` of the server), with per-GPU tracking; 0 otherwise.
    pub gpus: u16,
    /// Units held of each resource (the task's demand).
    pub demand: [u32; MAX_RESOURCES],
    /// Since when the task waited for this run: its arrival, or the end of its previous run
    /// (a kill, a preemption, or the migration that started this run).
    pub queued_s: f64,
    pub start_s: f64,
    pub end_s: f64,
    pub end: RunEnd,
}

/// A time a server was down after a failure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DownInterval {
    pub server: usize,
    pub start_s: f64,
    /// The repair, or the time the schedule was read if the server was still down.
    pub end_s: f64,
}

/// One episode's schedule: runs in the order they ended (still-running ones last, by
/// start), down intervals in the order the failures happened.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schedule {
    pub num_servers: usize,
    /// GPUs of each server with per-GPU tracking (empty without it).
    pub gpus_per_server: Vec<u8>,
    /// The clock when the schedule was read.
    pub now_s: f64,
    pub runs: Vec<TaskRun>,
    pub downs: Vec<DownInterval>,
    /// DeepRM's single machine: each resource's name and units, drawn as one lane per
    /// resource instead of server lanes; empty for clusters.
    pub machine_units: Vec<(String, u32)>,
}

impl ClusterEnv {
    /// Starts (or stops) recording the schedule from the next reset on; off by default.
    pub fn record_schedule(&mut self, on: bool) {
        self.schedule = on.then(Box::default);
    }

    /// The schedule recorded so far this episode (`None` when not recording): runs still
    /// going and servers still down are cut at the current time.
    pub fn schedule(&self) -> Option<Schedule> {
        let log = self.schedule.as_deref()?;
        let mut out = log.clone();
        out.num_servers = self.servers.len();
        out.gpus_per_server = if self.gpu_key().is_some() {
            self.servers.iter().map(|s| s.num_gpus).collect()
        } else {
            Vec::new()
        };
        out.now_s = self.now_s;
        let mut open: Vec<TaskRun> = self
            .running
            .iter()
            .map(|&i| self.run_of(log, i, RunEnd::Unfinished))
            .collect();
        open.sort_by(|a, b| a.start_s.total_cmp(&b.start_s).then(a.task.cmp(&b.task)));
        out.runs.extend(open);
        for down in &mut out.downs {
            if down.end_s.is_nan() {
                down.end_s = self.now_s;
            }
        }
        Some(out)
    }

    /// Called when task `i`'s run ends now (before its resources are released).
    pub(super) fn record_run_end(&mut self, i: TaskIndex, end: RunEnd) {
        if let Some(mut log) = self.schedule.take() {
            let run = self.run_of(&log, i, end);
            log.runs.push(run);
            self.schedule = Some(log);
        }
    }

    /// Called when server `n` fails (`up`: false) or is repaired (`up`: true).
    pub(super) fn record_server(&mut self, n: usize, up: bool) {
        let now_s = self.now_s;
        let Some(log) = self.schedule.as_deref_mut() else {
            return;
        };
        if up {
            if let Some(down) = log
                .downs
                .iter_mut()
                .rev()
                .find(|d| d.server == n && d.end_s.is_nan())
            {
                down.end_s = now_s;
            }
        } else {
            log.downs.push(DownInterval {
                server: n,
                start_s: now_s,
                end_s: f64::NAN,
            });
        }
    }

    /// Clears the recorded episode (on reset), keeping the recorder on.
    pub(super) fn clear_schedule(&mut self) {
        if let Some(log) = self.schedule.as_deref_mut() {
            log.runs.clear();
            log.downs.clear();
        }
    }

    /// Task `i`'s current run as it stands now, ended by `end`.
    fn run_of(&self, log: &Schedule, i: TaskIndex, end: RunEnd) -> TaskRun {
        let spec = &self.tasks[i as usize];
        let rec = &self.records[i as usize];
        let queued_s = log
            .runs
            .iter()
            .rev()
            .find(|r| r.task == i as usize)
            .map_or(spec.arrival_s, |r| r.end_s);
        // A server still booting may hold a task whose start lies ahead of the clock.
        let end_s = match end {
            RunEnd::Killed | RunEnd::Preempted | RunEnd::Migrated => self.now_s,
            _ => self.now_s.max(rec.run_start_s),
        };
        TaskRun {
            task: i as usize,
            task_id: spec.id,
            priority: spec.priority,
            server: rec.server as usize,
            gpus: rec.gpus,
            demand: spec.demand,
            queued_s,
            start_s: rec.run_start_s.min(end_s),
            end_s,
            end,
        }
    }
}
