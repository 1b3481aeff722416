//! Preemption and migration (`[preemption]`, see [`Preemption`]): the running tasks the policy
//! sees (its running rows), the actions on them, and what stopping or moving a task costs.
//!
//! Work is counted in seconds on a speed-1 server. A run that stops has done
//! `(now − works_from) × speed` of work; it keeps the work of its last checkpoint
//! ([`Preemption::checkpointed_work`]; all of it across a migration) and loses the rest
//! (`lost_work_s`). A failure stops runs the same way; without `[preemption]` nothing is
//! checkpointed, so a killed task restarts from scratch, as it always has.

use super::ClusterEnv;
use super::config::{ActionMode, KillPolicy, Preemption};
use super::index;
use super::schedule::RunEnd;
use super::state::{Admission, EventKind, TaskIndex, TaskPhase};
use crate::api::{EnvError, Transition};

/// A preempt or migrate action, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RunningAction {
    Preempt(TaskIndex),
    Migrate(TaskIndex, usize),
}

impl ClusterEnv {
    /// The running rows: running tasks whose run started last first (ties: the lower task
    /// index), at most `running_rows` of them; empty without `[preemption]`. The newest runs
    /// come first because they have the least work to lose. They are what the last
    /// observation showed: the actions of a step name the rows the policy saw.
    pub fn running_rows(&self) -> &[TaskIndex] {
        &self.rows
    }

    /// Recomputes the running rows from the running list, in place (no allocation once the
    /// buffer has grown): before every decision.
    pub(super) fn refresh_running_rows(&mut self) {
        let Some(p) = self.config.preemption else {
            return;
        };
        let mut rows = std::mem::take(&mut self.rows);
        rows.clear();
        // Room for every task of the episode at once, so the buffer never grows mid-episode.
        rows.reserve(self.tasks.len());
        rows.extend_from_slice(&self.running);
        rows.sort_unstable_by(|&a, &b| {
            let (ra, rb) = (&self.records[a as usize], &self.records[b as usize]);
            rb.run_start_s.total_cmp(&ra.run_start_s).then(a.cmp(&b))
        });
        rows.truncate(p.running_rows);
        self.rows = rows;
    }

    /// The first index of the preempt block, of the migrate block and of wait: the blocks
    /// follow the placements or slots, each present only when `[preemption]` offers it.
    pub(super) fn running_action_offsets(&self) -> (usize, usize, usize) {
        let choices = match self.config.action_mode {
            ActionMode::Placement => self.config.num_slots * self.servers.len(),
            ActionMode::Slot => self.config.num_slots,
        };
        let (preempt_len, migrate_len) = match self.config.preemption {
            Some(p) => (
                if p.preempt { p.running_rows } else { 0 },
                if p.migrate {
                    p.running_rows * self.servers.len()
                } else {
                    0
                },
            ),
            None => (0, 0),
        };
        let migrate_at = choices + preempt_len;
        (choices, migrate_at, migrate_at + migrate_len)
    }

    /// True when `action` lies in the preempt or migrate block.
    pub(super) fn is_running_action(&self, action: usize) -> bool {
        let (preempt_at, _, wait_at) = self.running_action_offsets();
        (preempt_at..wait_at).contains(&action)
    }

    /// Decodes an action of the preempt or migrate block into a legal move, or says why it
    /// is illegal.
    pub(super) fn feasible_running_action(
        &self,
        action: usize,
    ) -> Result<RunningAction, &'static str> {
        let (preempt_at, migrate_at, _) = self.running_action_offsets();
        let rows = self.running_rows();
        let row_task = |row: usize| {
            let i = rows
                .get(row)
                .copied()
                .filter(|&i| self.records[i as usize].phase == TaskPhase::Running)
                .ok_or("the running row is empty")?;
            self.stoppable(i).map(|()| i)
        };
        if action < migrate_at {
            return Ok(RunningAction::Preempt(row_task(action - preempt_at)?));
        }
        let num_servers = self.servers.len();
        let (row, server) = (
            (action - migrate_at) / num_servers,
            (action - migrate_at) % num_servers,
        );
        let task = row_task(row)?;
        self.migration_allowed(task, server)?;
        Ok(RunningAction::Migrate(task, server))
    }

    /// Why running task `i` may not be preempted or moved now: its run started at this
    /// instant (or starts later, on a booting server). Stopping a run that has done nothing
    /// gains nothing, and allowing it would let a policy preempt and place, or move a task to
    /// and fro, forever without the clock moving.
    fn stoppable(&self, i: TaskIndex) -> Result<(), &'static str> {
        if self.records[i as usize].run_start_s < self.now_s {
            Ok(())
        } else {
            Err("the task's run started at this instant")
        }
    }

    /// Why running task `i` may not move to server `m` now (a run that started now, its own
    /// server, or `m` cannot take it: capacity, GPUs, failure or reservation).
    fn migration_allowed(&self, i: TaskIndex, m: usize) -> Result<(), &'static str> {
        self.stoppable(i)?;
        if self.records[i as usize].server as usize == m {
            return Err("the task already runs on this server");
        }
        if !index::server_admits(&self.servers[m], &self.need(i), self.num_resources) {
            return Err(
                "the task cannot move to this server now (capacity, GPUs, failure or reservation)",
            );
        }
        Ok(())
    }

    /// Writes the mask of the preempt and migrate blocks (all of `mask` past the
    /// placements, wait excluded).
    pub(super) fn running_action_mask(&self, mask: &mut [bool]) {
        let Some(p) = self.config.preemption else {
            return;
        };
        let (preempt_at, migrate_at, wait_at) = self.running_action_offsets();
        let rows = self.running_rows();
        if p.preempt {
            for (row, m) in mask[preempt_at..migrate_at].iter_mut().enumerate() {
                *m = rows.get(row).is_some_and(|&i| self.stoppable(i).is_ok());
            }
        }
        if p.migrate {
            let num_servers = self.servers.len();
            let block = &mut mask[migrate_at..wait_at];
            for (row, cells) in block.chunks_exact_mut(num_servers).enumerate() {
                for (server, m) in cells.iter_mut().enumerate() {
                    *m = rows
                        .get(row)
                        .is_some_and(|&i| self.migration_allowed(i, server).is_ok());
                }
            }
        }
    }

    /// True when some preempt or migrate action is legal now.
    pub(super) fn any_running_action(&self) -> bool {
        let Some(p) = self.config.preemption else {
            return false;
        };
        if self.running.is_empty() {
            return false;
        }
        (p.preempt && self.rows.iter().any(|&i| self.stoppable(i).is_ok()))
            || (p.migrate
                && self.rows.iter().any(|&i| {
                    (0..self.servers.len()).any(|m| self.migration_allowed(i, m).is_ok())
                }))
    }

    pub(super) fn apply_running_action(&mut self, action: RunningAction) {
        match action {
            RunningAction::Preempt(i) => self.preempt(i),
            RunningAction::Migrate(i, m) => self.migrate(i, m),
        }
    }

    /// Work running task `i` would lose if it stopped now (seconds of speed-1 work): what it
    /// has done since its last checkpoint.
    pub fn work_at_risk_s(&self, i: TaskIndex) -> f64 {
        let (done, kept) = self.run_progress(i);
        done - kept
    }

    /// `(done, kept)`: the work task `i`'s current run has done, and how much of it its
    /// checkpoints keep.
    fn run_progress(&self, i: TaskIndex) -> (f64, f64) {
        let rec = &self.records[i as usize];
        let speed = self.servers[rec.server as usize].speed;
        let run_s = (self.now_s - rec.works_from_s).max(0.0);
        let done = run_s * speed;
        let kept = self
            .config
            .preemption
            .map_or(0.0, |p| p.checkpointed_work(run_s, speed).min(done));
        (done, kept)
    }

    /// Ends task `i`'s current run (`end` for the schedule), gives its resources back and
    /// books the work: kept (all of it with `keep_all`, else its checkpoint's) or lost.
    fn stop_run(&mut self, i: TaskIndex, end: RunEnd, keep_all: bool) {
        let (done, kept) = self.run_progress(i);
        let kept = if keep_all { done } else { kept };
        self.record_run_end(i, end);
        self.release(i);
        self.lost_work_s += done - kept;
        self.records[i as usize].work_done_s += kept;
    }

    /// A failure kills running task `i`: its run stops and the scenario's `on_kill` decides.
    pub(super) fn kill(&mut self, i: TaskIndex) {
        self.stop_run(i, RunEnd::Killed, false);
        self.num_killed += 1;
        match self.config.on_kill {
            KillPolicy::Requeue => self.requeue(i),
            KillPolicy::Drop => self.drop_task(i, true),
        }
    }

    /// Preempts running task `i`: its run stops, it keeps its checkpoint and waits again.
    pub(super) fn preempt(&mut self, i: TaskIndex) {
        self.stop_run(i, RunEnd::Preempted, false);
        self.num_preempted += 1;
        self.requeue(i);
    }

    /// Moves running task `i` to server `m` with all its work; it pauses for the migration
    /// (longer when it holds GPUs) and holds `m`'s resources from now.
    pub(super) fn migrate(&mut self, i: TaskIndex, m: usize) {
        let pause_s = self.migration_pause_s(i);
        // Stopping the run takes it off the running count; the new run puts it back.
        self.stop_run(i, RunEnd::Migrated, true);
        self.run_on(i, m, pause_s);
        self.census.num_running += 1;
        self.num_migrated += 1;
    }

    /// How long a migration pauses task `i`: `migration_s`, plus `gpu_migration_s` when it
    /// holds GPUs (0 without `[preemption]`).
    pub fn migration_pause_s(&self, i: TaskIndex) -> f64 {
        self.config.preemption.map_or(0.0, |p| {
            p.migration_s
                + if self.holds_gpus(i) {
                    p.gpu_migration_s
                } else {
                    0.0
                }
        })
    }

    /// True when task `i` asks for units of the `[gpu]` resource.
    pub(super) fn holds_gpus(&self, i: TaskIndex) -> bool {
        self.gpu_key()
            .is_some_and(|(g, _)| self.tasks[i as usize].demand[g] > 0)
    }

    /// Puts a stopped task back into the queue (lowest empty slot, else the backlog tail,
    /// else it is dropped).
    fn requeue(&mut self, i: TaskIndex) {
        self.records[i as usize].restarts += 1;
        let spec = self.tasks[i as usize];
        if self.queue.admit(i, &spec) == Admission::Dropped {
            self.drop_task(i, true);
        } else {
            self.records[i as usize].phase = TaskPhase::Queued;
            self.census.num_queued += 1;
        }
    }

    /// Preempts running task `index` (a [`RunningView::index`](super::RunningView::index)),
    /// whether or not it has a running row, as one step: how heuristics preempt. A policy
    /// acts through [`Env::step`](crate::api::Env::step).
    pub fn step_preempt(&mut self, index: u32, obs: &mut [f32]) -> Result<Transition, EnvError> {
        let refuse = |reason| EnvError::IllegalTask { index, reason };
        if !self.config.preemption.is_some_and(|p| p.preempt) {
            return Err(refuse("the scenario does not allow preemption"));
        }
        self.check_running(index).map_err(refuse)?;
        self.preempt(index);
        self.num_decisions += 1;
        Ok(self.finish_step(obs))
    }

    /// Moves running task `index` to server `server`, whether or not it has a running row,
    /// as one step: how heuristics migrate.
    pub fn step_migrate(
        &mut self,
        index: u32,
        server: usize,
        obs: &mut [f32],
    ) -> Result<Transition, EnvError> {
        let refuse = |reason| EnvError::IllegalTask { index, reason };
        if !self.config.preemption.is_some_and(|p| p.migrate) {
            return Err(refuse("the scenario does not allow migration"));
        }
        self.check_running(index).map_err(refuse)?;
        if server >= self.servers.len() {
            return Err(refuse("there is no such server"));
        }
        self.migration_allowed(index, server).map_err(refuse)?;
        self.migrate(index, server);
        self.num_decisions += 1;
        Ok(self.finish_step(obs))
    }

    fn check_running(&self, index: u32) -> Result<(), &'static str> {
        if self.terminated || self.truncated || self.end_pending {
            return Err("the episode is over");
        }
        match self.records.get(index as usize) {
            Some(rec) if rec.phase == TaskPhase::Running => self.stoppable(index),
            _ => Err("it is not running"),
        }
    }

    /// True when running task `index` may be preempted or moved now (its run did not start
    /// at this instant).
    pub fn can_stop(&self, index: u32) -> bool {
        self.check_running(index).is_ok()
    }

    /// The action that preempts running task `index` (`server: None`) or moves it to
    /// `server`, when the task has a running row and the scenario offers that action.
    pub fn running_action_index(&self, index: u32, server: Option<usize>) -> Option<usize> {
        let p = self.config.preemption?;
        let row = self.running_rows().iter().position(|&i| i == index)?;
        let (preempt_at, migrate_at, _) = self.running_action_offsets();
        match server {
            None if p.preempt => Some(preempt_at + row),
            Some(n) if p.migrate && n < self.servers.len() => {
                Some(migrate_at + row * self.servers.len() + n)
            }
            _ => None,
        }
    }

    /// True when running task `index` may move to server `server` now.
    pub fn can_migrate(&self, index: u32, server: usize) -> bool {
        server < self.servers.len()
            && self.check_running(index).is_ok()
            && self.migration_allowed(index, server).is_ok()
    }

    /// Schedules the next monitoring tick (`decide_every_s`) unless the workload is over:
    /// every task has arrived and none is left in the system.
    pub(super) fn arm_tick(&mut self) {
        let Some(every_s) = self.config.preemption.and_then(|p| p.decide_every_s) else {
            return;
        };
        let over = self.next_arrival == self.tasks.len()
            && self.census.num_queued + self.census.num_running == 0;
        if !over {
            self.events.push(self.now_s + every_s, EventKind::Tick);
        }
    }

    /// The scenario's preemption options, if any.
    pub fn preemption(&self) -> Option<Preemption> {
        self.config.preemption
    }
}
