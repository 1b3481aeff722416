//! What no scheduler can see, redrawn: the true durations of the tasks in the system, the
//! tasks still to arrive and the failure times. [`ClusterEnv::redraw_hidden`] turns a copy of
//! the env into one possible world consistent with everything a scheduler has observed, so
//! that a planner (the `rollout` scheduler) can try actions on it without seeing the future.

use super::ClusterEnv;
use super::state::{EventKind, TaskPhase, TaskRecord};
use crate::seeds::mix64;
use crate::workload::redraw_future;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Salts of the streams drawn from the redraw's seed.
const FUTURE_SALT: u64 = 0x6675_7475_7265;
const FAILURE_SALT: u64 = 0x6661_696c_7572;

impl ClusterEnv {
    /// Replaces everything hidden from schedulers by a draw from the scenario's own model,
    /// seeded by `seed`:
    /// - every queued or running task's true duration becomes its estimate (a running task
    ///   that has already done more work than that is taken to finish now), and running
    ///   tasks' completions move accordingly (a requeued task keeps the work it has saved);
    /// - the tasks yet to arrive are a fresh draw of the workload ([`redraw_future`]);
    /// - every up server's next failure, and every down server's repair, is redrawn from the
    ///   exponential failure model (memoryless, so the draw is the right conditional one);
    ///   the health signal's announcements are drawn afresh with them.
    ///
    /// Finished and dropped tasks keep their truth: it is already known.
    pub fn redraw_hidden(&mut self, seed: u64) {
        let now_s = self.now_s;
        for i in 0..self.next_arrival {
            let rec = self.records[i];
            let spec = &mut self.tasks[i];
            match rec.phase {
                TaskPhase::Queued => spec.duration_s = spec.estimate_s.max(rec.work_done_s),
                TaskPhase::Running => {
                    let speed = self.servers[rec.server as usize].speed;
                    let done_s = rec.work_done_s + (now_s - rec.works_from_s).max(0.0) * speed;
                    spec.duration_s = spec.estimate_s.max(done_s);
                    let due_s = self.estimated_finish_s(i as u32).max(now_s);
                    self.records[i].due_s = due_s;
                    self.events.push(
                        due_s,
                        EventKind::Completion {
                            task: i as u32,
                            server: rec.server,
                        },
                    );
                }
                _ => {}
            }
        }
        self.presence_sum = (0..self.next_arrival)
            .filter(|&i| {
                matches!(
                    self.records[i].phase,
                    TaskPhase::Queued | TaskPhase::Running
                )
            })
            .map(|i| self.config.reward.presence_rate(self.tasks[i].duration_s))
            .sum();

        let last_arrival_s = match self.next_arrival {
            0 => self.episode_start_s,
            k => self.tasks[k - 1].arrival_s,
        };
        let workload = self.config.workload.clone();
        redraw_future(
            workload.as_ref(),
            mix64(seed ^ FUTURE_SALT),
            &mut self.tasks,
            self.next_arrival,
            last_arrival_s,
            now_s,
        );
        self.records.resize(self.tasks.len(), TaskRecord::NEW);

        if self.any_failures {
            self.events.retain(|kind| {
                !matches!(kind, EventKind::Failure { .. } | EventKind::Repair { .. })
            });
            let fail_seed = mix64(seed ^ FAILURE_SALT);
            self.fail_rng = ChaCha8Rng::seed_from_u64(fail_seed);
            self.health_rng = ChaCha8Rng::seed_from_u64(mix64(fail_seed));
            self.draw_server_events();
        }
    }
}
