//! Failures: a server failure kills its tasks (requeued or dropped) until its repair; the
//! times to failure and repair are exponential, from a stream seeded by the episode's seed.

use super::ClusterEnv;
use super::config::KillPolicy;
use super::schedule::RunEnd;
use super::state::{Admission, EventKind, TaskPhase};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

impl ClusterEnv {
    /// A failure kills every task on server `n` (requeued or dropped), then takes it down
    /// until its repair.
    pub(super) fn fail(&mut self, n: usize) {
        if !self.servers[n].up {
            return;
        }
        self.num_failures += 1;
        let speed = self.servers[n].speed;
        // Backwards, so that the swap-remove of a killed task only moves visited entries.
        let mut pos = self.running.len();
        while pos > 0 {
            pos -= 1;
            let i = self.running[pos];
            if self.records[i as usize].server as usize != n {
                continue;
            }
            let start_s = self.records[i as usize].start_s;
            self.record_run_end(i, RunEnd::Killed);
            self.release(i);
            self.num_killed += 1;
            self.lost_work_s += (self.now_s - start_s).max(0.0) * speed;
            match self.config.on_kill {
                KillPolicy::Requeue => {
                    self.records[i as usize].restarts += 1;
                    let spec = self.tasks[i as usize];
                    if self.queue.admit(i, &spec) == Admission::Dropped {
                        self.drop_task(i, true);
                    } else {
                        self.records[i as usize].phase = TaskPhase::Queued;
                        self.census.num_queued += 1;
                    }
                }
                KillPolicy::Drop => self.drop_task(i, true),
            }
        }
        self.record_server(n, false);
        self.modify_server(n, |s| {
            s.up = false;
            s.off = false;
            s.power_down_at_s = f64::NAN;
        });
        let ty = self.config.server_types[self.servers[n].type_index].failure;
        if let Some(model) = ty {
            let at_s = self.now_s + exponential(&mut self.fail_rng, model.mttr_s);
            self.events
                .push(at_s, EventKind::Repair { server: n as u32 });
        }
    }

    pub(super) fn repair(&mut self, n: usize) {
        let now_s = self.now_s;
        self.record_server(n, true);
        self.modify_server(n, |s| {
            s.up = true;
            s.ready_at_s = now_s;
        });
        self.arm_power_down(n);
        let ty = self.config.server_types[self.servers[n].type_index].failure;
        if let Some(model) = ty {
            let at_s = now_s + exponential(&mut self.fail_rng, model.mttf_s);
            self.events
                .push(at_s, EventKind::Failure { server: n as u32 });
        }
    }

    /// Schedules the first failure of every server that can fail, and the idle timeouts.
    pub(super) fn schedule_server_events(&mut self) {
        if self.any_failures {
            self.fail_rng = ChaCha8Rng::seed_from_u64(self.rng.random::<u64>());
            for n in 0..self.servers.len() {
                let ty = self.config.server_types[self.servers[n].type_index].failure;
                if let Some(model) = ty {
                    let at_s = self.now_s + exponential(&mut self.fail_rng, model.mttf_s);
                    self.events
                        .push(at_s, EventKind::Failure { server: n as u32 });
                }
            }
        }
        for n in 0..self.servers.len() {
            self.arm_power_down(n);
        }
    }
}

/// An exponential draw with the given mean.
pub(super) fn exponential(rng: &mut ChaCha8Rng, mean_s: f64) -> f64 {
    let u: f64 = rng.random::<f64>();
    -mean_s * (1.0 - u).ln()
}
