//! Failures: a server failure kills its tasks (requeued or dropped) until its repair; the
//! times to failure and repair are exponential, from a stream seeded by the episode's seed.
//!
//! # Health signals (`[failures] health`)
//! A generative model of what monitoring shows before a failure ([`HealthModel`]):
//! - when a failure is scheduled, it is *announced* with probability `announced` (a draw from
//!   a stream of its own, so the failure times are those of the same scenario without health);
//! - an announced failure's server degrades linearly over the `lead_s` before it, from 0 to 1;
//! - every reading adds noise, exponential with mean `noise`, fresh every `sample_s` seconds
//!   per server (from a hash of the episode's salt, the server and the sample index: no
//!   stream is consumed); its tail is what makes false alarms at any threshold;
//! - the reading is min(1, degradation + noise) while the server is up, 0 while it is down.
//!
//! Unannounced failures come without warning, and noise alone can cross any threshold, so a
//! predictor that reads the signal has both misses and false alarms.

use super::ClusterEnv;
use super::config::HealthModel;
use super::state::EventKind;
use crate::seeds::mix64;
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
        // Backwards, so that the swap-remove of a killed task only moves visited entries.
        let mut pos = self.running.len();
        while pos > 0 {
            pos -= 1;
            let i = self.running[pos];
            if self.records[i as usize].server as usize == n {
                self.kill(i);
            }
        }
        self.next_failure_s[n] = f64::INFINITY;
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
            self.schedule_failure(n, at_s);
        }
    }

    /// Schedules server `n`'s next failure at `at_s` and draws whether its health signal
    /// announces it.
    fn schedule_failure(&mut self, n: usize, at_s: f64) {
        self.events
            .push(at_s, EventKind::Failure { server: n as u32 });
        self.next_failure_s[n] = at_s;
        self.announced[n] = self
            .config
            .health
            .is_some_and(|h| self.health_rng.random::<f64>() < h.announced);
    }

    /// Server `n`'s health reading now, in `[0, 1]` (0 without `[failures] health`, and while
    /// the server is down): see the module docs. Observable: a real scheduler has it from
    /// monitoring, and it is in the observation's server rows.
    pub fn health(&self, n: usize) -> f64 {
        let Some(HealthModel {
            lead_s,
            noise,
            sample_s,
            ..
        }) = self.config.health
        else {
            return 0.0;
        };
        if !self.servers[n].up {
            return 0.0;
        }
        let degradation = if self.announced[n] {
            ((lead_s - (self.next_failure_s[n] - self.now_s)) / lead_s).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let sample = (self.now_s / sample_s).floor() as u64;
        let u = unit_hash(self.health_salt, n as u64, sample);
        (degradation - noise * (1.0 - u).ln()).min(1.0)
    }

    /// When server `n` fails next (infinite when no failure is scheduled). **The future: no
    /// scheduler may read it**; it labels the failure predictor's training and test data
    /// (`examples/failure_prediction.rs`), as `finished_slowdowns` serves reports.
    pub fn next_failure_for_labels(&self, n: usize) -> f64 {
        self.next_failure_s[n]
    }

    /// Draws, from the failure stream, the next failure of every up server that can fail and
    /// the repair of every down one (exponential times: memoryless, so a draw at any moment
    /// is the right conditional one).
    pub(super) fn draw_server_events(&mut self) {
        for n in 0..self.servers.len() {
            let ty = self.config.server_types[self.servers[n].type_index].failure;
            let Some(model) = ty else { continue };
            if self.servers[n].up {
                let at_s = self.now_s + exponential(&mut self.fail_rng, model.mttf_s);
                self.schedule_failure(n, at_s);
            } else {
                let at_s = self.now_s + exponential(&mut self.fail_rng, model.mttr_s);
                self.events
                    .push(at_s, EventKind::Repair { server: n as u32 });
            }
        }
    }

    /// Schedules the first failure of every server that can fail, and the idle timeouts.
    pub(super) fn schedule_server_events(&mut self) {
        self.next_failure_s.fill(f64::INFINITY);
        self.announced.fill(false);
        if self.any_failures {
            let fail_seed = self.rng.random::<u64>();
            self.fail_rng = ChaCha8Rng::seed_from_u64(fail_seed);
            self.health_rng = ChaCha8Rng::seed_from_u64(fail_seed ^ HEALTH_SALT);
            self.health_salt = self.health_rng.random();
            self.draw_server_events();
        }
        for n in 0..self.servers.len() {
            self.arm_power_down(n);
        }
    }
}

/// Mixed into the failure stream's seed for the health stream.
const HEALTH_SALT: u64 = 0x6865_616c_7468;

/// A uniform number in `[0, 1)` that is a fixed function of its three inputs.
fn unit_hash(salt: u64, a: u64, b: u64) -> f64 {
    (mix64(salt ^ mix64(a ^ mix64(b))) >> 11) as f64 / (1u64 << 53) as f64
}

/// An exponential draw with the given mean.
pub(super) fn exponential(rng: &mut ChaCha8Rng, mean_s: f64) -> f64 {
    let u: f64 = rng.random::<f64>();
    -mean_s * (1.0 - u).ln()
}
