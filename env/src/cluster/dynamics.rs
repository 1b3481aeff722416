//! Dynamics: the event clock (arrivals, completions, server events in time order), cost and
//! utilisation accrual, waits, episode end and the skip to the next real decision.

use super::ClusterEnv;
use super::config::TimeMode;
use super::observation;
use super::power::JOULES_PER_KWH;
use super::schedule::RunEnd;
use super::state::{Admission, EventKind, TaskIndex, TaskPhase};
use super::stats;
use crate::api::Transition;

impl ClusterEnv {
    pub(super) fn arrive(&mut self, i: TaskIndex) {
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
            self.presence_sum += self.config.reward.presence_rate(spec.duration_s);
        }
    }

    pub(super) fn complete(&mut self, i: TaskIndex) {
        let spec = self.tasks[i as usize];
        self.record_run_end(i, RunEnd::Finished);
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
    pub(super) fn drop_task(&mut self, i: TaskIndex, in_system: bool) {
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

    pub(super) fn leave_system(&mut self, duration_s: f64) {
        if self.census.num_queued + self.census.num_running == 0 {
            // Reset instead of subtracting so that float drift cannot accumulate.
            self.presence_sum = 0.0;
        } else {
            self.presence_sum -= self.config.reward.presence_rate(duration_s);
        }
    }

    pub(super) fn dispatch(&mut self, time_s: f64, kind: EventKind) {
        match kind {
            EventKind::Completion { task, server } => {
                let rec = &self.records[task as usize];
                if rec.phase == TaskPhase::Running && rec.server == server && rec.due_s == time_s {
                    self.complete(task);
                }
            }
            EventKind::Failure { server } => self.fail(server as usize),
            EventKind::Tick => self.arm_tick(),
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

    /// Moves the clock to `t_s`, accruing cost, utilisation and energy at the current rates.
    pub(super) fn advance_clock_to(&mut self, t_s: f64) {
        let dt = t_s - self.now_s;
        if dt > 0.0 {
            self.pending_cost += dt
                * self
                    .config
                    .reward
                    .cost_rate(self.presence_sum, self.census.num_queued);
            for r in 0..self.num_resources {
                self.used_integral[r] += dt * self.used[r] as f64;
            }
            let joules = dt * self.power_w_total.max(0.0);
            self.energy_j += joules;
            self.pending_cost += self.config.reward.energy_kwh * joules / JOULES_PER_KWH;
            self.now_s = t_s;
        }
    }

    pub(super) fn next_arrival_s(&self) -> Option<f64> {
        self.tasks.get(self.next_arrival).map(|t| t.arrival_s)
    }

    pub(super) fn next_event_s(&self) -> Option<f64> {
        match (self.events.peek_time_s(), self.next_arrival_s()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Processes every event at or before `t_s` in time order (server events before
    /// arrivals at the same instant, so an arrival can use what a completion frees), then
    /// moves the clock to `t_s`.
    pub(super) fn run_until(&mut self, t_s: f64) {
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
    pub(super) fn wait(&mut self) {
        let target_s = match self.config.time_mode {
            TimeMode::EventDriven => self
                .next_event_s()
                .unwrap_or(self.now_s + self.config.step_s),
            TimeMode::Stepped => self.now_s + self.config.step_s,
        };
        self.run_until(target_s.min(self.config.max_time_s));
    }

    pub(super) fn update_episode_end(&mut self) {
        let all_done = self.next_arrival == self.tasks.len()
            && self.census.num_queued + self.census.num_running == 0;
        self.terminated = all_done;
        self.truncated = !all_done
            && (self.now_s >= self.config.max_time_s
                || self.num_decisions >= self.config.max_decisions);
    }

    /// In event-driven mode, jumps over instants where only wait is legal.
    pub(super) fn skip_to_decision(&mut self) {
        self.update_episode_end();
        self.refresh_running_rows();
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
            self.refresh_running_rows();
        }
    }

    pub(super) fn finish_step(&mut self, obs: &mut [f32]) -> Transition {
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

    pub(super) fn fill_metrics(&mut self) {
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
        self.metrics.num_preempted = self.num_preempted;
        self.metrics.num_migrated = self.num_migrated;
        self.metrics_ready = true;
    }

    pub fn write_observation(&self, obs: &mut [f32]) {
        observation::write(self, obs);
    }
}
