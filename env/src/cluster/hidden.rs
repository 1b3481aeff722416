//! What no scheduler can see, redrawn: the true durations of the tasks in the system, the
//! tasks still to arrive and the failure times. [`ClusterEnv::redraw_hidden`] turns a copy of
//! the env into one possible world consistent with everything a scheduler has observed, so
//! that a planner (the `rollout` scheduler) can try actions on it without seeing the future.

use super::ClusterEnv;
use super::state::{EventKind, TaskPhase, TaskRecord};
use crate::seeds::mix64;
use crate::workload::redraw_future;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Salts of the streams drawn from the redraw's seed.
const FUTURE_SALT: u64 = 0x6675_7475_7265;
const FAILURE_SALT: u64 = 0x6661_696c_7572;
const DURATION_SALT: u64 = 0x6475_7261_7469;

impl ClusterEnv {
    /// Replaces everything hidden from schedulers by a draw from the scenario's own model,
    /// seeded by `seed`:
    /// - every queued or running task's true duration is drawn from what its estimate and its
    ///   work so far allow ([`duration_given_s`]): the estimate itself where the workload says
    ///   estimates are exact or does not say how they err; running tasks' completions move
    ///   accordingly (a requeued task keeps the work it has saved);
    /// - the tasks yet to arrive are a fresh draw of the workload ([`redraw_future`]);
    /// - every up server's next failure, and every down server's repair, is redrawn from the
    ///   exponential failure model (memoryless, so the draw is the right conditional one);
    ///   the health signal's announcements are drawn afresh with them.
    ///
    /// Finished and dropped tasks keep their truth: it is already known. With
    /// `arrivals = Some(n)`, the world keeps only the next `n` of the redrawn arrivals and ends
    /// when the tasks it has are done (a planner's finite horizon).
    pub fn redraw_hidden(&mut self, seed: u64, arrivals: Option<usize>) {
        let now_s = self.now_s;
        let mut durations = ChaCha8Rng::seed_from_u64(mix64(seed ^ DURATION_SALT));
        for i in 0..self.next_arrival {
            let rec = self.records[i];
            let spec = &mut self.tasks[i];
            let noise = f64::from(spec.estimate_noise);
            match rec.phase {
                TaskPhase::Queued => {
                    spec.duration_s = duration_given_s(
                        spec.estimate_s,
                        noise,
                        rec.work_done_s,
                        durations.random(),
                    );
                }
                TaskPhase::Running => {
                    let speed = self.servers[rec.server as usize].speed;
                    let done_s = rec.work_done_s + (now_s - rec.works_from_s).max(0.0) * speed;
                    spec.duration_s =
                        duration_given_s(spec.estimate_s, noise, done_s, durations.random());
                    let left_s = spec.duration_s - rec.work_done_s;
                    let due_s = (rec.works_from_s + left_s / speed).max(now_s);
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

        let workload = self.config.workload.clone();
        redraw_future(
            workload.as_ref(),
            mix64(seed ^ FUTURE_SALT),
            &mut self.tasks,
            self.next_arrival,
            now_s,
        );
        if let Some(n) = arrivals {
            self.tasks.truncate(self.next_arrival + n);
        }
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

/// A true duration (speed-1 s) for a task with estimate `estimate_s` that has done `done_s`
/// of work and not finished, at quantile `u` ∈ [0, 1) of the draw. The workload's error model,
/// estimate = duration × (1 + ε) with ε ~ U[−noise, noise], is read backwards: ε is uniform
/// over the values that leave more than `done_s` to do, and duration = estimate / (1 + ε).
/// (This leaves out the class's own law of durations, which would weight the values of ε.)
/// Without noise, the estimate; a task that has outrun every duration the model allows, or
/// whose estimate is exact but exceeded, finishes now.
///
/// Taking every duration to be its estimate instead (what this did before) made every
/// running task that had passed its estimate finish at once in every world: capacity that
/// is not free in truth, for which the rollout scheduler held tasks back.
pub(crate) fn duration_given_s(estimate_s: f64, noise: f64, done_s: f64, u: f64) -> f64 {
    if noise <= 0.0 {
        return estimate_s.max(done_s);
    }
    let lowest = -noise;
    let highest = if done_s > 0.0 {
        noise.min(estimate_s / done_s - 1.0)
    } else {
        noise
    };
    if highest <= lowest {
        return done_s;
    }
    (estimate_s / (1.0 + lowest + u * (highest - lowest))).max(done_s)
}

#[cfg(test)]
mod tests {
    use super::duration_given_s;

    #[test]
    fn a_duration_is_drawn_from_the_estimate_and_the_work_done_by_hand() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        // Exact estimates: the estimate, or the work done once that is past it.
        assert_eq!(duration_given_s(10.0, 0.0, 0.0, 0.3), 10.0);
        assert_eq!(duration_given_s(10.0, 0.0, 12.0, 0.3), 12.0);
        // Estimate 10 s, error ±50%: ε from −0.5 (u = 0: 10 / 0.5 = 20 s) to 0.5 (u → 1:
        // 10 / 1.5 s); at u = 0.5, ε = 0 and the duration is the estimate.
        assert!(close(duration_given_s(10.0, 0.5, 0.0, 0.0), 20.0));
        assert!(close(duration_given_s(10.0, 0.5, 0.0, 0.5), 10.0));
        assert!(close(duration_given_s(10.0, 0.5, 0.0, 1.0), 10.0 / 1.5));
        // 12.5 s done: only ε < 10 / 12.5 − 1 = −0.2 leaves work to do, so ε ∈ [−0.5, −0.2];
        // u = 0.5 gives ε = −0.35 and 10 / 0.65 s. Work done below the estimate does not bind.
        assert!(close(duration_given_s(10.0, 0.5, 12.5, 0.5), 10.0 / 0.65));
        assert!(close(duration_given_s(10.0, 0.5, 5.0, 0.5), 10.0));
        // Past 20 s no duration fits the model: the task finishes now.
        assert_eq!(duration_given_s(10.0, 0.5, 25.0, 0.5), 25.0);
    }
}
